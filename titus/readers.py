"""How the numbers of an input are read: once, by their value, alike on the engine and the twin.

A field is checked, then encoded for the engine or read by the twin: three reads. An object
whose ``__float__``, ``__int__``, ``__index__`` or ``item`` says something else than its value
-- or something else at each call -- must not pass the check as one number and be placed as
another. So a subclass of ``float``, ``int`` or a numpy number is read by the value it holds, not
through its overrides, and any other type is refused at the check.
"""
from __future__ import annotations

import numpy as np


def text(value):
    """A string (or a subclass) as an exact ``str`` of its characters, read by ``str``'s own
    method (no override of the caller's runs); None for anything else. An option name or an
    id to look up is compared and hashed as this, never by a subclass's ``==`` or ``hash``,
    which could answer otherwise at the next lookup."""
    return str.__str__(value) if issubclass(type(value), str) else None


def is_integer(value) -> bool:
    """Whether ``value`` is an integer field's type: an ``int`` or a numpy integer (a subclass
    too), not a bool nor a numpy ``timedelta64`` (which numpy counts an integer but reads as a
    duration)."""
    t = type(value)  # its type, not its ``__class__`` (which a caller's property can make up)
    return issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.timedelta64))


def int_value(value) -> int:
    """The value an integer field (``expected_values``, a task's ``ports`` or ``priority``, a
    count) is read as: an ``int``'s own value -- for a subclass too, whatever its ``__int__`` or
    ``__index__`` says -- or a numpy integer's. Equal values read alike, so tasks of a shared
    task class (equal fields) are placed alike. Raises TypeError for a bool or any other type;
    validation refuses those first.
    """
    if not is_integer(value):
        raise TypeError(f"an integer field is an int or a numpy integer, got {type(value).__name__}")
    if issubclass(type(value), int):
        return int.__index__(value)
    return np.generic.item(value)  # its value, not a subclass's item, __int__ or __index__


def quantity(value) -> float:
    """The float a quantity (cpus, memory_mb, disk_mb, network_mbps, a scalar, a group limit) is
    read as: a ``float``'s own value, an ``int``'s (beyond float range: inf), a numpy number's --
    for a subclass too, whatever its ``__float__``, ``__index__`` or ``item`` says. Raises
    TypeError for a bool or any other type; validation refuses those first (and a value that is
    not finite and >= 0).
    """
    t = type(value)  # its type, not its ``__class__`` (which a caller's property can make up)
    if t is float:
        return value
    if issubclass(t, (bool, np.timedelta64)):
        raise TypeError(f"a quantity is a float, an int or a numpy number, got {t.__name__}")
    if issubclass(t, float):
        return float.__float__(value)  # the double it holds, not its __float__
    if issubclass(t, int):
        n = int.__index__(value)
        try:
            return float(n)
        except OverflowError:  # an int beyond float range
            return float("inf") if n > 0 else float("-inf")
    if issubclass(t, (np.floating, np.integer)):
        held = np.generic.item(value)  # its value, as a Python float or int ...
        if type(held) is not float and type(held) is not int:  # ... or numpy's own (longdouble)
            held = float(held)  # numpy's base type here, not the caller's subclass
        return quantity(held)
    raise TypeError(f"a quantity is a float, an int or a numpy number, got {type(value).__name__}")
