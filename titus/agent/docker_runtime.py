"""Tasks as real Docker containers, driven through the docker SDK.

- **Launch** (in a small worker pool, so the agent never waits on the engine): StartInitiated,
  then the image is pulled as the pull policy says (``always``; ``missing``: only when it is
  not on the host; ``never``), with the registry credentials of Docker's own config
  (``~/.docker/config.json`` or ``$DOCKER_CONFIG``, read by the docker SDK), then the container is created with the task's limits and started. Limits: cpus as
  ``NanoCpus``, a hard memory limit with ``MemorySwap == Memory`` (no swap), a pids limit,
  never privileged. Labels ``titus.task_id``, ``titus.job_id``, ``titus.agent_id`` tie the
  container to its task, job and agent.
- **Status** comes from ONE watcher thread reading Docker's event stream for this agent's
  containers (not a poll per container): ``start`` -> Started, ``die`` -> Finished with reason
  normal (exit 0), failed (non-zero), oom (``State.OOMKilled``) or killed (we stopped it),
  ``health_status`` -> the task's health. If the stream breaks (engine restart) the watcher
  reconnects with exponential back-off and re-syncs every container from ``list``, so exits
  that happened meanwhile are still reported.
- **Kill**: ``docker stop`` with the task's grace period: SIGTERM, then SIGKILL after it.
- **Metadata identity** (with a ``metadata`` registry): registered once the container exists,
  its address recorded once it starts, forgotten as soon as the task is Finished (the
  container stopped), not when it is removed: Docker gives a stopped container's address to
  the next one. Each lookup also inspects the container (:meth:`DockerRuntime.identity_alive`),
  so a stop not yet seen as an event cannot leak the identity either.
- **Recovery**: ``list`` finds this agent's containers by label, whatever happened while the
  agent was down, and adopts them; ``remove`` deletes a container (the reaper).
"""
from __future__ import annotations

import collections
import ipaddress
import os
import logging
import math
import re
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import docker
import docker.errors
import httpx
from docker.types import Healthcheck

from titus.agent.docker_logs import LogPolicy, read_logs
from titus.agent.faults import classify_docker, classify_pull
from titus.agent.metadata import MetadataRegistry, MetadataServer, StsCredentials, TaskIdentity
from titus.agent.runtime import Emit, Runtime, TaskStatus
from titus.agent.task_env import container_env
from titus.protocol import HealthCheckOrder, LaunchOrder

log = logging.getLogger(__name__)

# How images are pulled: always (before each launch), missing (only when not on the host),
# never (a missing image fails the task).
PULL_POLICIES = ("always", "missing", "never")


class PullFailed(RuntimeError):
    """A pull the system failed (registry or engine unreachable, HTTP 5xx): ``fault``."""

    def __init__(self, fault):
        super().__init__(fault.message)
        self.fault = fault


LABEL_TASK = "titus.task_id"
LABEL_JOB = "titus.job_id"
LABEL_AGENT = "titus.agent_id"
LABEL_HOST = "titus.host_id"
LABEL_IAM_ROLE = "titus.iam_role"
_OWN_LABELS = (LABEL_TASK, LABEL_JOB, LABEL_AGENT, LABEL_HOST, LABEL_IAM_ROLE)
# Extra labels on every container, "key=value,key=value" (operators tag their containers;
# the test suite tags its own to check that none is left behind).
LABELS_ENV = "TITUS_DOCKER_LABELS"
TRANSIENT_SYSTEM_ERROR = "transientSystemError"

STARTING, STARTED, FINISHED = "StartInitiated", "Started", "Finished"
_ORDER = {STARTING: 0, STARTED: 1, FINISHED: 2}
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")
_LOOPBACK = ("127.0.0.1", "localhost", "0.0.0.0", "::1")


def _accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


@dataclass
class _Task:
    """What the runtime remembers about one task between events."""

    task_id: str
    host_id: str = ""
    container_id: str | None = None
    state: str = STARTING
    reported: str | None = None  # the last state passed to ``emit`` (or to ``list``)
    health: str | None = None
    killing: bool = False
    oom: bool = False  # an "oom" event was seen for the container
    last: TaskStatus | None = None  # the last status reported


