"""Instance groups: sets of identical hosts that grow and shrink together.

An instance group names one instance type (with its resources), the tier it serves, the zones its
hosts live in, its lifecycle and its size bounds. Hosts of a group carry the attributes returned by
:meth:`InstanceGroup.host_attributes` (``instance_group``, ``instance_type``, ``tier``, ``zone``
plus the group's own), which is how agents report their group and how constraints can target it.

Lifecycle, after Titus:

- ``Active``: normal; tasks are placed and the autoscaler grows and shrinks the group.
- ``PhasedOut``: no new tasks land on its hosts; running tasks go on; the autoscaler leaves it alone.
- ``Inactive``: drain and remove: no new tasks, and each host is terminated once it is empty.

Bad input raises ``ValueError`` (pydantic's ``ValidationError``) naming the field.
"""
from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any, Iterable

from pydantic import (BaseModel, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)

from titus.boundary import no_bool_for_number, plain_text
from titus.protocol import INT32_MAX, MAX_QUANTITY
from titus.scheduler.validation import EPS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Lifecycle(str, Enum):
    """Where an instance group is in its life (see the module docstring)."""

    ACTIVE = "Active"
    PHASED_OUT = "PhasedOut"
    INACTIVE = "Inactive"


class Tier(str, Enum):
    """The capacity tier a group serves, as in Titus."""

    FLEX = "Flex"
    CRITICAL = "Critical"


class InstanceType(BaseModel):
    """A machine shape: what one host of the group offers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # bounded as an agent's hosts are (titus.protocol.HostInfo): a larger type could never join
    cpus: float = Field(gt=0, le=MAX_QUANTITY, allow_inf_nan=False)
    memory_mb: float = Field(gt=0, le=MAX_QUANTITY, allow_inf_nan=False)
    disk_mb: float = Field(default=0, ge=0, le=MAX_QUANTITY, allow_inf_nan=False)
    network_mbps: float = Field(default=0, ge=0, le=MAX_QUANTITY, allow_inf_nan=False)
    gpu: int = Field(default=0, ge=0, le=INT32_MAX)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        return no_bool_for_number(cls, value, info)

    def resources(self) -> dict[str, float]:
        """The type's capacities keyed by scheduler resource name (``gpu`` is a scalar)."""
        return {
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "disk_mb": self.disk_mb,
            "network_mbps": self.network_mbps,
            "gpu": float(self.gpu),
        }


MAX_GROUP_SIZE = 1_000_000  # hosts in one group: far beyond any fleet


class InstanceGroup(BaseModel):
    """A named set of hosts of one instance type, with bounds on its size."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    name: str
    instance_type: InstanceType
    tier: Tier = Tier.FLEX
    zones: tuple[str, ...] = Field(min_length=1)
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    min_size: int = Field(default=0, ge=0, le=MAX_GROUP_SIZE)
    max_size: int = Field(default=100, ge=0, le=MAX_GROUP_SIZE)
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        return no_bool_for_number(cls, value, info)

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                "must be 1-128 characters of letters, digits, '.', '_' or '-', starting with "
                f"a letter or digit; got {value!r}"
            )
        return value

    @field_validator("zones")
    @classmethod
    def _zones_distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not _NAME.fullmatch(z) for z in value):
            raise ValueError("zone names must be 1-128 letters, digits, '.', '_' or '-'")
        if len(set(value)) != len(value):
            raise ValueError(f"zones must be distinct, got {list(value)!r}")
        return value

    @field_validator("attributes")
    @classmethod
    def _no_reserved_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        clash = sorted(set(value) & RESERVED_ATTRIBUTES)
        if clash:
            raise ValueError(f"{clash[0]!r} is set by the group itself and cannot be given")
        for key, text in value.items():  # the group's hosts carry them: same rules as agents'
            if not _NAME.fullmatch(key) or not plain_text(text) or len(text) > 1024:
                raise ValueError(f"attribute {key!r}: keys are letters, digits, '.', '_' or '-';"
                                 " values printable text up to 1024 characters")
        return value

    @model_validator(mode="after")
    def _bounds_ordered(self) -> "InstanceGroup":
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must be <= max_size ({self.max_size})")
        return self

    @property
    def accepts_tasks(self) -> bool:
        """Whether new tasks may be placed on the group's hosts."""
        return self.lifecycle == Lifecycle.ACTIVE

    def host_attributes(self, zone: str) -> dict[str, str]:
        """The attributes a host of this group in ``zone`` carries."""
        if zone not in self.zones:
            raise ValueError(f"group {self.name!r}: zone {zone!r} is not one of {list(self.zones)!r}")
        return {
            **self.attributes,
            "instance_group": self.name,
            "instance_type": self.instance_type.name,
            "tier": self.tier.value,
            "zone": zone,
        }

    def updated(self, **changes) -> "InstanceGroup":
        """A validated copy with ``changes`` applied (the name cannot change)."""
        if "name" in changes and changes["name"] != self.name:
            raise ValueError("name: an instance group cannot be renamed")
        return InstanceGroup.model_validate({**self.model_dump(), **changes})


RESERVED_ATTRIBUTES = frozenset({"instance_group", "instance_type", "tier", "zone", "hostname"})


def zone_spread(zones: Iterable[str], count: int) -> list[str]:
    """``count`` zone names, dealt round-robin so zones stay balanced."""
    zones = list(zones)
    return [zones[i % len(zones)] for i in range(count)] if zones else []


def hosts_for(instance_type: InstanceType, demand: dict[str, float]) -> int:
    """How many empty hosts of ``instance_type`` a total ``demand`` needs at the least."""
    caps = instance_type.resources()
    need = 0
    for resource, amount in demand.items():
        if amount <= 0:
            continue
        cap = caps.get(resource, 0.0)
        if cap <= 0:
            raise ValueError(f"{resource}: instance type {instance_type.name!r} has none")
        need = max(need, math.ceil(amount / cap - EPS))  # the engine's slack
    return need


class InstanceGroupRegistry:
    """The instance groups known to the control plane, by name."""

    def __init__(self, groups: Iterable[InstanceGroup] = ()):
        self._groups: dict[str, InstanceGroup] = {}
        for group in groups:
            self.create(group)

    def create(self, group: InstanceGroup) -> InstanceGroup:
        """Add a new group; a name already taken raises ``ValueError``."""
        if group.name in self._groups:
            raise ValueError(f"name: instance group {group.name!r} already exists")
        self._groups[group.name] = group
        return group

    def update(self, group_name: str, /, **changes) -> InstanceGroup:
        """Change fields of an existing group (validated); returns the new group."""
        group = self.get(group_name).updated(**changes)
        self._groups[group_name] = group
        return group

    def put(self, group: InstanceGroup) -> InstanceGroup:
        """Create or replace a group."""
        self._groups[group.name] = group
        return group

    def delete(self, name: str) -> InstanceGroup:
        """Remove a group; an unknown name raises ``KeyError``."""
        self.get(name)
        return self._groups.pop(name)

    def get(self, name: str) -> InstanceGroup:
        """The group called ``name``; an unknown name raises ``KeyError``."""
        try:
            return self._groups[name]
        except KeyError:
            raise KeyError(f"instance group {name!r} is not known") from None

    def __contains__(self, name: object) -> bool:
        return name in self._groups

    def __iter__(self):
        return iter(list(self._groups.values()))

    def __len__(self) -> int:
        return len(self._groups)

    def names(self) -> list[str]:
        """Group names in creation order."""
        return list(self._groups)
