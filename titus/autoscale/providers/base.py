"""The interface the autoscaler drives: grow a group, terminate chosen hosts."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from titus.autoscale.groups import InstanceGroup


@runtime_checkable
class Provider(Protocol):
    """Creates and removes the machines behind instance groups.

    A provider counts the hosts it has asked for, booted or not (``desired``); the autoscaler
    compares that with the hosts that have registered to know how many are still on their way.
    """

    def ensure_group(self, group: InstanceGroup) -> None:
        """Create the backing group (or update its bounds) so it can be scaled."""

    def desired(self, group: InstanceGroup) -> int:
        """How many hosts the group should have now (booting ones included)."""

    def grow(self, group: InstanceGroup, count: int) -> int:
        """Ask for ``count`` more hosts; returns the new desired size."""

    def terminate(self, group: InstanceGroup, hosts: Sequence["HostView"]) -> None:  # noqa: F821
        """Terminate exactly these hosts and shrink the desired size by as many."""

    # Optional:
    # - ``owned(group, hosts) -> set of host ids`` it could terminate; without it the
    #   autoscaler assumes every host of the group is the provider's;
    # - ``instances(group) -> {instance id: zone}`` and ``terminate_instances(group, ids)``:
    #   with both, instances that never join are terminated after the provision timeout;
    # - ``settle_bounds(group)``: called every step, to bring the backing group's own
    #   bounds to the group's once that kills nothing (EC2's MaxSize).
