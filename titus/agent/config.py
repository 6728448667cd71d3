"""Agent settings, and the hosts an agent announces to the master.

Every setting can come from the command line (``titus agent ...``) or the environment
(``TITUS_MASTER_URL``, ``TITUS_AGENT_TOKEN``, ``TITUS_AGENT_ID``, ``TITUS_CA``,
``TITUS_AGENT_STATE_DIR``).
"""
from __future__ import annotations

import hashlib
import os
import socket
import uuid
from typing import Literal, Optional

from pydantic import BaseModel, Field, field_validator

from titus.protocol import HostInfo
from titus.tls import client_context

RUNTIMES = ("sim", "docker")


def _default_agent_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


def _default_state_dir() -> Optional[str]:
    """``TITUS_AGENT_STATE_DIR`` (set but empty: keep nothing), else the user's state
    directory (``$XDG_STATE_HOME/titus``, by default ``~/.local/state/titus``)."""
    chosen = os.environ.get("TITUS_AGENT_STATE_DIR")
    if chosen is not None:
        return chosen or None
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".local", "state")
    return os.path.join(base, "titus")


class AgentConfig(BaseModel):
    """What an agent needs to know to join a master and describe its hosts."""

    master_url: str = Field(default_factory=lambda: os.environ.get(
        "TITUS_MASTER_URL", "http://127.0.0.1:7001"))
    agent_token: Optional[str] = Field(default_factory=lambda: os.environ.get("TITUS_AGENT_TOKEN"))
    # CA bundle (PEM file or directory) to verify an https master with; None: the system store
    ca: Optional[str] = Field(default_factory=lambda: os.environ.get("TITUS_CA") or None,
                              validate_default=True)
    agent_id: str = Field(default_factory=lambda: os.environ.get("TITUS_AGENT_ID")
                          or _default_agent_id())
    # where the agent keeps its own credential, so a restarted process re-registers as itself
    # (None: nowhere; a restart then waits until the master gives up the old process)
    state_dir: Optional[str] = Field(default_factory=_default_state_dir)
    runtime: str = "sim"
    # hosts this agent stands for: many only for the sim runtime
    hosts: int = Field(default=1, ge=1)
    zones: list[str] = Field(default_factory=lambda: ["us-east-1a", "us-east-1b", "us-east-1c"])
    # per-host resources; None means "this machine's" for docker, a fixed default for sim
    cpus: Optional[float] = Field(default=None, ge=0)
    memory_mb: Optional[float] = Field(default=None, ge=0)
    disk_mb: float = Field(default=100_000.0, ge=0)
    network_mbps: float = Field(default=10_000.0, ge=0)
    gpu: int = Field(default=0, ge=0)
    instance_type: str = "m5.4xlarge"
    instance_group: str = "default"
    # docker only: EC2 instance metadata to read zone, instance type and id from ("" = don't);
    # on EC2 this is http://169.254.169.254
    imds_endpoint: str = Field(default_factory=lambda: os.environ.get("TITUS_IMDS_ENDPOINT", ""))
    attributes: dict[str, str] = Field(default_factory=dict)
    # the agent's own HTTP server (task logs, metadata); port 0 picks a free one
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=0, ge=0, le=65535)
    advertise_url: Optional[str] = None
    serve: bool = True
    # sim only: append one line per launch to this file
    launch_log: Optional[str] = None
    # docker only: when images are pulled (always, missing: not on the host, never)
    pull: Literal["always", "missing", "never"] = "missing"
    # heartbeat pacing until the master says otherwise
    heartbeat_interval_sec: float = Field(default=0.5, gt=0)
    max_statuses_per_heartbeat: int = Field(default=5000, ge=1)
    # the running-task list goes with every heartbeat up to this length, else every
    # running_report_sec (it only serves the master's reaper)
    running_list_every_heartbeat_max: int = Field(default=2000, ge=0)
    running_report_sec: float = Field(default=5.0, ge=0)
    max_backoff_sec: float = Field(default=2.0, gt=0)
    request_timeout_sec: float = Field(default=30.0, gt=0)

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, value: str) -> str:
        if value not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {value!r}")
        return value

    @field_validator("zones")
    @classmethod
    def _some_zone(cls, value: list[str]) -> list[str]:
        value = [zone.strip() for zone in value if zone.strip()]
        if not value:
            raise ValueError("zones must name at least one zone")
        return value

    @field_validator("master_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        urls = [url.strip().rstrip("/") for url in value.split(",") if url.strip()]
        if not urls:
            raise ValueError("master_url must name at least one master URL")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"master_url: each URL must start with http:// or https://, "
                                 f"got {url!r}")
        return ",".join(urls)

    @property
    def master_urls(self) -> list[str]:
        """The masters to try, in order (``master_url`` is a comma-separated list): the agent
        talks to whichever leads."""
        return self.master_url.split(",")

    @field_validator("ca")
    @classmethod
    def _usable_ca(cls, value: Optional[str]) -> Optional[str]:
        if value:
            client_context(value)  # a bad bundle is a start-up error, not endless retries
        return value or None

    def build_hosts(self) -> list[HostInfo]:
        """The hosts to register: one real host for docker, ``hosts`` simulated ones for sim."""
        if self.runtime == "docker":
            if self.hosts != 1:
                raise ValueError("hosts must be 1 for the docker runtime, got "
                                 f"{self.hosts}")
            return [self._docker_host()]
        cpus = self.cpus if self.cpus is not None else 16.0
        memory_mb = self.memory_mb if self.memory_mb is not None else 65536.0
        return [self._host(f"{self.agent_id}-h{index:05d}", index, cpus=cpus, memory_mb=memory_mb)
                for index in range(self.hosts)]

    def _docker_host(self) -> HostInfo:
        """This machine: resources detected unless given; zone, instance type and id from EC2
        instance metadata when it answers, else from the settings."""
        from titus.agent.host_info import detect_host_info, read_imds

        ec2 = read_imds(self.imds_endpoint) if self.imds_endpoint else None
        return detect_host_info(
            cpus=self.cpus, memory_mb=self.memory_mb, disk_mb=self.disk_mb,
            network_mbps=self.network_mbps, gpu=self.gpu,
            host_id=(ec2.instance_id if ec2 else "") or socket.gethostname(),
            zone=(ec2.zone if ec2 else "") or self.zones[0],
            instance_type=(ec2.instance_type if ec2 else "") or self.instance_type,
            instance_id=(ec2.instance_id if ec2 else "") or None,
            attributes={"instance_group": self.instance_group, "agent_id": self.agent_id,
                        **self.attributes},
            imds_endpoint="")

    def _host(self, host_id: str, index: int, *, cpus: float, memory_mb: float) -> HostInfo:
        digest = hashlib.sha1(host_id.encode()).hexdigest()[:17]
        attributes = {
            "zone": self.zones[index % len(self.zones)],
            "instance_type": self.instance_type,
            "instance_id": f"i-{digest}",
            "instance_group": self.instance_group,
            "agent_id": self.agent_id,
        }
        attributes.update(self.attributes)
        return HostInfo(host_id=host_id, cpus=cpus, memory_mb=memory_mb, disk_mb=self.disk_mb,
                        network_mbps=self.network_mbps, gpu=self.gpu, attributes=attributes)



