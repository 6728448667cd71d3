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
