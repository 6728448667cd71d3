"""The master as the autoscaler sees it: host views and unplaced tasks in, hold-off/release and
drains out.

Everything goes through the master's own methods (:class:`titus.master.master.Master`):
the autoscaler never reads the master's memory or takes its lock.
"""
from __future__ import annotations

from typing import Sequence

from titus.autoscale.hostview import HostView
from titus.scheduler.model import Task


class MasterCluster:
    """Reads snapshots of a master and holds off, releases and forgets its hosts."""

    def __init__(self, master):
        self.master = master

    def snapshot(self) -> tuple[list[HostView], list[Task]]:
        """Every registered host (with its task count) and every task waiting for a host
        (tasks held back by their capacity group's limit are no reason to add hosts)."""
        usage = {h["id"]: h for h in self.master.queries.hosts()}
        hosts = []
        for host_id, attributes, running in self.master.queries.host_load():
            h = usage.get(host_id) or {}
            used = h.get("used") or {}
            hosts.append(HostView(host_id, attributes.get("instance_group", ""),
                                  attributes.get("zone", ""), running, False, attributes,
                                  cpus=float(h.get("cpus", 0.0)),
                                  memory_mb=float(h.get("memoryMB", 0.0)),
                                  used_cpus=float(used.get("cpus", 0.0)),
                                  used_memory_mb=float(used.get("memory_mb", 0.0))))
        return hosts, self.master.waiting_for_hosts()

    def drain_hosts(self, host_ids: Sequence[str]) -> None:
        """Drain hosts chosen for removal through the master's drain: no new task lands, and
        their tasks are relocated at the pace their budgets allow (a scale-down never breaks
        a budget). Hosts not registered are skipped."""
        self.master.drain_hosts(host_ids, strict=False, by="autoscaler")

    def disable_hosts(self, host_ids: Sequence[str]) -> None:
        """No new task lands on these hosts (the engine rejects them as ``disabled``), also
        after they register again, or when they have not registered yet."""
        self.master.hold_off_hosts(host_ids)

    def enable_hosts(self, host_ids: Sequence[str]) -> None:
        """Tasks may land on these hosts again."""
        self.master.release_hosts(host_ids)

    def remove_hosts(self, host_ids: Sequence[str]) -> None:
        """Forget agents all of whose hosts were terminated (their tasks were none)."""
        self.master.forget_hosts(host_ids)
