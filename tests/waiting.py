"""Waiting in tests for something another thread or process does."""
from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 15.0, what: str = "the condition") -> None:
    """Poll ``predicate`` every 20 ms until it is true; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def read_until(stream, marker: str, timeout: float) -> str:
    """Lines of a child's text ``stream`` up to and including the one holding ``marker`` (or
    all it wrote before it ended or ``timeout`` s passed): the caller asserts on what it got."""
    out = ""
    deadline = time.monotonic() + timeout
    while marker not in out and time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        out += line
    return out
