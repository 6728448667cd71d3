"""Shortfall evaluation time: 100,000 unplaced tasks against 10 instance groups.

The groups range from 16 to 96 cpus, three zones each, with room to grow; the tasks come from
300 jobs of assorted sizes, some pinned to a zone, some to an instance type, a few spread one per
host. The whole evaluation is timed (equivalence classes, feasibility, pool sizing, trial
placement with the engine's array path). Prints a table and writes
``bench/results/shortfall.json``. Never fails on time: the figures are the output.

    python bench/shortfall.py [--tasks 100000] [--groups 10] [--repeat 3] [--reference]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, save_json  # noqa: E402
from titus.autoscale.groups import InstanceGroup, InstanceType  # noqa: E402
from titus.autoscale.shortfall import GroupCapacity, ShortfallEvaluator, UnplacedArrays  # noqa: E402
from titus.constraints import HostAttrValue, UniqueHostAttr  # noqa: E402
from titus.scheduler.factory import make_scheduler  # noqa: E402
from titus.scheduler.model import TaskClass  # noqa: E402

# (cpus, memory_mb) of ten instance types, 16 to 96 cpus, as a batch fleet might have.
SHAPES = [(16, 65536), (32, 131072), (48, 196608), (64, 262144), (96, 393216),
          (16, 32768), (36, 73728), (72, 147456), (32, 262144), (24, 98304)]
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def groups(n: int) -> list[GroupCapacity]:
    """``n`` groups of distinct shapes, a few idle hosts each, room for 20,000 more."""
    out = []
    for i in range(n):
        cpus, memory = SHAPES[i % len(SHAPES)]
        t = InstanceType(name=f"type{i}.{cpus}x", cpus=cpus, memory_mb=memory, disk_mb=500_000,
                         network_mbps=10_000)
        g = InstanceGroup(name=f"group{i}", instance_type=t, zones=ZONES, max_size=20_000)
        out.append(GroupCapacity(g, {z: 2 for z in ZONES}, headroom=20_000))
    return out


def workload(n_tasks: int, n_groups: int, seed: int = 7) -> UnplacedArrays:
    """Tasks of 300 jobs: sizes from 0.5 to 8 cpus; some zone-pinned, type-pinned or unique."""
    rng = np.random.default_rng(seed)
    jobs = 300
    classes, sizes = [], []
    for j in range(jobs):
        kind = j % 10
        hard = []
        if kind == 0:
            hard = [HostAttrValue("zone", ZONES[j % 3])]
        elif kind == 1:
            hard = [HostAttrValue("instance_type", f"type{j % n_groups}.{SHAPES[j % n_groups % len(SHAPES)][0]}x")]
        elif kind == 2 and j % 30 == 2:
            hard = [UniqueHostAttr()]
        classes.append(TaskClass(job=f"job{j}", hard=hard))
        cpus = float(rng.choice([0.5, 1, 1, 2, 2, 4, 8]))
        sizes.append((cpus, cpus * float(rng.choice([1024, 2048, 4096]))))
    task_class = rng.integers(0, jobs, size=n_tasks).astype(np.int32)
    # Unique-per-host jobs stay small, as such jobs are.
    unique = [j for j, c in enumerate(classes) if c.hard and isinstance(c.hard[0], UniqueHostAttr)]
    for j in unique:
        rows = np.flatnonzero(task_class == j)[50:]
        task_class[rows] = (j + 1) % jobs
    demand = np.zeros((n_tasks, 4))
    size = np.array(sizes)
    demand[:, 0] = size[task_class, 0]
    demand[:, 1] = size[task_class, 1]
    demand[:, 2] = 1024
    demand[:, 3] = 10
    return UnplacedArrays(demand, task_class, classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference", action="store_true",
                        help="use the plain-Python twin instead of the engine (slow)")
    args = parser.parse_args()

    engine = "reference" if args.reference else "native"
    scheduler_cls = type(make_scheduler(engine))
    caps = groups(args.groups)
    tasks = workload(args.tasks, args.groups)
    times, result = [], None
    for _ in range(args.repeat):
        # A fresh evaluator each time: it remembers its last answer for an unchanged backlog.
        evaluator = ShortfallEvaluator(
            lambda: make_scheduler(engine, fitness="cpu_mem_binpack", seed=0))
        started = time.perf_counter()
        result = evaluator.evaluate(caps, tasks)
        times.append(time.perf_counter() - started)
    payload = {
        "benchmark": "shortfall",
        "scheduler": f"{scheduler_cls.__module__}.{scheduler_cls.__name__}",
        "tasks": args.tasks,
        "groups": args.groups,
        "seconds": times,
        "median_seconds": statistics.median(times),
        "new_hosts": result.new_hosts,
        "new_hosts_total": sum(result.new_hosts.values()),
        "used_empty": result.used_empty,
        "unplaceable": result.unplaceable,
        "capped": result.capped,
        "machine": machine(),
    }
    path = save_json("shortfall", payload)
    print(f"shortfall: {args.tasks} tasks x {args.groups} groups with {payload['scheduler']}")
    print(f"  median {payload['median_seconds']:.3f} s over {args.repeat} runs "
          f"({', '.join(f'{t:.3f}' for t in times)})")
    print(f"  new hosts {payload['new_hosts_total']} {result.new_hosts}")
    print(f"  unplaceable {result.unplaceable}, capped {result.capped}")
    print(f"  saved {path}")


if __name__ == "__main__":
    main()
