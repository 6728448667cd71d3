"""The master as the autoscaler sees it: host views and unplaced tasks in, disable/enable out."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from titus.autoscale.hostview import HostView
from titus.master import states
from titus.master.queue import LIMIT_MESSAGE
from titus.scheduler.model import Task

# Tasks held back by their capacity group's limit are not a reason to add hosts.
_LIMIT_PREFIX = LIMIT_MESSAGE.split("{", 1)[0]


class MasterCluster:
    """Reads a snapshot of a ``Master`` and disables, enables and forgets its hosts."""

    def __init__(self, master):
        self.master = master

    def snapshot(self) -> tuple[list[HostView], list[Task]]:
        """Every registered host (with its task count) and every task waiting for a host."""
        m = self.master
        with m.lock:
            now = m.now()
            running = Counter(t.host_id for t in m.tasks.values() if t.state in states.ON_HOST)
            hosts = [
                HostView(h.host_id, h.attributes.get("instance_group", ""), h.attributes.get("zone", ""),
                         running.get(h.host_id, 0), False, dict(h.attributes))
                for _, h in m.registry.hosts()
            ]
            zones = m.zone_count()
            waiting = [
                m.engine_task(t, zones) for t in m.tasks.values()
                if t.state == states.ACCEPTED and t.retry_at <= now
                and not (t.scheduling_failure or "").startswith(_LIMIT_PREFIX)
            ]
        return hosts, waiting

    def disable_hosts(self, host_ids: Sequence[str]) -> None:
        """No new task lands on these hosts (the engine rejects them as ``disabled``), also
        after they register again, or when they have not registered yet."""
        with self.master.lock:
            self.master.held_off.update(host_ids)
        self._each(host_ids, "disable_host")

    def enable_hosts(self, host_ids: Sequence[str]) -> None:
        """Tasks may land on these hosts again."""
        with self.master.lock:
            self.master.held_off.difference_update(host_ids)
        self._each(host_ids, "enable_host")
        with self.master.lock:
            self.master.sched_dirty = True
        self.master.wake.set()

    def remove_hosts(self, host_ids: Sequence[str]) -> None:
        """Forget agents all of whose hosts were terminated (their tasks were none)."""
        m = self.master
        gone = set(host_ids)
        with m.lock:
            m.held_off.difference_update(gone)
            agents = {m.registry.agent_of_host(h) for h in gone} - {None}
            for agent_id in agents:
                agent = m.registry.get(agent_id)
                if agent is not None and set(agent.hosts) <= gone:
                    try:
                        m.deregister_agent(agent_id)
                    except KeyError:  # it left on its own meanwhile
                        pass

    def _each(self, host_ids: Sequence[str], method: str) -> None:
        m = self.master
        with m.lock:
            for host_id in host_ids:
                if host_id in m.engine_hosts:
                    getattr(m.scheduler, method)(host_id)
