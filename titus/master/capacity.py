"""Tiers and capacity groups.

A capacity group has a name, a tier (``Critical`` or ``Flex``), guaranteed resources and an
optional limit. The pending queue serves the Critical tier before Flex; inside a tier, groups
share by dominant resource share weighted by their guarantees (a group's share is its largest
``used[r] / cluster[r]``, divided by its weight, the largest ``guaranteed[r] / cluster[r]``;
the group with the lowest weighted share goes next). A group never holds more than its limit.
Jobs without a capacity group belong to ``DEFAULT`` (Flex, no guarantee, no limit).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from titus.master.model import CapacityGroupSpec, ContainerResources
from titus.resources import PLATFORM_RESOURCES as RESOURCES
from titus.scheduler.validation import over

TIER_ORDER = ("Critical", "Flex")
# Weight of a group with no guarantee: such groups still share among themselves by DRF.
MIN_WEIGHT = 1e-3


def demand_of(res: ContainerResources) -> dict[str, float]:
    """Engine resource names and amounts for container resources."""
    return {"cpus": float(res.cpu), "memory_mb": float(res.memoryMB), "disk_mb": float(res.diskMB),
            "network_mbps": float(res.networkMbps), "gpu": float(res.gpu)}


@dataclass
class CapacityGroup:
    """A named share of the cluster."""

    name: str
    tier: str = "Flex"
    guarantee: dict = field(default_factory=dict)
    limit: Optional[dict] = None
    spec: Optional[CapacityGroupSpec] = None

    @classmethod
    def from_spec(cls, spec: CapacityGroupSpec) -> "CapacityGroup":
        """A group from its validated wire form."""
        return cls(spec.name, spec.tier, demand_of(spec.resources),
                   demand_of(spec.limit) if spec.limit is not None else None, spec)

    def weight(self, cluster: dict[str, float]) -> float:
        """Largest share of the cluster guaranteed to the group (at least ``MIN_WEIGHT``)."""
        w = max((self.guarantee.get(r, 0.0) / cluster[r] for r in RESOURCES if cluster.get(r, 0) > 0),
                default=0.0)
        return max(w, MIN_WEIGHT)

    def over_limit(self, used: dict[str, float], demand: dict[str, float]) -> Optional[str]:
        """The first resource the demand would push past the limit, or None."""
        if not self.limit:
            return None
        for r in RESOURCES:
            cap = self.limit.get(r, 0.0)
            if cap > 0 and over(used.get(r, 0.0), demand.get(r, 0.0), cap):
                return r
        return None

    def wire(self) -> dict:
        """The REST form."""
        if self.spec is not None:
            return self.spec.model_dump(mode="json", exclude_none=True)
        return {"name": self.name, "tier": self.tier}


def dominant_share(used: dict[str, float], cluster: dict[str, float]) -> float:
    """Largest ``used[r] / cluster[r]`` over resources the cluster has."""
    return max((used.get(r, 0.0) / cluster[r] for r in RESOURCES if cluster.get(r, 0) > 0),
               default=0.0)


class CapacityGroups:
    """The known groups, with ``DEFAULT`` always present."""

    def __init__(self):
        self.groups: dict[str, CapacityGroup] = {}

    def get(self, name: str) -> CapacityGroup:
        """The group called ``name``; an unknown name is a Flex group without guarantee."""
        group = self.groups.get(name)
        return group if group is not None else CapacityGroup(name)

    def put(self, group: CapacityGroup) -> None:
        """Add or replace a group."""
        self.groups[group.name] = group

    def remove(self, name: str) -> bool:
        """Remove a group; False if it was not there."""
        return self.groups.pop(name, None) is not None

    def preempts(self, name: str) -> bool:
        """Whether the group's tasks may preempt Flex-tier tasks: a Critical group unless its
        spec says ``"preemption": false`` (docs/preemption.md)."""
        group = self.get(name)
        if group.tier != "Critical":
            return False
        return group.spec is None or group.spec.preemption is not False

    def tier_rank(self, name: str) -> int:
        """0 for Critical, 1 for Flex."""
        tier = self.get(name).tier
        return TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)
