"""The agent loop: join the master, report task status changes, carry out its orders.

Two threads do the work:

- the **heartbeat loop** registers (with every task the runtime holds, so a restarted master
  or agent can reconcile), then sends heartbeats: a batch of status changes plus the ids of the
  tasks still running. When it has nothing to report it asks the master to hold the request
  (``wait_ms``, a long poll) so launch orders arrive without waiting for the next interval.
  A status change stays queued until a heartbeat carrying it succeeds: nothing is lost while
  the master is down. When the master is unreachable the loop backs off exponentially and
  registers again once it answers (it may have restarted); ``reregister`` or an unknown-agent
  reply (404/410) also trigger a registration. A 503 (the master's store is unavailable) keeps
  the registration: the same reports are sent again after the back-off.
- the **order worker** runs launch, kill and remove orders in the order they came, so a slow
  runtime call never delays a heartbeat.

Identity: the agent joins with the shared bootstrap token; a master with tokens answers with
the agent's own credential and the cluster's log token. From then on the agent presents its
credential, and its log server (``titus.agent.server``) wants the log token. Both are kept in
a file of ``config.state_dir`` (mode 0600), so a restarted process registers as itself; a
credential the master no longer knows (401) is dropped and the agent joins again with the
bootstrap token.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import queue
import random
import threading
import time
from pathlib import Path
from typing import Optional

import httpx

from titus.agent.config import AgentConfig
from titus.agent.runtime import Runtime, TaskStatus
from titus.agent.server import LogGate, log_gate
from titus.protocol import (LEADER_HEADER, ROLE_HEADER, HeartbeatReply, HostInfo, KillOrder, LaunchOrder, RegisterResponse,
                            RemoveOrder)
from titus.tls import client_context

log = logging.getLogger("titus.agent")

# Internal state of a task whose launch order was accepted but not yet started by the runtime.
LAUNCHING = "Launching"


# A master found unreachable is not followed on a standby's word for this long.
UNREACHABLE_SEC = 10.0
# A heartbeat waits for the master at least this long (and at most half its heartbeat timeout,
# at most request_timeout_sec), not counting the long-poll wait it asks for.
HEARTBEAT_MIN_TIMEOUT_SEC = 3.0


class MasterUnavailable(Exception):
    """The master could not be reached or answered with a server error."""


class MasterBusy(MasterUnavailable):
    """The master answered 503: it runs and knows this agent, but cannot store reports now
    (its store is unavailable). The agent keeps its registration, keeps the reports it sent
    and sends them again after a back-off."""


class AgentRejected(Exception):
    """The master refused the agent (bad token, bad registration)."""


def _wire_status(status: TaskStatus) -> dict:
    """A runtime status as the protocol's TaskStatusMsg JSON."""
    state = "StartInitiated" if status.state == LAUNCHING else status.state
    return {
        "task_id": status.task_id, "state": state, "reason": status.reason or "",
        "message": status.message or "", "exit_code": status.exit_code,
        "health": status.health, "timestamp": status.timestamp or 0.0,
        "host_id": status.host_id or "",
    }


