"""Run a generated workload through a scheduler and measure it (shared by ``titus bench`` and
``bench/``).

Only the scheduling calls are timed: generating the workload, building ``Task`` objects and
adding hosts happen before the clock starts (adding hosts is timed separately).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

# The engine names and the scheduler factory are titus.scheduler.factory's, re-exported here.
from titus.scheduler.factory import ENGINES, make_scheduler  # noqa: F401  (re-exported)
from titus.workloads.generator import Workload

APIS = ("arrays", "objects")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or "unknown": speeds are only comparable on one
    model, so every figure is printed beside it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


@dataclass
class Run:
    """What one run measured. ``placement`` int32[N]: host index per task row, -1 unplaced."""

    placement: np.ndarray
    schedule_seconds: float
    add_hosts_seconds: float

    @property
    def placed(self) -> int:
        """Tasks placed."""
        return int(np.count_nonzero(self.placement >= 0))

    @property
    def placements_per_second(self) -> float:
        """Tasks placed per second of scheduling calls."""
        return self.placed / self.schedule_seconds if self.schedule_seconds > 0 else float("inf")

    @property
    def tasks_per_second(self) -> float:
        """Tasks considered (placed or not) per second of scheduling calls."""
        n = len(self.placement)
        return n / self.schedule_seconds if self.schedule_seconds > 0 else float("inf")

    @property
    def hosts_used(self) -> int:
        """Hosts holding at least one task of the run."""
        return int(len(np.unique(self.placement[self.placement >= 0])))


def batches(n: int, batch: int) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of at most ``batch`` rows covering ``0..n``."""
    if batch <= 0:
        raise ValueError(f"batch must be >= 1, got {batch!r}")
    return [(a, min(a + batch, n)) for a in range(0, n, batch)] or [(0, 0)]


def run(scheduler, workload: Workload, api: str = "arrays", batch: int | None = None,
        progress: Callable[[int], None] | None = None) -> Run:
    """Add the workload's hosts to ``scheduler`` and schedule all its tasks, in row order.

    ``api`` is ``arrays`` (``schedule_arrays``) or ``objects`` (``schedule`` with ``Task``
    objects, built before timing). Rows go in batches of ``batch`` (default: all at once);
    the greedy semantics make the placements the same whatever the batching. ``progress`` is
    called with the rows done after each batch.
    """
    if api not in APIS:
        raise ValueError(f"api must be one of {', '.join(APIS)}, got {api!r}")
    n = len(workload.demand)
    ranges = batches(n, batch or max(n, 1))
    hosts = workload.hosts()
    start = time.perf_counter()
    scheduler.add_hosts(hosts)
    add_hosts_seconds = time.perf_counter() - start
    if tuple(scheduler.resources) != workload.resources:
        raise ValueError(f"scheduler resources {scheduler.resources} are not the workload's "
                         f"{workload.resources}")
    if api == "arrays":
        placement, seconds = _run_arrays(scheduler, workload, ranges, progress)
    else:
        placement, seconds = _run_objects(scheduler, workload, ranges, progress)
    return Run(placement, seconds, add_hosts_seconds)


def _run_arrays(scheduler, workload, ranges, progress):
    placement = np.full(len(workload.demand), -1, dtype=np.int32)
    seconds = 0.0
    for a, b in ranges:
        demand = workload.demand[a:b]
        task_class = workload.task_class[a:b]
        start = time.perf_counter()
        out = scheduler.schedule_arrays(demand, task_class, workload.classes)
        seconds += time.perf_counter() - start
        placement[a:b] = out
        if progress is not None:
            progress(b)
    return placement, seconds


def _run_objects(scheduler, workload, ranges, progress):
    placement = np.full(len(workload.demand), -1, dtype=np.int32)
    index = {hid: i for i, hid in enumerate(scheduler.host_ids) if hid is not None}
    seconds = 0.0
    for a, b in ranges:
        tasks = workload.tasks(a, b)
        start = time.perf_counter()
        result = scheduler.schedule(tasks)
        seconds += time.perf_counter() - start
        for task_id, host_id in result.assignments.items():
            placement[int(task_id.rsplit("-", 1)[1])] = index[host_id]
        if progress is not None:
            progress(b)
    return placement, seconds
