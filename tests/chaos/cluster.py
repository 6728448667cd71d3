"""A chaos cluster: N masters on one PostgreSQL store and sim agents that journal their tasks.

Each master is a ``LocalCluster`` master slot (same tokens, same store, its own port and
log); agents get the comma-separated list of every master's URL (with one master: its URL)
and ``TITUS_SIM_JOURNAL`` pointing at their own journal file. ``ChaosCluster`` only starts,
stops, signals and asks ``/health``; faults live in ``faults.py``, checks in
``invariants.py``.
"""
from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import httpx

from titus.cli.local_cluster import LocalCluster, free_port

# Fast timers, so a trial takes seconds: the values tests/integration uses, plus a short
# crash-loop back-off (batch jobs fail on purpose) and no submit rate limit (bursts).
CHAOS_MASTER_ENV = {
    "TITUS_HEARTBEAT_INTERVAL_SEC": "0.2",
    "TITUS_HEARTBEAT_TIMEOUT_SEC": "3",
    "TITUS_SCHEDULE_INTERVAL_SEC": "0.05",
    "TITUS_RECONCILE_INTERVAL_SEC": "0.2",
    "TITUS_SUBMIT_RATE_PER_SEC": "0",
    "TITUS_CRASH_BACKOFF_BASE_SEC": "0.2",
    "TITUS_CRASH_BACKOFF_MAX_SEC": "1",
    "TITUS_KILL_RESEND_SEC": "1",
    "TITUS_STANDBY_REFRESH_SEC": "0.3",
}


@dataclass
class HealthSample:
    """One answer of one master's ``/health`` (``role`` None: it did not answer)."""

    mono: float
    url: str
    role: Optional[str]
    epoch: Optional[int]
    leader: Optional[str]


@dataclass
class AgentSlot:
    """One agent process: its hosts and where it journals."""

    name: str
    hosts: list[str]
    journal: Path
    paused: bool = False
    crashes: list[float] = field(default_factory=list)  # monotonic times of kill -9


def health_of(url: str, timeout: float = 1.0) -> Optional[dict]:
    """A master's ``/health`` JSON, or None when it does not answer in time.

    A master from before standbys has no ``role``: it is then the leader of no epoch."""
    try:
        body = httpx.get(f"{url}/health", timeout=timeout).json()
    except (httpx.HTTPError, ValueError):
        return None
    body.setdefault("role", "leader")
    body.setdefault("epoch", None)
    body.setdefault("leader", url if body["role"] == "leader" else None)
    return body