class Agent:
    """One agent process's link to the master, for the hosts it stands for.

    ``client``: an ``httpx.Client`` to reach the master (tests pass one bound to an in-process
    app); by default one is made for ``config.master_url``. ``address`` is the base URL of the
    agent's own HTTP server, sent at registration so the master can fetch task logs.
    ``gate``: the log gate of that server (by default the agent id's, ``log_gate``).
    """

    def __init__(self, config: AgentConfig, runtime: Runtime, *,
                 client: Optional[httpx.Client] = None, address: str = "",
                 hosts: Optional[list[HostInfo]] = None,
                 deregister_on_exit: Optional[bool] = None,
                 gate: Optional[LogGate] = None):
        self.config = config
        self.runtime = runtime
        self.agent_id = config.agent_id
        self.address = address
        self.hosts = hosts if hosts is not None else config.build_hosts()
        self._default_host = self.hosts[0].host_id if len(self.hosts) == 1 else ""
        # sim tasks die with the agent, so say goodbye; docker containers outlive it
        self.deregister_on_exit = (runtime.name == "sim" if deregister_on_exit is None
                                   else deregister_on_exit)
        self._own_client = client is None
        self._masters = config.master_urls  # the agent follows whichever of them leads
        self._untried = 0  # masters still to try before backing off (a round of the list)
        self._unreachable: dict[str, float] = {}  # url -> until when its name is not followed
        self._client = client or httpx.Client(base_url=self._masters[0],
                                              timeout=config.request_timeout_sec,
                                              verify=client_context(config.ca))
        self.gate = gate if gate is not None else log_gate(config.agent_id)
        self._identity = IdentityFile.of(config)
        kept = self._identity.load() if self._identity is not None else {}
        self._credential: Optional[str] = kept.get("credential")
        self._log_token: Optional[str] = kept.get("log_token")
        self.gate.set(self._log_token)  # closed from the start, not from the registration
        self.heartbeat_interval_sec = config.heartbeat_interval_sec
        self.heartbeat_timeout_sec = 10.0

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: collections.deque[TaskStatus] = collections.deque()  # not yet acknowledged
        self._tasks: dict[str, TaskStatus] = {}  # latest known status of every task held
        self._orders: queue.Queue = queue.Queue()
        self._orders_outstanding = 0
        self._stop = threading.Event()
        self._worker: Optional[threading.Thread] = None
        self._loop: Optional[threading.Thread] = None
        self._running_sent_at = float("-inf")
        self.registered = threading.Event()
        self.stats = collections.Counter()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the runtime, recover what it holds, and run the loop in background threads."""
        self._start_runtime()
        self._worker = threading.Thread(target=self._run_orders, name="agent-orders", daemon=True)
        self._worker.start()
        self._loop = threading.Thread(target=self._run_heartbeats, name="agent-heartbeat",
                                      daemon=True)
        self._loop.start()

    def run(self) -> None:
        """Run in the calling thread until :meth:`stop` is called from elsewhere."""
        self._start_runtime()
        self._worker = threading.Thread(target=self._run_orders, name="agent-orders", daemon=True)
        self._worker.start()
        try:
            self._run_heartbeats()
        finally:
            self._shutdown()

    def request_stop(self) -> None:
        """Ask the loop to end, from another thread; :meth:`run` then returns."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, deregister (sim), and close the runtime."""
        self.request_stop()
        if self._loop is not None:
            self._loop.join(timeout=timeout)
            self._shutdown()

    def _start_runtime(self) -> None:
        self.runtime.start(self._emit)
        recovered = self.runtime.list()
        with self._lock:
            for status in recovered:
                # a status emitted since start() is newer than the listing
                self._tasks.setdefault(status.task_id, self._with_host(status))
        if recovered:
            log.info("agent %s recovered %d task(s) from the %s runtime",
                     self.agent_id, len(recovered), self.runtime.name)

    def _shutdown(self) -> None:
        if self._worker is not None:
            self._orders.put(None)
            self._worker.join(timeout=5)
            self._worker = None
        if self.deregister_on_exit and self.registered.is_set():
            try:
                response = self._client.delete(f"/api/v3/agents/{self.agent_id}",
                                               headers=self._headers, timeout=2.0)
                if response.status_code < 300 and self._identity is not None:
                    self._identity.remove()  # the master revoked the credential with the agent
            except httpx.HTTPError as exc:
                log.info("could not deregister agent %s: %s", self.agent_id, exc)
        self.registered.clear()
        self.runtime.close()
        if self._own_client:
            self._client.close()

    # -- status changes from the runtime -----------------------------------------------

    def _with_host(self, status: TaskStatus) -> TaskStatus:
        if not status.host_id:
            known = self._tasks.get(status.task_id)
            status.host_id = known.host_id if known is not None else self._default_host
        return status

    def _emit(self, status: TaskStatus) -> None:
        """Called by the runtime, from any thread, for every state change."""
        if not status.timestamp:
            status.timestamp = time.time()
        with self._wake:
            status = self._with_host(status)
            known = self._tasks.get(status.task_id)
            if known is not None and known.state == "Finished" and status.state != "Finished":
                return  # a late report from a runtime thread: an ended task never runs again
            self._tasks[status.task_id] = status
            self._pending.append(status)
            self._wake.notify_all()

    # -- the heartbeat loop ----------------------------------------------------------------

    def _run_heartbeats(self) -> None:
        backoff = 0.0
        must_register = True
        while not self._stop.is_set():
            try:
                if must_register:
                    self._register()
                    must_register = False
                must_register = self._heartbeat_once()
                backoff = 0.0
            except MasterBusy as exc:  # it still knows us: no new registration
                backoff = min(self.config.max_backoff_sec, max(0.1, backoff * 2))
                log.warning("master cannot take reports now (%s); retrying in %.1fs", exc,
                            backoff)
                self.stats["master_busy"] += 1
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
            except MasterUnavailable as exc:
                if self._untried:  # another master of the list is still to be tried: at once
                    log.info("master unavailable (%s); trying %s", exc, self._client.base_url)
                    must_register = True
                    self._stop.wait(0.05)
                    continue
                backoff = min(self.config.max_backoff_sec, max(0.1, backoff * 2))
                log.warning("master unavailable (%s); retrying in %.1fs", exc, backoff)
                self.stats["master_unavailable"] += 1
                must_register = True  # it may come back as a new process
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
            except AgentRejected as exc:
                backoff = min(self.config.max_backoff_sec, max(0.5, backoff * 2))
                log.error("master rejected agent %s: %s", self.agent_id, exc)
                self.stats["rejected"] += 1
                must_register = True
                self._stop.wait(backoff)
            except Exception:  # a bug must not silence the agent: log it, start over
                backoff = min(self.config.max_backoff_sec, max(0.5, backoff * 2))
                log.exception("agent %s heartbeat loop failed", self.agent_id)
                self.stats["loop_errors"] += 1
                must_register = True
                self._stop.wait(backoff)

    @property
    def _headers(self) -> dict:
        """The agent's own credential once it has one, else the bootstrap token."""
        headers = {"content-type": "application/json"}
        token = self._credential or self.config.agent_token
        if token:
            headers["authorization"] = f"Bearer {token}"
        return headers

    def _drop_credential(self, why: str) -> None:
        """The master no longer knows our credential: join again with the bootstrap token."""
        log.warning("agent %s: its credential was refused (%s); joining again with the "
                    "bootstrap token", self.agent_id, why)
        self._credential = None
        self._keep_identity()

    def _adopt(self, reply: RegisterResponse) -> None:
        """Take the credential and log token a registration handed out, and keep them."""
        changed = False
        if reply.credential and reply.credential != self._credential:
            self._credential, changed = reply.credential, True
        if reply.log_token and reply.log_token != self._log_token:
            self._log_token, changed = reply.log_token, True
            self.gate.set(reply.log_token)
        if changed:
            self._keep_identity()

    def _keep_identity(self) -> None:
        if self._identity is not None:
            self._identity.save({"credential": self._credential, "log_token": self._log_token})

    def _post(self, path: str, body: dict, timeout: float) -> httpx.Response:
        try:
            response = self._client.post(path, content=json.dumps(body), headers=self._headers,
                                         timeout=timeout)
        except httpx.HTTPError as exc:
            self._next_master(None, unreachable=isinstance(exc, httpx.TransportError))
            raise MasterUnavailable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 503 and response.headers.get(ROLE_HEADER) == "standby":
            standby = str(self._client.base_url)
            self._next_master(response.headers.get(LEADER_HEADER))
            raise MasterUnavailable(f"{standby} is a standby")
        self._untried = 0  # a master answered: the next failure starts a new round
        if response.status_code == 503:
            raise MasterBusy(f"HTTP 503 from {path}: {response.text[:300]}")
        if response.status_code >= 500:
            raise MasterUnavailable(f"HTTP {response.status_code} from {path}")
        return response

    def _next_master(self, leader: Optional[str], unreachable: bool = False) -> None:
        """Talk to another master: the leader a standby named, if it is one of ours (an
        agent's credential never goes to a URL it was not given) and not found unreachable
        lately (a standby names a killed leader until its lease runs out), else the next in
        the list. Each master of the list is tried once before the agent backs off."""
        if len(self._masters) < 2 or not self._own_client:
            return
        now = time.monotonic()
        current = str(self._client.base_url).rstrip("/")
        if unreachable:
            self._unreachable[current] = now + UNREACHABLE_SEC
        if self._untried <= 0:  # a new round of the list
            self._untried = len(self._masters) - 1
        else:
            self._untried -= 1
        leader = (leader or "").rstrip("/")
        if (leader in self._masters and leader != current
                and self._unreachable.get(leader, 0.0) <= now):
            chosen = leader
        else:
            at = self._masters.index(current) if current in self._masters else -1
            ring = self._masters[at + 1:] + self._masters[:at + 1]
            chosen = next((url for url in ring if self._unreachable.get(url, 0.0) <= now
                           and url != current), ring[0])
        log.info("agent %s: talking to the master at %s", self.agent_id, chosen)
        self._client.base_url = chosen

    def _register(self) -> None:
        with self._lock:
            tasks = [_wire_status(status) for status in self._tasks.values()]
            covered = len(self._pending)  # statuses the listing already includes
        body = {"agent_id": self.agent_id, "runtime": self.runtime.name,
                "address": self.address,
                "hosts": [host.model_dump(mode="json") for host in self.hosts], "tasks": tasks}
        response = self._post("/api/v3/agents/register", body, self.config.request_timeout_sec)
        if response.status_code == 401 and self._credential:
            self._drop_credential("registration")
            response = self._post("/api/v3/agents/register", body,
                                  self.config.request_timeout_sec)
        if response.status_code >= 400:
            raise AgentRejected(f"registration refused: HTTP {response.status_code} "
                                f"{response.text[:500]}")
        try:
            reply = RegisterResponse.model_validate_json(response.content)
        except ValueError as exc:
            raise MasterUnavailable(f"unreadable registration reply: {str(exc)[:300]}") from None
        self._adopt(reply)
        self.agent_id = reply.agent_id or self.agent_id
        self.heartbeat_interval_sec = reply.heartbeat_interval_sec or self.heartbeat_interval_sec
        self.heartbeat_timeout_sec = reply.heartbeat_timeout_sec
        with self._lock:
            for _ in range(min(covered, len(self._pending))):
                self._pending.popleft()
        self.stats["registrations"] += 1
        self.registered.set()
        log.info("agent %s registered %d host(s), %d task(s)", self.agent_id, len(self.hosts),
                 len(tasks))

    def _heartbeat_once(self) -> bool:
        """Send one heartbeat; returns True when the master wants a new registration."""
        limit = self.config.max_statuses_per_heartbeat
        now = time.monotonic()
        with self._lock:
            # running first, then the batch: a task that finishes in between is then in both,
            # never in neither
            running = [task_id for task_id, status in self._tasks.items()
                       if status.state != "Finished"]
            batch = [self._pending.popleft() for _ in range(min(limit, len(self._pending)))]
        # The master only reaps with this list (kills what it does not know); it never infers
        # a loss from an id missing. A long list is therefore sent only now and then, the
        # longer the rarer (200,000 ids are ~8 MB of JSON for the master to read).
        if len(running) > self.config.running_list_every_heartbeat_max:
            period = self.config.running_report_sec * max(1.0, len(running) / 20_000)
            if now - self._running_sent_at < period:
                running = []
            else:
                self._running_sent_at = now
        wait_ms = 0 if batch else int(self.heartbeat_interval_sec * 1000)
        body = {"statuses": [_wire_status(status) for status in batch], "running": running,
                "wait_ms": wait_ms}
        started = time.monotonic()
        try:
            # a master that stopped still takes connections: give up on it well within its
            # heartbeat timeout, so a standby that took over hears from us in time
            timeout = min(self.config.request_timeout_sec,
                          max(HEARTBEAT_MIN_TIMEOUT_SEC, self.heartbeat_timeout_sec / 2))
            response = self._post(f"/api/v3/agents/{self.agent_id}/heartbeat", body,
                                  timeout + wait_ms / 1000.0)
        except MasterUnavailable:
            self._requeue(batch)
            raise
        if response.status_code in (404, 410):
            self._requeue(batch)
            log.info("master does not know agent %s: registering again", self.agent_id)
            return True
        if response.status_code == 401 and self._credential:  # lost, or the store was reset
            self._requeue(batch)
            self._drop_credential("heartbeat")
            return True
        if response.status_code >= 400:
            self._requeue(batch)
            raise AgentRejected(f"heartbeat refused: HTTP {response.status_code} "
                                f"{response.text[:500]}")
        try:
            reply, unread = HeartbeatReply.parse_each(response.content)
        except ValueError as exc:  # not the master answering (a proxy?)
            self._requeue(batch)
            raise MasterUnavailable(f"unreadable heartbeat reply: {str(exc)[:300]}") from None
        for problem in unread:  # the others still run; the master's timeouts end these
            self.stats["orders_unread"] += 1
            log.error("an order of the master could not be read and was skipped: %s", problem)
        if reply.reregister:
            # the master did not take this batch: keep it; the registration that follows
            # carries every task's latest state and then drops what it covered
            self._requeue(batch)
            self._queue_orders(reply.orders)
            return True
        self.stats["heartbeats"] += 1
        self.stats["statuses_sent"] += len(batch)
        self._queue_orders(reply.orders)
        self._pause(started, wait_ms, had_work=bool(batch or reply.orders))
        return False

    def _queue_orders(self, orders: list) -> None:
        """Hand orders to the worker, in the order the master sent them."""
        if not orders:
            return
        with self._lock:
            self._orders_outstanding += len(orders)
        for order in orders:
            self._orders.put(order)
        self.stats["orders"] += len(orders)

    def _pause(self, started: float, wait_ms: int, had_work: bool) -> None:
        """Before the next heartbeat: let fresh orders run, and never spin on a quick master."""
        deadline = started + (self.heartbeat_interval_sec if not had_work else 0.0)
        order_deadline = time.monotonic() + self.heartbeat_interval_sec
        with self._wake:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._orders_outstanding:  # report the launches they cause in one batch
                    if now >= order_deadline:
                        return
                    self._wake.wait(order_deadline - now)
                    continue
                if self._pending or now >= deadline:
                    return
                self._wake.wait(deadline - now)

    def _requeue(self, batch: list[TaskStatus]) -> None:
        with self._lock:
            self._pending.extendleft(reversed(batch))

    # -- the order worker ----------------------------------------------------------------

    def _run_orders(self) -> None:
        while True:
            order = self._orders.get()
            if order is None:
                return
            try:
                if isinstance(order, LaunchOrder):
                    self._launch(order)
                elif isinstance(order, KillOrder):
                    self._kill(order)
                elif isinstance(order, RemoveOrder):
                    self._remove(order)
            except Exception:  # one bad order must not stop the worker
                log.exception("order %s for task %s failed", order.type, order.task_id)
            finally:
                with self._wake:
                    self._orders_outstanding -= 1
                    self._wake.notify_all()

    def _launch(self, order: LaunchOrder) -> None:
        with self._wake:
            known = self._tasks.get(order.task_id)
            if known is not None:
                # a repeated order (e.g. the master resent it): never start a task twice,
                # but tell the master where it stands
                self.stats["duplicate_launches"] += 1
                if known.state == LAUNCHING:
                    return
                self._pending.append(known)
                self._wake.notify_all()
                if known.state != "StartInitiated":
                    return
        if known is not None:
            # recovered unstarted (created, never started): the runtime starts it now that
            # the master has said it still wants the task
            try:
                self.runtime.launch(order)
            except Exception:
                log.exception("resuming the launch of task %s failed", order.task_id)
            return
            self._tasks[order.task_id] = TaskStatus(task_id=order.task_id, state=LAUNCHING,
                                                    timestamp=time.time(),
                                                    host_id=order.host_id)
        self.stats["launches"] += 1
        try:
            self.runtime.launch(order)
        except ValueError as exc:  # the order itself is wrong: the user's spec, not the host
            log.warning("launch of task %s refused: %s", order.task_id, exc)
            self._emit(TaskStatus(task_id=order.task_id, state="Finished",
                                  reason="invalidRequest", message=f"launch refused: {exc}",
                                  host_id=order.host_id))
        except Exception as exc:
            log.exception("launch of task %s failed", order.task_id)
            self._emit(TaskStatus(task_id=order.task_id, state="Finished",
                                  reason="transientSystemError",
                                  message=f"launch failed: {type(exc).__name__}: {exc}",
                                  host_id=order.host_id))

    def _kill(self, order: KillOrder) -> None:
        try:
            self.runtime.kill(order.task_id, order.grace_sec)
        except KeyError:
            with self._lock:
                known = self._tasks.get(order.task_id)
            if known is not None and known.state == "Finished":
                self._emit(known)  # it already ended: say so again
            else:
                self._emit(TaskStatus(task_id=order.task_id, state="Finished", reason="killed",
                                      message="not running on this agent"))

    def _remove(self, order: RemoveOrder) -> None:
        try:
            self.runtime.remove(order.task_id)
        except KeyError:
            pass
        with self._lock:
            self._tasks.pop(order.task_id, None)

    # -- introspection -------------------------------------------------------------------

    def task_states(self) -> dict[str, str]:
        """Task id -> latest state this agent knows (for tests and diagnostics)."""
        with self._lock:
            return {task_id: status.state for task_id, status in self._tasks.items()}

    def pending_count(self) -> int:
        """How many status changes wait for the master's acknowledgement."""
        with self._lock:
            return len(self._pending)