def labels_from_env(env: dict | None = None) -> dict[str, str]:
    """The extra container labels of ``TITUS_DOCKER_LABELS`` ("k=v,k2=v2"; ValueError for an
    item without "=" or with an empty key)."""
    text = (os.environ if env is None else env).get(LABELS_ENV, "")
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{LABELS_ENV}: expected key=value items, got {item!r}")
        labels[key.strip()] = value.strip()
    return labels


def container_name(task_id: str) -> str:
    """Docker name of a task's container (Docker allows only ``[a-zA-Z0-9_.-]``)."""
    return "titus-" + _NAME_CHARS.sub("_", task_id)


def _addresses(attrs: dict) -> list[str]:
    """The container's IP addresses, from ``docker inspect`` (none once it stopped)."""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return [n["IPAddress"] for n in networks.values() if n.get("IPAddress")]


def finish_reason(exit_code: int | None, oom_killed: bool, killing: bool) -> str:
    """Why a container ended: killed (we stopped it), oom, normal (exit 0) or failed."""
    if killing:
        return "killed"
    if oom_killed:
        return "oom"
    return "normal" if exit_code == 0 else "failed"


def docker_healthcheck(check: HealthCheckOrder) -> Healthcheck:
    """The Docker healthcheck equivalent of a task's health check."""
    if not check.command:
        raise ValueError("health_check.command: must not be empty")
    for name in ("interval_sec", "timeout_sec"):
        if not float(getattr(check, name)) > 0:
            raise ValueError(f"health_check.{name}: must be > 0, got {getattr(check, name)!r}")
    if int(check.retries) < 1:
        raise ValueError(f"health_check.retries: must be >= 1, got {check.retries!r}")
    # One string is a shell command line; a list is an exec form.
    if len(check.command) == 1 and " " in check.command[0]:
        test = ["CMD-SHELL", check.command[0]]
    else:
        test = ["CMD", *check.command]
    ns = 1_000_000_000
    return Healthcheck(
        test=test,
        interval=int(check.interval_sec * ns),
        timeout=int(check.timeout_sec * ns),
        retries=int(check.retries),
    )


