"""The web UI's query parameters, checked like every other input of the master.

A filter is free text of at most :data:`MAX_TEXT` characters in valid Unicode; a choice is one
of a fixed list; a count is a whole number in a range. Anything else is a 400 in the one error
shape (``titus.master.api.errors``) naming the parameter; an empty value means "no filter".
"""
from __future__ import annotations

from typing import Optional, Sequence

from titus.boundary import Problem, SpecError, unicode_ok

MAX_TEXT = 256


def text(name: str, value: Optional[str]) -> Optional[str]:
    """A free-text filter, or None when absent or empty."""
    if value is None or value.strip() == "":
        return None
    if len(value) > MAX_TEXT:
        raise SpecError([Problem(name, f"at most {MAX_TEXT} characters", value)], "query")
    if not unicode_ok(value) or "\x00" in value:
        raise SpecError([Problem(name, "must be valid Unicode text without NUL")], "query")
    return value.strip()


def choice(name: str, value: Optional[str], allowed: Sequence[str],
           default: Optional[str] = None) -> Optional[str]:
    """One of ``allowed`` (``default`` when absent or empty)."""
    value = text(name, value)
    if value is None:
        return default
    if value not in allowed:
        raise SpecError([Problem(name, "must be one of " + ", ".join(allowed), value)], "query")
    return value


def count(name: str, value: Optional[str], default: int, low: int, high: int) -> int:
    """A whole number in ``[low, high]`` (``default`` when absent or empty)."""
    value = text(name, value)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise SpecError([Problem(name, f"must be a whole number from {low} to {high}", value)],
                        "query")
    return int(value)
