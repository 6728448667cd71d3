"""How long the master itself could not run: its own lag, so that a busy master never takes
its own slowness for an agent's silence.

A thread and a task on the event loop each sleep ``PERIOD`` seconds over and over; whatever
they oversleep beyond ``TOLERANCE`` is time the process could not run when it wanted to (a
CPU-starved or GIL-starved process, a blocked event loop, a stopped process, a swap storm).
:data:`METER` adds it up. An agent's silence is then measured net of the master's lag since
the agent was last heard (``titus.master.agents``): a heartbeat that sat in the master's own
queues is not the agent's fault. (Kubernetes' node lifecycle controller has no such measure;
its answer to a busy API server is a long grace period for every node instead.)
"""
from __future__ import annotations

import asyncio
import threading
import time

PERIOD = 0.1
TOLERANCE = 0.05


class LagMeter:
    """The master's accumulated lag, in seconds (monotonic; never decreases)."""

    def __init__(self):
        self._lock = threading.Lock()
        # per watcher: one stall (a stopped process) is seen by both, and counted once
        self._totals = {"thread": 0.0, "loop": 0.0}
        self._worst = 0.0  # the longest single stall seen (for /metrics)
        self._thread: threading.Thread | None = None

    @property
    def total(self) -> float:
        """Seconds of lag so far (the larger of the two watchers' sums)."""
        return max(self._totals.values())

    @property
    def worst(self) -> float:
        """The longest single stall so far, in seconds."""
        return self._worst

    def add(self, overslept: float, watcher: str = "thread") -> None:
        """Count a stall of ``overslept`` seconds seen by ``watcher`` (ignored below the
        tolerance)."""
        if overslept > TOLERANCE:
            with self._lock:
                self._totals[watcher] += overslept
                self._worst = max(self._worst, overslept)

    def start(self) -> None:
        """Watch from a thread (once per process)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._watch, name="titus-lag", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            began = time.monotonic()
            time.sleep(PERIOD)
            self.add(time.monotonic() - began - PERIOD)

    async def watch_loop(self) -> None:
        """Watch the event loop that runs this coroutine (until cancelled)."""
        while True:
            began = time.monotonic()
            await asyncio.sleep(PERIOD)
            self.add(time.monotonic() - began - PERIOD, "loop")


METER = LagMeter()