class IdentityFile:
    """The agent's credential and log token in its state directory, for one master URL and
    agent id (a file kept for another master is not read: the credential is not its own)."""

    def __init__(self, path: Path, master_url: str, agent_id: str):
        self.path, self.master_url, self.agent_id = path, master_url, agent_id

    @classmethod
    def of(cls, config: AgentConfig) -> Optional["IdentityFile"]:
        """The file of ``config``'s agent, or None without a state directory."""
        if not config.state_dir:
            return None
        name = hashlib.sha256(config.agent_id.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        return cls(Path(config.state_dir).expanduser() / f"agent-{name}.json",
                   config.master_url, config.agent_id)

    def load(self) -> dict:
        """What was kept (``credential``, ``log_token``), or {} if nothing usable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read the agent identity %s: %s", self.path, exc)
            return {}
        if not isinstance(data, dict) or (data.get("master_url"), data.get("agent_id")) != (
                self.master_url, self.agent_id):
            return {}
        return {key: data[key] for key in ("credential", "log_token")
                if isinstance(data.get(key), str) and data[key]}

    def save(self, values: dict) -> None:
        """Keep ``values`` (written whole, then renamed; readable by this user only)."""
        data = {"master_url": self.master_url, "agent_id": self.agent_id, **values}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(temp, self.path)
        except OSError as exc:  # the agent still works; a restart joins anew
            log.warning("cannot keep the agent identity in %s: %s", self.path, exc)

    def remove(self) -> None:
        """Forget what was kept."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove the agent identity %s: %s", self.path, exc)
