"""Test doubles for the autoscaler: an in-memory provider and cluster."""
from __future__ import annotations

from titus.autoscale.groups import InstanceGroup, InstanceGroupRegistry, InstanceType
from titus.autoscale.hostview import HostView


class MemoryProvider:
    """Counts desired hosts per group and records every call."""

    def __init__(self, desired=None):
        self.sizes: dict[str, int] = dict(desired or {})
        self.grown: list[tuple[str, int]] = []
        self.terminated: list[str] = []

    def ensure_group(self, group: InstanceGroup) -> None:
        self.sizes.setdefault(group.name, 0)

    def desired(self, group: InstanceGroup) -> int:
        return self.sizes.get(group.name, 0)

    def grow(self, group: InstanceGroup, count: int) -> int:
        self.sizes[group.name] = self.desired(group) + count
        self.grown.append((group.name, count))
        return self.sizes[group.name]

    def terminate(self, group: InstanceGroup, hosts) -> None:
        self.sizes[group.name] = self.desired(group) - len(hosts)
        self.terminated += [h.id for h in hosts]


class RecordingCluster:
    """Remembers which hosts were disabled, drained and removed."""

    def __init__(self):
        self.drained: list[str] = []
        self.disabled: list[str] = []
        self.removed: list[str] = []
        self.enabled: list[str] = []

    def disable_hosts(self, host_ids) -> None:
        self.disabled += list(host_ids)

    def remove_hosts(self, host_ids) -> None:
        self.removed += list(host_ids)

    def enable_hosts(self, host_ids) -> None:
        self.enabled += list(host_ids)

    def drain_hosts(self, host_ids) -> None:
        self.drained += list(host_ids)


def group(name="g4", cpus=4, memory_mb=16000, zones=("a", "b", "c"), **kw) -> InstanceGroup:
    """An instance group of ``cpus``-cpu hosts."""
    return InstanceGroup(name=name, instance_type=InstanceType(name=f"t{cpus}", cpus=cpus, memory_mb=memory_mb),
                         zones=zones, **kw)


def hosts(group_name: str, zone_counts: dict[str, int], running=None, prefix=None) -> list[HostView]:
    """Idle hosts named ``<prefix>-<zone>-<i>``; ``running`` maps host id -> tasks held."""
    running = running or {}
    out = []
    for zone, n in zone_counts.items():
        for i in range(n):
            host_id = f"{prefix or group_name}-{zone}-{i}"
            out.append(HostView(host_id, group_name, zone, running.get(host_id, 0)))
    return out


def registry(*groups) -> InstanceGroupRegistry:
    return InstanceGroupRegistry(groups)
