"""Placement constraints, after Fenzo's.

Each constraint can be *hard* (a host that does not satisfy it is rejected) or *soft* (it scores
the host in [0, 1] and the score is blended with fitness). The objects are plain, immutable data:
the scheduler validates them when they are handed to it, and the exact rules live in
``docs/semantics.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from titus.readers import int_value


def value_text(value) -> str:
    """The text an attribute value (a host's, or one a ``HostAttrValue`` names) is compared as:
    a string's own characters and an integer's decimal digits -- for a subclass of ``str``,
    ``int`` or a numpy integer type too, whatever its ``__str__`` (or ``__int__``) says. Values
    that compare equal have equal text, so equal constraints (which share a task class) match
    the same hosts. Raises ValueError for an integer past Python's digit limit and TypeError for
    any other type (another ``numbers.Integral`` too: equal ones need not have equal digits);
    validation refuses both first.
    """
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, np.integer):
        return int.__repr__(np.generic.item(value))  # its value, not a subclass's __str__ or __int__
    raise TypeError(f"an attribute value is a string or an integer, got {type(value).__name__}")


def _shown(value) -> str:
    """A value as a constraint's repr (and so a failure message) shows it: its text, the same
    for equal values of a shared task class; ``str()`` for what is no attribute value."""
    try:
        return value_text(value)
    except TypeError:
        return str(value)


@dataclass(frozen=True, init=False)
class HostAttrValue:
    """The host's attribute ``attr`` must equal ``value``, or be one of ``values``.

    ``HostAttrValue("zone", "a")``, ``HostAttrValue("zone", ["a", "b"])`` (a list, tuple, set
    or frozenset as the value means "one of these"; a set's values are kept sorted by their
    text, so equal sets make equal constraints) and ``HostAttrValue("zone", values=["a", "b"])``
    are all accepted. ``attr="hostname"`` matches the host id.
    """

    attr: str
    values: tuple = field(default=())

    def __init__(self, attr: str, value=None, values: Iterable | None = None):
        object.__setattr__(self, "attr", attr)
        vals = () if value is None else _one_or_many(value)
        if values is not None:
            vals = (*vals, *(_one_or_many(values) if isinstance(values, (set, frozenset, str))
                             else tuple(values)))
        object.__setattr__(self, "values", vals)

    def __repr__(self) -> str:
        vals = ",".join(_shown(v) for v in self.values)
        return f"HostAttrValue({_shown(self.attr)}={vals})"


def _one_or_many(value) -> tuple:
    """A list/tuple as its items, a set as its items sorted by text, anything else as one value."""
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(value, key=_shown))
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


@dataclass(frozen=True)
class UniqueHostAttr:
    """No two co-tasks (tasks of the same job) on hosts with the same value of ``attr``.

    With the default ``attr="hostname"`` this is "one task of the job per host".
    """

    attr: str = "hostname"

    def __repr__(self) -> str:
        return f"UniqueHostAttr({_shown(self.attr)})"


@dataclass(frozen=True)
class ExclusiveHost:
    """The task needs a host with no other task on it, and (as a hard constraint) keeps it."""

    def __repr__(self) -> str:
        return "ExclusiveHost()"


@dataclass(frozen=True)
class BalancedHostAttr:
    """Spread co-tasks evenly over the values of ``attr`` (e.g. zones).

    Hard: a value may not hold more than ``ceil(co-tasks / expected_values)`` co-tasks, counting
    the task being placed. Soft: the score falls as the host's value holds more co-tasks than
    the least-loaded value.
    """

    attr: str
    expected_values: int

    def __repr__(self) -> str:
        return f"BalancedHostAttr({_shown(self.attr)},{_shown(self.expected_values)})"


CONSTRAINT_TYPES = (HostAttrValue, UniqueHostAttr, ExclusiveHost, BalancedHostAttr)


def plain_constraint(c):
    """``c`` as one of the four kinds exactly, its fields read once by value: the attribute as a
    str, the values as their text (``value_text``: they match hosts as text anyway), a count
    as an int (``titus.readers.int_value``). A constraint of exactly one of the four kinds is
    returned as it is. A caller's own subclass keeps its meaning but not its ``==`` or ``hash``:
    tasks with equal constraints share a task class, so equal must mean equal fields.
    Raises TypeError (or AttributeError) for what validation refuses.
    """
    t = type(c)
    if t in CONSTRAINT_TYPES:
        return c
    if isinstance(c, HostAttrValue):
        return HostAttrValue(str.__str__(c.attr), tuple(value_text(x) for x in c.values))
    if isinstance(c, BalancedHostAttr):
        return BalancedHostAttr(str.__str__(c.attr), int_value(c.expected_values))
    if isinstance(c, UniqueHostAttr):
        return UniqueHostAttr(str.__str__(c.attr))
    if isinstance(c, ExclusiveHost):
        return ExclusiveHost()
    raise TypeError(f"not a constraint: {t.__name__}")

__all__ = ["HostAttrValue", "UniqueHostAttr", "ExclusiveHost", "BalancedHostAttr", "CONSTRAINT_TYPES",
           "plain_constraint", "value_text"]
