"""Helpers shared by the benchmark scripts: schedulers, timing, machine facts, result files."""
from __future__ import annotations

import inspect
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

if str(ROOT) not in sys.path:  # `python bench/x.py` runs with bench/ first on the path
    sys.path.insert(0, str(ROOT))


def native_scheduler_class():
    """``titus.Scheduler``, or None when the engine is not available."""
    try:
        from titus import Scheduler
    except ImportError:
        return None
    return Scheduler


def supports_full_scan(cls) -> bool:
    """Whether the scheduler class takes ``index=False`` (a Fenzo-style full scan per task)."""
    return cls is not None and "index" in inspect.signature(cls).parameters


def workload_greedy(workload, fitness, seed):
    """A ``NumpyGreedy`` over the workload's cluster."""
    from bench.baselines.numpy_greedy import NumpyGreedy

    return NumpyGreedy(workload.capacity, workload.host_ids,
                       {"zone": workload.host_zone, "tier": workload.host_tier},
                       workload.resources, fitness=fitness, seed=seed)


def timed_prefix(scheduler, workload, budget: float, first: int = 256):
    """Schedule rows in growing batches until ``budget`` seconds of scheduling have passed.

    Returns (placement of the rows done, rows done, seconds). The rows done are a prefix, so
    an exact scheduler's placements on them equal its placements on the whole workload's prefix.
    """
    n = len(workload.demand)
    placement = np.full(n, -1, dtype=np.int32)
    done, seconds, step = 0, 0.0, first
    while done < n and (done == 0 or seconds < budget):  # at least one batch
        stop = min(n, done + step)
        start = time.perf_counter()
        out = scheduler.schedule_arrays(workload.demand[done:stop], workload.task_class[done:stop],
                                        workload.classes)
        seconds += time.perf_counter() - start
        placement[done:stop] = out
        done = stop
        step *= 2
    return placement[:done], done, seconds


def machine() -> dict:
    """Facts about the machine and the code a result was measured on."""
    from titus.workloads.runner import cpu_model

    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # the machine is shared: the load average says how busy it was when the run ended
        "load_average": list(os.getloadavg()),
    }


def save_json(name: str, payload: dict, directory: Path = RESULTS) -> Path:
    """Write ``<directory>/<name>.json`` (default bench/results/) and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_plain))
    tmp.replace(path)
    return path


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def rate(count: int, seconds: float) -> float | None:
    """``count / seconds``, or None when nothing was timed."""
    return count / seconds if seconds > 0 else None