class DockerRuntime(Runtime):
    """A :class:`Runtime` whose tasks are containers of the local Docker engine.

    ``agent_id`` scopes the containers (label ``titus.agent_id``); ``pull`` is the pull policy
    (:data:`PULL_POLICIES`: ``always``, ``missing``, ``never``; ``pull_images=True`` is the
    older spelling of ``missing``); ``pids_limit`` caps processes per container;
    ``log_policy`` bounds per-task output. With a ``metadata`` registry each container gets
    ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` pointing at its own scoped endpoint: at
    ``metadata_url`` (the server that mounts the metadata router) when containers can reach
    it, else at a metadata-only server the runtime starts on the bridge gateway; ``credentials``
    (default: :meth:`StsCredentials.from_env`) serves the jobs' IAM roles there.
    """

    name = "docker"

    def __init__(
        self,
        agent_id: str,
        *,
        client: docker.DockerClient | None = None,
        base_url: str | None = None,
        pull_images: bool = False,
        pull: str | None = None,
        pids_limit: int = 1024,
        log_policy: LogPolicy | None = None,
        network: str | None = None,
        metadata: MetadataRegistry | None = None,
        metadata_url: str | None = None,
        credentials: StsCredentials | None = None,
        zone: str = "",
        launch_workers: int = 8,
        max_backoff_sec: float = 5.0,
        launch_retry_sec: float = 30.0,
        extra_labels: dict[str, str] | None = None,
    ) -> None:
        if not agent_id:
            raise ValueError("agent_id: must not be empty")
        if int(pids_limit) < 1:
            raise ValueError(f"pids_limit: must be >= 1, got {pids_limit!r}")
        self.agent_id = agent_id
        # Room in the connection pool for every launch worker, some stops and the event stream.
        pool = launch_workers + 24
        self._own_client = client is None
        self.client = client or (docker.DockerClient(base_url=base_url, max_pool_size=pool)
                                 if base_url else docker.from_env(max_pool_size=pool))
        pull = pull if pull is not None else ("missing" if pull_images else "never")
        if pull not in PULL_POLICIES:
            raise ValueError(f"pull: must be one of {', '.join(PULL_POLICIES)}, got {pull!r}")
        self.pull = pull
        self.pull_images = pull != "never"
        self.pids_limit = int(pids_limit)
        self.log_policy = log_policy or LogPolicy()
        self.network = network
        self.metadata = metadata
        self.metadata_url = metadata_url.rstrip("/") if metadata_url else None
        if metadata is not None:
            if credentials is None and metadata.credentials is None:
                credentials = StsCredentials.from_env()
            if credentials is not None:
                metadata.credentials = credentials  # the router serves IAM routes with it
            metadata.alive = self.identity_alive
        self.metadata_credentials = credentials
        self._reachable_metadata_url: str | None = None
        self._metadata_server: MetadataServer | None = None  # when no other server is reachable
        self._metadata_lock = threading.Lock()
        self.zone = zone
        self.max_backoff_sec = max_backoff_sec
        self.launch_retry_sec = float(launch_retry_sec)
        self.extra_labels = dict(labels_from_env() if extra_labels is None else extra_labels)
        if any(k in _OWN_LABELS for k in self.extra_labels):
            raise ValueError("extra_labels: may not set the runtime's own titus.* labels")
        self.stats: collections.Counter = collections.Counter()
        self._tasks: dict[str, _Task] = {}
        self._launching: set[str] = set()  # tasks between launch() and their container's start
        self._lock = threading.RLock()
        self._emit: Emit | None = None
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None
        self._events = None  # the open event stream, closed to stop the watcher
        self._launcher = ThreadPoolExecutor(launch_workers, thread_name_prefix="docker-launch")
        # Stops wait up to a grace period each (10-300 s): they get their own, wider pool.
        self._stopper = ThreadPoolExecutor(64, thread_name_prefix="docker-stop")
        self.connected = threading.Event()  # set while the event stream is open and synced

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, emit: Emit) -> None:
        """Begin watching Docker's events; every later state change is passed to ``emit``."""
        self._emit = emit
        self._watcher = threading.Thread(target=self._watch, name="docker-events", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop the watcher and the worker pools; containers are left running (recovery).

        A client passed in by the caller stays open."""
        self._closed.set()
        events = self._events
        if events is not None:
            try:
                events.close()
            except Exception:  # the stream may already be broken
                pass
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        # Launches in flight finish (their retries stop at once): a container must not be
        # created after its runtime is gone, where nobody would ever start or remove it.
        self._launcher.shutdown(wait=True, cancel_futures=True)
        self._stopper.shutdown(wait=False, cancel_futures=True)
        if self._metadata_server is not None:
            self._metadata_server.stop()
        if self._own_client:
            self.client.close()

    # ---- launch ----------------------------------------------------------------------------

    def launch(self, order: LaunchOrder) -> None:
        """Start the task's container in the background; StartInitiated is reported at once."""
        self._validate(order)
        with self._lock:
            known = self._tasks.get(order.task_id)
            if known is not None:
                if (known.container_id is not None and known.state == STARTING
                        and not known.killing and order.task_id not in self._launching):
                    # the master's word on a container recovered unstarted: start it
                    self._launching.add(order.task_id)
                    self._launcher.submit(self._launch, order)
                    return
                log.info("task %s already known; launch ignored", order.task_id)
                return
            self._tasks[order.task_id] = _Task(order.task_id, host_id=order.host_id)
            self._launching.add(order.task_id)
        self._report(order.task_id, STARTING, message=f"checking image {order.image}")
        self._launcher.submit(self._launch, order)

    @staticmethod
    def _validate(order: LaunchOrder) -> None:
        if not order.task_id:
            raise ValueError("task_id: must not be empty")
        if not order.image:
            raise ValueError("image: must not be empty")
        if not order.cpus > 0:
            raise ValueError(f"cpus: must be > 0, got {order.cpus!r}")
        if not order.memory_mb >= 4:  # Docker refuses memory limits under 6 MiB
            raise ValueError(f"memory_mb: must be >= 4, got {order.memory_mb!r}")
        if order.health_check is not None:
            docker_healthcheck(order.health_check)

    def _launch(self, order: LaunchOrder) -> None:
        """Run the launch, retrying system failures with back-off (see :meth:`_attempts`)."""
        try:
            self._attempts(order)
        finally:
            with self._lock:
                self._launching.discard(order.task_id)

    def _attempts(self, order: LaunchOrder) -> None:
        """Launch ``order``; a failure the user caused ends the task ``failed`` at once, a
        failure of the system (engine unreachable, 5xx, 429) is retried after 0.25 s, 0.5 s,
        1 s ... (at most ``max_backoff_sec`` apart) for up to ``launch_retry_sec`` in all, then
        ends the task ``transientSystemError``, which spends none of the user's retries."""
        began = time.monotonic()
        delay, tries = 0.25, 0
        while True:
            tries += 1
            try:
                self._launch_container(order)
                return
            except PullFailed as exc:  # the registry's trouble, classified at the pull
                fault = exc.fault
            except Exception as exc:  # classified: every engine error is someone's
                fault = classify_docker(exc)
            if not fault.system:
                log.warning("launch of %s failed (%s error): %s", order.task_id, fault.kind,
                            fault.message)
                self._discard_created(order.task_id)
                self._report(order.task_id, FINISHED, reason="failed", message=fault.message)
                return
            spent = time.monotonic() - began
            if self._task(order.task_id).killing:
                self._report(order.task_id, FINISHED, reason="killed",
                             message="killed before start")
                return
            if self._closed.is_set() or spent + delay > self.launch_retry_sec:
                log.warning("launch of %s gave up after %d tries: %s", order.task_id, tries,
                            fault.message)
                self._discard_created(order.task_id)
                self._report(order.task_id, FINISHED, reason=TRANSIENT_SYSTEM_ERROR,
                             message=f"system error, not the task's: {fault.message} "
                                     f"({tries} tries in {spent:.1f}s)")
                return
            self.stats["launch_retries"] += 1
            log.info("launch of %s: %s; retrying in %.2fs", order.task_id, fault.message, delay)
            self._closed.wait(delay)
            delay = min(delay * 2, self.max_backoff_sec)

    def _discard_created(self, task_id: str) -> None:
        """Remove a container that was created but could not start (the user's fault): a
        ``Created`` container must never outlive its failed launch. Best effort."""
        with self._lock:
            task = self._tasks.get(task_id)
            container_id = task.container_id if task is not None else None
        if container_id is None:
            return
        try:
            if self.client.api.inspect_container(container_id)["State"].get("Status") == "created":
                self.client.api.remove_container(container_id, force=True)
        except Exception as exc:  # the master's word (kill, then remove) will finish the job
            log.info("could not remove the unstarted container of %s: %s", task_id, exc)

    def _launch_container(self, order: LaunchOrder) -> None:
        """One attempt: image, create (or adopt the task's existing container), start.
        Engine errors propagate to :meth:`_attempts`, which classifies them."""
        if not self._ensure_image(order):
            return
        if self._task(order.task_id).killing:
            self._report(order.task_id, FINISHED, reason="killed", message="killed before start")
            return
        try:
            container = self._create(order)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            # The task's container exists already (a repeated order, or a retried attempt
            # whose create went through): carry on with it.
            container = self.client.containers.get(container_name(order.task_id))
            self._recover_identity(container, order.task_id)
            if container.status != "created":
                with self._lock:
                    self._tasks[order.task_id].container_id = container.id
                status = self._status_of(container)
                self._report(order.task_id, status.state, reason=status.reason,
                             message=status.message, exit_code=status.exit_code,
                             health=status.health)
                return
        with self._lock:
            task = self._tasks.get(order.task_id)
            if task is None:  # removed meanwhile
                container.remove(force=True)
                return
            task.container_id = container.id
        if task.killing:
            self._report(order.task_id, FINISHED, reason="killed", message="killed before start")
            return
        container.start()  # Started arrives through the event stream
        if self._task(order.task_id).killing:  # a kill raced with the start: stop it now
            self._stopper.submit(self._stop, order.task_id, container.id, order.kill_grace_sec)
        self._learn_ip(order.task_id, container.id)

    def _ensure_image(self, order: LaunchOrder) -> bool:
        """Make the image present as the pull policy says; False once the task is ended
        (the user's fault: no such image, refused credentials). A pull the system failed (the
        registry or the engine unreachable, 5xx) raises :class:`PullFailed`: retried."""
        if self.pull != "always":
            try:
                self.client.images.get(order.image)
                return True
            except docker.errors.ImageNotFound:
                pass
            if self.pull == "never":
                self._report(
                    order.task_id, FINISHED, reason="failed",
                    message=f"image not found: {order.image!r} is not on this host and pulls "
                    "are disabled (titus agent --pull never)",
                )
                return False
        try:
            self.client.images.pull(order.image)
            self.stats["pulls"] += 1
            return True
        except docker.errors.DockerException as exc:
            fault = classify_pull(exc)
            if fault.system:
                raise PullFailed(fault) from exc  # the registry or engine failed: retried
            self._report(order.task_id, FINISHED, reason="failed",
                         message=f"image not found: pulling {order.image!r} failed: "
                                 f"{fault.message}")
            return False
        except Exception as exc:  # connection errors below the SDK (requests, sockets)
            raise PullFailed(classify_pull(exc)) from exc

    def _create(self, order: LaunchOrder):
        env = container_env(order, self.agent_id)
        metadata_url = self._container_metadata_url() if self.metadata is not None else ""
        token = secrets.token_urlsafe(24) if metadata_url else ""
        if token:
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"{metadata_url}/task/{token}"
        memory = int(order.memory_mb * 1024 * 1024)
        kwargs = dict(
            image=order.image,
            command=order.command or None,
            entrypoint=order.entry_point or None,
            environment=env,
            name=container_name(order.task_id),
            labels={
                **self.extra_labels,
                LABEL_TASK: order.task_id, LABEL_JOB: order.job_id,
                LABEL_AGENT: self.agent_id, LABEL_HOST: order.host_id,
                **({LABEL_IAM_ROLE: order.iam_role} if order.iam_role else {}),
            },
            nano_cpus=int(order.cpus * 1_000_000_000),
            mem_limit=memory,
            memswap_limit=memory,  # equal to the memory limit: no swap
            pids_limit=self.pids_limit,
            privileged=False,
            log_config=self.log_policy.log_config(),
            stop_signal="SIGTERM",
            detach=True,
        )
        if order.health_check is not None:
            kwargs["healthcheck"] = docker_healthcheck(order.health_check)
        if self.network:
            kwargs["network"] = self.network
        if order.gpu:
            kwargs["device_requests"] = [
                docker.types.DeviceRequest(count=order.gpu, capabilities=[["gpu"]])]
        container = self.client.containers.create(**kwargs)
        if token:  # registered only now: the identity is bound to this container
            self.metadata.register(TaskIdentity(
                task_id=order.task_id, job_id=order.job_id, token=token, zone=self.zone,
                iam_role=order.iam_role, container_id=container.id,
            ))
        return container

    def _container_metadata_url(self) -> str:
        """The metadata service's base URL as containers reach it ("" if they cannot)."""
        with self._metadata_lock:
            if self._reachable_metadata_url is None:
                self._reachable_metadata_url = self._find_metadata_url().rstrip("/")
            return self._reachable_metadata_url

    def _find_metadata_url(self) -> str:
        # From a container's network the host is the bridge's gateway: a loopback URL is the
        # agent's own server, usable only if it also listens on the gateway (e.g. 0.0.0.0).
        gateway = self._bridge_gateway()
        if self.metadata_url:
            url = httpx.URL(self.metadata_url)
            if url.host not in _LOOPBACK:
                return self.metadata_url
            if gateway and _accepts(gateway, url.port or 80):
                return str(url.copy_with(host=gateway))
        if not gateway:
            log.warning("no bridge gateway found: containers get no metadata service")
            return self.metadata_url or ""
        # Nothing containers can reach serves the metadata: serve it on the gateway only,
        # so containers see the metadata routes and nothing else of the agent.
        self._metadata_server = MetadataServer(self.metadata, host=gateway, port=0).start()
        log.info("metadata service for containers at %s:%s", gateway, self._metadata_server.port)
        return f"http://{gateway}:{self._metadata_server.port}"

    def _bridge_gateway(self) -> str | None:
        """The host's address on the containers' network."""
        try:
            network = self.client.networks.get(self.network or "bridge")
        except docker.errors.NotFound:
            return None
        for config in network.attrs["IPAM"].get("Config") or []:
            if config.get("Gateway"):
                return config["Gateway"]
            subnet = config.get("Subnet", "")
            if subnet.count(".") == 3:  # the default bridge records only its subnet
                return str(ipaddress.ip_network(subnet)[1])
        return None

    def _learn_ip(self, task_id: str, container_id: str) -> None:
        """Tell the metadata service the container's address (it identifies callers by it)."""
        if self.metadata is None:
            return
        try:
            addresses = _addresses(self.client.api.inspect_container(container_id))
        except docker.errors.NotFound:
            return
        self.metadata.set_ip(task_id, addresses[0] if addresses else "")

    def identity_alive(self, identity: TaskIdentity) -> bool:
        """Whether the identity's container runs now and holds the identity's address.

        The metadata registry asks this at each lookup: a stop is seen as an event only a
        moment later, and by then the address may belong to a new container."""
        if not identity.container_id:
            return False
        try:
            attrs = self.client.api.inspect_container(identity.container_id)
        except docker.errors.NotFound:
            return False
        state = attrs.get("State") or {}
        if not state.get("Running") or state.get("Paused") or state.get("Restarting"):
            return False
        return not identity.ip or identity.ip in _addresses(attrs)

    def _forget_identity(self, task_id: str) -> None:
        """The task's container stopped: its token and address must no longer answer."""
        if self.metadata is not None:
            self.metadata.unregister(task_id)

    # ---- kill / remove ---------------------------------------------------------------------

    def kill(self, task_id: str, grace_sec: float) -> None:
        """SIGTERM, SIGKILL after ``grace_sec``; ends in Finished/killed (in the background)."""
        grace = max(0.0, float(grace_sec))
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                task = self._adopt_by_label(task_id)
            if task is None:
                self._tasks[task_id] = _Task(task_id, killing=True, reported=STARTING)
                self._report(task_id, FINISHED, reason="killed", message="no container")
                return
            task.killing = True
            container_id = task.container_id
        if container_id is not None:
            self._stopper.submit(self._stop, task_id, container_id, grace)

    def _stop(self, task_id: str, container_id: str, grace: float) -> None:
        try:
            # Docker's stop: StopSignal (SIGTERM), wait ``t`` seconds, then SIGKILL.
            self.client.api.stop(container_id, timeout=math.ceil(grace))
            if self.client.api.inspect_container(container_id)["State"].get("Status") == "created":
                # never started, so no "die" event will come: it ends here, and goes
                self.client.api.remove_container(container_id, force=True)
                self._report(task_id, FINISHED, reason="killed", message="killed before start")
        except docker.errors.NotFound:
            self._report(task_id, FINISHED, reason="killed", message="container gone")
        except Exception as exc:
            log.warning("stop of %s failed: %s", task_id, exc)

    def remove(self, task_id: str) -> None:
        """Delete the task's container (stopping it if needed) and forget the task."""
        with self._lock:
            task = self._tasks.pop(task_id, None)
        if task is not None and task.container_id is not None:
            containers = [task.container_id]
        else:
            containers = [c.id for c in self.client.containers.list(
                all=True, sparse=True, filters={"label": self._labels_of(task_id)})]
        for cid in containers:
            try:
                self.client.api.remove_container(cid, force=True)
            except docker.errors.NotFound:
                pass
        if self.metadata is not None:
            self.metadata.unregister(task_id)

    # ---- list / recovery -------------------------------------------------------------------

    def list(self) -> list[TaskStatus]:
        """Every task this agent holds: its containers, found by label, plus tasks that failed
        before a container existed. Containers not yet known are adopted."""
        statuses: dict[str, TaskStatus] = {}
        for container in self._containers():
            status = self._status_of(container)
            statuses[status.task_id] = status
            self._adopt(container, status)
        with self._lock:
            for task in self._tasks.values():
                if task.task_id not in statuses and task.container_id is None:
                    statuses[task.task_id] = task.last or TaskStatus(
                        task.task_id, task.state, host_id=task.host_id, timestamp=time.time())
        return list(statuses.values())

    def _containers(self) -> list:
        return self.client.containers.list(all=True, ignore_removed=True,
                                           filters={"label": f"{LABEL_AGENT}={self.agent_id}"})

    def _status_of(self, container) -> TaskStatus:
        attrs = container.attrs
        labels = attrs["Config"].get("Labels") or {}
        task_id = labels.get(LABEL_TASK, container.name)
        state = attrs["State"]
        with self._lock:
            known = self._tasks.get(task_id)
            killing = bool(known and known.killing)
        health = (state.get("Health") or {}).get("Status")
        status = TaskStatus(task_id=task_id, state=STARTING, host_id=labels.get(LABEL_HOST, ""),
                            timestamp=time.time())
        if state.get("Running") or state.get("Paused") or state.get("Restarting"):
            status.state, status.health = STARTED, health
        elif state.get("Status") in ("exited", "dead"):
            code = int(state.get("ExitCode", -1))
            status.state, status.exit_code = FINISHED, code
            status.reason = finish_reason(code, bool(state.get("OOMKilled")), killing)
            status.message = state.get("Error") or f"exit code {code}"
        return status

    def _adopt(self, container, status: TaskStatus) -> _Task:
        with self._lock:
            task = self._tasks.get(status.task_id)
            if task is None:
                # Adopted tasks are reported through ``list`` (the agent's registration).
                task = _Task(status.task_id, host_id=status.host_id, container_id=container.id,
                             state=status.state, reported=status.state, health=status.health)
                self._tasks[status.task_id] = task
            elif task.container_id is None:
                task.container_id = container.id
            return task

    def _labels_of(self, task_id: str) -> list[str]:
        """Label filter for one task's container of this agent."""
        return [f"{LABEL_TASK}={task_id}", f"{LABEL_AGENT}={self.agent_id}"]

    def _adopt_by_label(self, task_id: str) -> _Task | None:
        found = self.client.containers.list(all=True, ignore_removed=True,
                                            filters={"label": self._labels_of(task_id)})
        if not found:
            return None
        return self._adopt(found[0], self._status_of(found[0]))

    def _resync(self) -> None:
        """Bring every known task up to date with the engine (after a (re)connect)."""
        seen = set()
        for container in self._containers():
            status = self._status_of(container)
            seen.add(status.task_id)
            task = self._adopt(container, status)
            if status.state == STARTING and container.status == "created":
                self._stranded(task, container)
            elif status.state == STARTED:
                self._report(status.task_id, STARTED, health=status.health)
                if self.metadata is not None and not self.metadata.ip_of(status.task_id):
                    self._learn_ip(status.task_id, container.id)
            elif status.state == FINISHED:
                self._report(status.task_id, FINISHED, reason=status.reason,
                             message=status.message, exit_code=status.exit_code)
            self._recover_identity(container, status.task_id)
        with self._lock:
            missing = [(t.task_id, t.container_id) for t in self._tasks.values()
                       if t.container_id is not None and t.task_id not in seen
                       and t.state != FINISHED]
        for task_id, container_id in missing:
            try:  # it may have been created after the listing above
                self.client.api.inspect_container(container_id)
            except docker.errors.NotFound:
                self._report(task_id, FINISHED, reason="failed", message="container disappeared")

    def _stranded(self, task: _Task, container) -> None:
        """A container created but never started (the agent died in between, or a launch gave
        up). It is not started on the runtime's own say: the master's word decides. A task the
        master still wants gets its launch order again (:meth:`launch` then starts this
        container); a task it does not know gets a kill (:meth:`kill` removes the container).
        One whose task already ended here is removed now."""
        with self._lock:
            if task.task_id in self._launching:
                return  # our own launch is about to start it
            ended = task.reported == FINISHED
        if ended or task.killing:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            if task.killing:
                self._report(task.task_id, FINISHED, reason="killed",
                             message="killed before start")

    def _recover_identity(self, container, task_id: str) -> None:
        """After an agent restart, re-register a container's metadata identity from its env,
        unless the container has ended (its identity ended with it)."""
        if self.metadata is None or self.metadata.get(task_id) is not None:
            return
        if (container.attrs.get("State") or {}).get("Status") in ("exited", "dead"):
            return
        env = dict(e.split("=", 1) for e in container.attrs["Config"].get("Env") or [] if "=" in e)
        endpoint = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "")
        if "/task/" not in endpoint:
            return
        labels = container.attrs["Config"].get("Labels") or {}
        self.metadata.register(TaskIdentity(
            task_id=task_id, job_id=labels.get(LABEL_JOB, ""),
            token=endpoint.rsplit("/task/", 1)[1], zone=self.zone,
            iam_role=labels.get(LABEL_IAM_ROLE) or None, container_id=container.id,
        ))
        self._learn_ip(task_id, container.id)

    # ---- events ----------------------------------------------------------------------------

    def _watch(self) -> None:
        backoff = 0.1
        while not self._closed.is_set():
            try:
                # Subscribe first, then re-sync: whatever happens in between arrives as events.
                self._events = self.client.events(
                    decode=True,
                    filters={"type": "container", "label": f"{LABEL_AGENT}={self.agent_id}"})
                self._resync()
                self.connected.set()
                backoff = 0.1
                for event in self._events:
                    self._on_event(event)
                    if self._closed.is_set():
                        return
            except Exception as exc:
                if self._closed.is_set():
                    return
                log.warning("docker event stream lost (%s); reconnecting in %.1fs", exc, backoff)
            self.connected.clear()
            self._closed.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_sec)

    def _on_event(self, event: dict) -> None:
        action = event.get("Action") or event.get("status") or ""
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        task_id = attrs.get(LABEL_TASK)
        if not task_id:
            return
        if action == "start":
            self._report(task_id, STARTED)
            if self.metadata is not None and not self.metadata.ip_of(task_id):
                self._learn_ip(task_id, (event.get("Actor") or {}).get("ID") or event.get("id"))
        elif action.startswith("health_status"):
            health = action.split(":", 1)[1].strip()
            self._report(task_id, STARTED, health=health)
        elif action == "oom":
            with self._lock:
                if task_id in self._tasks:
                    self._tasks[task_id].oom = True
        elif action == "die":
            self._on_die(task_id, event)

    def _on_die(self, task_id: str, event: dict) -> None:
        cid = (event.get("Actor") or {}).get("ID") or event.get("id")
        try:
            state = self.client.api.inspect_container(cid)["State"]
            code, oom = int(state.get("ExitCode", -1)), bool(state.get("OOMKilled"))
            error = state.get("Error", "")
        except docker.errors.NotFound:  # removed at once (e.g. by the reaper)
            attrs = event["Actor"]["Attributes"]
            code, oom, error = int(attrs.get("exitCode", -1)), False, ""
        task = self._task(task_id)
        reason = finish_reason(code, oom or task.oom, task.killing)
        message = error or ("out of memory: killed by the kernel" if reason == "oom"
                            else f"exit code {code}")
        self._report(task_id, FINISHED, reason=reason, message=message, exit_code=code)

    # ---- reporting -------------------------------------------------------------------------

    def _task(self, task_id: str) -> _Task:
        with self._lock:
            return self._tasks.get(task_id) or _Task(task_id)

    def _report(self, task_id: str, state: str, *, reason: str = "", message: str = "",
                exit_code: int | None = None, health: str | None = None) -> None:
        """Emit a state change once: states only move forward; health only when it changes."""
        if state == FINISHED:  # new or repeated, the container has stopped: so has its identity
            self._forget_identity(task_id)
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return  # removed: nothing more to say about it
            last = task.reported
            forward = last is None or _ORDER[state] > _ORDER[last]
            health_changed = (state == STARTED == last and health is not None
                              and health != task.health)
            if not (forward or health_changed):
                return
            task.reported = task.state = state
            if health is not None:
                task.health = health
            status = TaskStatus(task_id=task_id, state=state, reason=reason, message=message,
                                exit_code=exit_code, health=task.health, timestamp=time.time(),
                                host_id=task.host_id)
            task.last = status
        if self._emit is not None:
            try:
                self._emit(status)
            except Exception:
                log.exception("status callback failed for %s", task_id)

    # ---- logs ------------------------------------------------------------------------------

    def logs(self, task_id: str, follow: bool = False) -> Iterator[bytes]:
        """The task's stdout/stderr, readable while it runs and after it ended until removed."""
        try:
            container = self.client.containers.get(container_name(task_id))
        except docker.errors.NotFound:
            raise KeyError(f"task {task_id!r}: no container on this agent") from None
        return read_logs(container, follow=follow)
