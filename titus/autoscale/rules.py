"""Autoscale rules, one per instance group, after Fenzo's ``AutoScaleRule``.

- ``min_idle``: fewer idle hosts than this (after the cooldown) asks for more, up to ``min_idle``;
- ``max_idle``: idle hosts beyond this are removed (after the cooldown, never during a shortfall);
- ``min_size`` / ``max_size``: the group never shrinks below / grows above these (``None`` means
  "the group's own bound"; the tighter of the rule's and the group's bound applies);
- ``cooldown_sec``: the least time between two scaling actions of the group (a shortfall scale-up
  does not wait for it).

Invalid rules (``min_idle > max_idle``, negative numbers, sizes out of order, unknown group) are
refused with a ``ValueError`` naming the field.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from titus.autoscale.groups import MAX_GROUP_SIZE, InstanceGroup, InstanceGroupRegistry
from titus.boundary import no_bool_for_number


class AutoscaleRule(BaseModel):
    """How one instance group scales."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(min_length=1)
    min_idle: int = Field(default=0, ge=0, le=MAX_GROUP_SIZE)
    max_idle: int = Field(default=0, ge=0, le=MAX_GROUP_SIZE)
    min_size: Optional[int] = Field(default=None, ge=0, le=MAX_GROUP_SIZE)
    max_size: Optional[int] = Field(default=None, ge=0, le=MAX_GROUP_SIZE)
    cooldown_sec: float = Field(default=60.0, ge=0, le=1e9, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        return no_bool_for_number(cls, value, info)

    @model_validator(mode="after")
    def _ordered(self) -> "AutoscaleRule":
        if self.min_idle > self.max_idle:
            raise ValueError(f"min_idle ({self.min_idle}) must be <= max_idle ({self.max_idle})")
        if self.min_size is not None and self.max_size is not None and self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must be <= max_size ({self.max_size})")
        return self

    def bounds(self, group: InstanceGroup) -> tuple[int, int]:
        """The effective ``(min_size, max_size)``: the tighter of the rule's and the group's."""
        low = group.min_size if self.min_size is None else max(group.min_size, self.min_size)
        high = group.max_size if self.max_size is None else min(group.max_size, self.max_size)
        return low, high


class RuleBook:
    """The rules in force, checked against the instance groups they name."""

    def __init__(self, groups: InstanceGroupRegistry, rules: Iterable[AutoscaleRule] = ()):
        self._groups = groups
        self._rules: dict[str, AutoscaleRule] = {}
        for rule in rules:
            self.set(rule)

    def set(self, rule: AutoscaleRule) -> AutoscaleRule:
        """Add or replace the rule of ``rule.group``; refuses rules that cannot hold."""
        if rule.group not in self._groups:
            raise ValueError(f"group: instance group {rule.group!r} is not known")
        check_rule_fits(rule, self._groups.get(rule.group))
        self._rules[rule.group] = rule
        return rule

    def remove(self, group: str) -> None:
        """Drop the rule of ``group`` (no error if it has none)."""
        self._rules.pop(group, None)

    def get(self, group: str) -> Optional[AutoscaleRule]:
        """The rule of ``group``, or ``None``."""
        return self._rules.get(group)

    def __iter__(self):
        return iter(list(self._rules.values()))

    def __len__(self) -> int:
        return len(self._rules)

    def prune(self) -> None:
        """Forget rules whose group no longer exists."""
        for name in [n for n in self._rules if n not in self._groups]:
            del self._rules[name]


def check_rule_fits(rule: AutoscaleRule, group: InstanceGroup) -> None:
    """Raise ``ValueError`` naming the field if ``rule`` cannot hold for ``group``."""
    low, high = rule.bounds(group)
    if low > high:
        field = "min_size" if rule.min_size is not None else "max_size"
        raise ValueError(
            f"{field}: group {group.name!r} would need at least {low} and at most {high} hosts"
        )
    if rule.min_idle > high:
        raise ValueError(
            f"min_idle: {rule.min_idle} idle hosts cannot be kept in group {group.name!r} "
            f"of at most {high} hosts"
        )
