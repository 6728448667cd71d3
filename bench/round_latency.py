"""Latency of a Titus-sized scheduling round through the object API.

A round is one ``Scheduler.schedule(tasks)`` call with 300 ``Task`` objects onto 10,000 hosts,
timed end to end (encoding the objects, scheduling, building the ``Result``). Between rounds
the round's tasks are released (not timed), so every round sees the same cluster. The cluster
can carry background load placed beforehand through the array API (held for the whole run).

    python bench/round_latency.py                       # 10k hosts, 300 tasks, zone mix
    python bench/round_latency.py --background 0        # an empty cluster

Prints median / p99 / min / mean milliseconds and writes bench/results/round_latency.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench.common import machine, native_scheduler_class, save_json  # noqa: E402
from titus.workloads import generate  # noqa: E402


def measure(hosts: int, tasks: int, background: int, constraints: str, rounds: int,
            warmup: int, seed: int, fitness: str) -> dict:
    """Time ``rounds`` rounds of ``tasks`` Task objects; returns the figures."""
    cls = native_scheduler_class()
    if cls is None:
        raise SystemExit("titus.Scheduler is not available (build the engine first)")
    cluster = generate(hosts=hosts, tasks=background, constraints=constraints, seed=seed)
    round_tasks = generate(hosts=hosts, tasks=tasks, constraints=constraints, seed=seed + 1)
    scheduler = cls(fitness=fitness, seed=seed)
    scheduler.add_hosts(cluster.hosts())
    if background:
        held = scheduler.schedule_arrays(cluster.demand, cluster.task_class, cluster.classes)
        background_placed = int(np.count_nonzero(held >= 0))
    else:
        background_placed = 0
    # round task ids must not clash with anything held
    batch = [replace(t, id=f"round-{t.id}") for t in round_tasks.tasks()]
    times, placed = [], []
    for i in tqdm(range(warmup + rounds), desc="rounds", unit="round", file=sys.stderr,
                  leave=False, disable=None):
        start = time.perf_counter()
        result = scheduler.schedule(batch)
        elapsed = time.perf_counter() - start
        for task_id in result.assignments:
            scheduler.release(task_id)
        if i >= warmup:
            times.append(elapsed * 1000.0)
            placed.append(len(result.assignments))
    ordered = sorted(times)
    return {
        "hosts": hosts, "tasks_per_round": tasks, "background_tasks": background,
        "background_placed": background_placed, "constraints": constraints, "fitness": fitness,
        "rounds": rounds, "placed_per_round": int(statistics.median(placed)),
        "median_ms": statistics.median(times),
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "min_ms": ordered[0], "mean_ms": statistics.fmean(times), "max_ms": ordered[-1],
    }


def main(argv=None) -> int:
    """Run the round-latency benchmark described by the command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=10_000)
    p.add_argument("--tasks", type=int, default=300, help="Task objects per round")
    p.add_argument("--background", type=int, default=100_000,
                   help="tasks held on the cluster before the rounds (array API)")
    p.add_argument("--constraints", default="zone", help="none, zone, unique or mixed")
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fitness", default="cpu_mem_binpack")
    p.add_argument("--name", default="round_latency", help="results file stem in bench/results/")
    args = p.parse_args(argv)
    figures = measure(args.hosts, args.tasks, args.background, args.constraints, args.rounds,
                      args.warmup, args.seed, args.fitness)
    print(f"round of {figures['tasks_per_round']} Task objects onto {figures['hosts']:,} hosts "
          f"({figures['background_placed']:,} background tasks held, {args.constraints}): "
          f"median {figures['median_ms']:.3f} ms, p99 {figures['p99_ms']:.3f} ms, "
          f"min {figures['min_ms']:.3f} ms, mean {figures['mean_ms']:.3f} ms "
          f"over {figures['rounds']} rounds; {figures['placed_per_round']} placed per round")
    path = save_json(args.name, {"machine": machine(),
                                       "command": " ".join(["python bench/round_latency.py", *(argv or sys.argv[1:])]),
                                       "result": figures})
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