class ChaosCluster:
    """``masters`` masters and ``agents`` sim agents of ``hosts_per_agent`` hosts each.

    ``lease_sec`` is handed to the masters as ``TITUS_LEASE_SEC``; ``heartbeat_timeout_sec``
    overrides the agents' silence limit."""

    def __init__(self, workdir: Path, store_url: str, *, masters: int = 3, agents: int = 3,
                 hosts_per_agent: int = 2, cpus: float = 4.0, memory_mb: float = 8192.0,
                 lease_sec: float = 2.0, heartbeat_timeout_sec: float = 3.0):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store_url = store_url
        self.lease_sec = lease_sec
        self.heartbeat_timeout_sec = heartbeat_timeout_sec
        self.cpus, self.memory_mb = cpus, memory_mb
        token, agent_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        env = dict(CHAOS_MASTER_ENV, TITUS_LEASE_SEC=str(lease_sec),
                   TITUS_HEARTBEAT_TIMEOUT_SEC=str(heartbeat_timeout_sec))
        self.masters: list[LocalCluster] = []
        for index in range(masters):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            self.masters.append(LocalCluster(
                self.workdir / f"master-{index}", store_url=store_url, port=port, token=token,
                agent_token=agent_token,
                master_env=dict(env, TITUS_ADVERTISE_URL=url)))
        # the agents' side: a LocalCluster that only starts agents (following every master)
        self._agents = LocalCluster(self.workdir / "agents", store_url=store_url,
                                    token=token, agent_token=agent_token)
        self.agents: dict[str, AgentSlot] = {
            f"a{index}": AgentSlot(f"a{index}",
                                   [f"a{index}-h{h:05d}" for h in range(hosts_per_agent)],
                                   self.workdir / "agents" / f"journal-a{index}.jsonl")
            for index in range(agents)}
        self.hosts_per_agent = hosts_per_agent
        self.samples: list[HealthSample] = []
        self._sampling = threading.Event()
        self._sampler: Optional[threading.Thread] = None
        self.token = token

    @property
    def urls(self) -> list[str]:
        """Every master's URL, in start order."""
        return [m.url for m in self.masters]

    # -- processes ---------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> "ChaosCluster":
        """Start every master (concurrently), then every agent; return once a leader leads
        and every host is registered."""
        for master in self.masters:
            master.start_master(wait=False)
        for master in self.masters:
            master.wait_master_ready(timeout)
        for slot in self.agents.values():
            self.start_agent(slot.name)
        self.wait_leader(timeout)
        self.wait_hosts(timeout)
        self._sampling.set()
        self._sampler = threading.Thread(target=self._sample, name="health-sampler",
                                         daemon=True)
        self._sampler.start()
        return self

    def start_agent(self, name: str) -> None:
        """Start (or restart) agent ``name`` with its journal."""
        slot = self.agents[name]
        self._agents.start_agent(name, hosts=self.hosts_per_agent, cpus=self.cpus,
                                 memory_mb=self.memory_mb, launch_log=False,
                                 masters=tuple(self.urls),
                                 env={"TITUS_SIM_JOURNAL": str(slot.journal)})

    def agent_process(self, name: str):
        """The ``Popen`` of agent ``name``."""
        return self._agents.agents[name]

    def kill_agent(self, name: str) -> float:
        """kill -9 of an agent; its journal gets a ``crash`` line (its tasks died with it).
        Returns the monotonic time of the kill."""
        slot = self.agents[name]
        self._agents.kill_agent(name, signal.SIGKILL)
        at = time.monotonic()
        slot.crashes.append(at)
        with slot.journal.open("a") as journal:  # the process is gone: nobody else writes
            journal.write(json.dumps({"ev": "crash", "mono": at, "wall": time.time()}) + "\n")
        return at

    def signal_agent(self, name: str, sig: int) -> None:
        """Send ``sig`` (SIGSTOP, SIGCONT) to an agent."""
        self.agent_process(name).send_signal(sig)
        self.agents[name].paused = sig == signal.SIGSTOP

    def stop(self) -> None:
        """Stop sampling, resume anything paused, stop agents then masters."""
        self._sampling.clear()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
        for name, slot in self.agents.items():
            if slot.paused and name in self._agents.agents:
                self.signal_agent(name, signal.SIGCONT)
        for master in self.masters:
            if master.master is not None and master.master.poll() is None:
                master.master.send_signal(signal.SIGCONT)
        self._agents.stop()
        for master in self.masters:
            master.stop()

    def crashed(self) -> list[str]:
        """Processes that died without being killed on purpose."""
        dead = [f"master-{i}" for i, m in enumerate(self.masters) if m.crashed()]
        return dead + self._agents.crashed()

    def log_tails(self, lines: int = 30) -> str:
        """The end of every master's log, for a failure message."""
        return "\n".join(f"--- master-{i} ({m.url}) ---\n{m.log_tail('master.log', lines)}"
                         for i, m in enumerate(self.masters))

    # -- leadership --------------------------------------------------------------------

    def roles(self) -> dict[str, Optional[dict]]:
        """Every master's ``/health`` now (None: no answer)."""
        return {m.url: health_of(m.url) for m in self.masters}

    def leader(self) -> Optional[LocalCluster]:
        """The master that answers as leader (the one of the highest epoch if several do)."""
        best, best_epoch = None, -1
        for master, body in zip(self.masters, self.roles().values()):
            if body and body["role"] == "leader" and (body["epoch"] or 0) > best_epoch:
                best, best_epoch = master, body["epoch"] or 0
        return best

    def wait_leader(self, timeout: float, other_than: Optional[str] = None,
                    after_epoch: Optional[int] = None) -> tuple[LocalCluster, dict]:
        """Block until a master answers as leader (not ``other_than``, of an epoch above
        ``after_epoch``); returns it and its health."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for master in self.masters:
                if master.url == other_than:
                    continue
                body = health_of(master.url, timeout=0.5)
                if body and body["role"] == "leader" and (
                        after_epoch is None or (body["epoch"] or 0) > after_epoch):
                    return master, body
            time.sleep(0.05)
        raise TimeoutError(f"no leader within {timeout}s:\n{self.log_tails()}")

    def wait_hosts(self, timeout: float) -> None:
        """Block until the leader lists every agent's hosts as registered."""
        want = sum(len(slot.hosts) for slot in self.agents.values())
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            seen = len(self.live_hosts())
            if seen >= want:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{seen} of {want} hosts registered within {timeout}s")

    def live_hosts(self) -> list[str]:
        """Host ids active in the leader's engine (a standby's engine holds none)."""
        leader = self.leader()
        for url in [leader.url] if leader is not None else []:
            try:
                response = httpx.get(f"{url}/api/v3/hosts", headers=self.headers(),
                                     timeout=2.0)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                return [host["id"] for host in response.json()["items"] if host.get("active")]
        return []

    def headers(self) -> dict[str, str]:
        """The user's Authorization header."""
        return {"authorization": f"Bearer {self.token}"}

    def _sample(self) -> None:
        """Ask every master's /health every 0.2 s (the record of who claimed to lead)."""
        while self._sampling.is_set():
            for url in self.urls:
                body = health_of(url, timeout=0.3)
                self.samples.append(HealthSample(
                    time.monotonic(), url, body and body["role"], body and body["epoch"],
                    body and body["leader"]))
            time.sleep(0.2)

    def __enter__(self) -> "ChaosCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
