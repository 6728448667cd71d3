"""Local provider: each host is a ``titus agent`` process on this machine (laptops and tests).

Growing a group starts one agent per new host, standing for one host of the group's instance
type, in the group's zone that has the fewest of its hosts (zones stay balanced), with the
group's attributes; the sim runtime is the default, ``docker`` is an option. The agent's id is
reported as the host's ``instance_id`` attribute, which is how a host chosen for removal is
mapped back to its process. Terminating stops the process (SIGTERM: the agent deregisters).
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from titus.autoscale.groups import InstanceGroup
from titus.autoscale.hostview import HostView

_TITUS_MAIN = "import sys; from titus.cli import main; sys.exit(main(prog_name='titus'))"


@dataclass
class _Agent:
    agent_id: str
    group: str
    zone: str
    process: subprocess.Popen
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class LocalProvider:
    """Starts and stops agent processes (see the module docstring)."""

    def __init__(self, master_url: str, runtime: str = "sim", token: Optional[str] = None,
                 workdir: Optional[str | os.PathLike] = None, extra_args: Sequence[str] = (),
                 stop_timeout_sec: float = 10.0):
        if runtime not in ("sim", "docker"):
            raise ValueError(f"runtime: must be 'sim' or 'docker', got {runtime!r}")
        self.master_url = master_url
        self.runtime = runtime
        self.token = token
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="titus-local-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra_args = list(extra_args)
        self.stop_timeout_sec = stop_timeout_sec
        self._agents: dict[str, _Agent] = {}
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ Provider
    def ensure_group(self, group: InstanceGroup) -> None:
        """Nothing to create locally."""

    def desired(self, group: InstanceGroup) -> int:
        """Agent processes of the group that are still running."""
        with self._lock:
            return sum(1 for a in self._agents.values() if a.group == group.name and a.alive)

    def grow(self, group: InstanceGroup, count: int) -> int:
        """Start ``count`` agents for the group; returns how many it has now."""
        if count < 0:
            raise ValueError(f"count: must be >= 0, got {count}")
        with self._lock:
            per_zone = Counter(a.zone for a in self._agents.values() if a.group == group.name and a.alive)
            for _ in range(count):
                zone = min(group.zones, key=lambda z: (per_zone[z], group.zones.index(z)))
                per_zone[zone] += 1
                agent = self._start(group, zone)
                self._agents[agent.agent_id] = agent
        return self.desired(group)

    def terminate(self, group: InstanceGroup, hosts: Sequence[HostView]) -> None:
        """Stop the agents behind ``hosts`` (a host of another group or provider is refused)."""
        with self._lock:
            chosen = []
            for host in hosts:
                agent = self._agent_of(host)
                if agent is None or agent.group != group.name:
                    raise ValueError(f"host {host.id!r}: not an agent of group {group.name!r} started here")
                chosen.append(agent)
            for agent in chosen:
                agent.process.terminate()
            for agent in chosen:
                _wait_or_kill(agent.process, self.stop_timeout_sec)
                del self._agents[agent.agent_id]

    def instances(self, group: InstanceGroup) -> dict[str, str]:
        """Agents of the group still running: agent id (its instance id) -> zone."""
        return self.agents(group.name)

    def terminate_instances(self, group: InstanceGroup, instance_ids: Sequence[str]) -> None:
        """Stop agents that never joined, by id (one not of this group is refused)."""
        with self._lock:
            chosen = [self._agents.get(iid) for iid in instance_ids]
            for iid, agent in zip(instance_ids, chosen):
                if agent is None or agent.group != group.name:
                    raise ValueError(f"instance {iid!r}: not an agent of group {group.name!r}")
            for agent in chosen:
                agent.process.terminate()
            for agent in chosen:
                _wait_or_kill(agent.process, self.stop_timeout_sec)
                del self._agents[agent.agent_id]

    def owned(self, group: InstanceGroup, hosts: Sequence[HostView]) -> set[str]:
        """The hosts among ``hosts`` whose agents this provider started for ``group``."""
        with self._lock:
            return {h.id for h in hosts if self._agent_of(h) is not None
                    and self._agent_of(h).group == group.name}

    def _agent_of(self, host: HostView) -> Optional[_Agent]:
        return self._agents.get(host.instance_id or "") or self._agents.get(host.attributes.get("agent_id", ""))

    # ------------------------------------------------------------------ lifetime
    def agents(self, group: Optional[str] = None) -> dict[str, str]:
        """Running agents: agent id (= instance id) -> zone."""
        with self._lock:
            return {a.agent_id: a.zone for a in self._agents.values()
                    if a.alive and (group is None or a.group == group)}

    def stop_all(self) -> None:
        """Stop every agent this provider started."""
        with self._lock:
            agents = list(self._agents.values())
            for agent in agents:
                if agent.alive:
                    agent.process.terminate()
            for agent in agents:
                _wait_or_kill(agent.process, self.stop_timeout_sec)
            self._agents.clear()

    def __enter__(self) -> "LocalProvider":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def _start(self, group: InstanceGroup, zone: str) -> _Agent:
        agent_id = f"{group.name}-{os.getpid()}-{next(self._serial)}"
        t = group.instance_type
        args = [
            "agent", "--master", self.master_url, "--agent-id", agent_id,
            "--runtime", self.runtime, "--zone", zone,
            "--cpus", str(t.cpus), "--memory-mb", str(t.memory_mb), "--disk-mb", str(t.disk_mb),
            "--network-mbps", str(t.network_mbps), "--gpu", str(t.gpu),
            "--instance-type", t.name, "--instance-group", group.name, "--no-server",
            "--attribute", f"instance_id={agent_id}", "--attribute", f"tier={group.tier.value}",
        ]
        if self.runtime == "sim":
            args += ["--hosts", "1"]
        for key, value in group.attributes.items():
            args += ["--attribute", f"{key}={value}"]
        env = dict(os.environ)
        if self.token:
            env["TITUS_AGENT_TOKEN"] = self.token
        log_path = self.workdir / f"agent-{agent_id}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-c", _TITUS_MAIN, *args, *self.extra_args],
                                       stdout=log, stderr=subprocess.STDOUT, env=env,
                                       stdin=subprocess.DEVNULL)
        return _Agent(agent_id, group.name, zone, process, log_path)


def _wait_or_kill(process: subprocess.Popen, timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