def make_runtime(config: AgentConfig, address: str = ""):
    """The runtime named by ``config.runtime``; docker is imported only when asked for.

    ``address`` is the agent server's base URL, where a docker host's containers find the
    metadata service.
    """
    if config.runtime == "sim":
        from titus.agent.sim import SimRuntime

        return SimRuntime(launch_log=config.launch_log)
    from titus.agent.docker_logs import LogPolicy
    from titus.agent.docker_runtime import DockerRuntime  # needs the docker SDK and a daemon
    from titus.agent.metadata import MetadataRegistry

    # the engine is found as the docker CLI finds it (DOCKER_HOST); per-task log bounds from
    # TITUS_DOCKER_LOG_MAX_SIZE ("10m") and TITUS_DOCKER_LOG_MAX_FILES (3)
    policy = LogPolicy(os.environ.get("TITUS_DOCKER_LOG_MAX_SIZE", "10m"),
                       int(os.environ.get("TITUS_DOCKER_LOG_MAX_FILES", "3")))
    return DockerRuntime(config.agent_id, zone=config.zones[0], metadata=MetadataRegistry(),
                         metadata_url=address or None, log_policy=policy, pull=config.pull)


def runtime_routers(runtime) -> list:
    """Extra routes the runtime needs on the agent server (the docker metadata service)."""
    registry = getattr(runtime, "metadata", None)
    if registry is None:
        return []
    from titus.agent.metadata import build_router

    return [build_router(registry)]
