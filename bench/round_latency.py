"""Latency of a Titus-sized scheduling round through the object API.

A round is one ``Scheduler.schedule(tasks)`` call with 300 ``Task`` objects onto 10,000 hosts,
timed end to end (encoding the objects, scheduling, building the ``Result``). Between rounds
the round's tasks are released (not timed), so every round sees the same cluster. The cluster
can carry background load placed beforehand through the array API (held for the whole run).

    python bench/round_latency.py                       # 10k hosts, 300 tasks, zone mix
    python bench/round_latency.py --background 0        # an empty cluster

Prints median / p99 / min / mean milliseconds and writes bench/results/round_latency.json.
The baseline, run in the same process on the same cluster and round: the numpy vectorised
greedy (the same semantics) placing the round's rows from a copy of its loaded state each time
(``--numpy-rounds``, 0 to skip); the placements of the two are compared.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench.common import (RESULTS, machine, native_scheduler_class, save_json,  # noqa: E402
                          workload_greedy)
from titus.scheduler.factory import make_scheduler  # noqa: E402
from titus.workloads import generate  # noqa: E402


def workloads(hosts: int, tasks: int, background: int, constraints: str, seed: int):
    """(the cluster with its background tasks, the round's tasks), shared by both measurements."""
    return (generate(hosts=hosts, tasks=background, constraints=constraints, seed=seed),
            generate(hosts=hosts, tasks=tasks, constraints=constraints, seed=seed + 1))


def measure(cluster, round_tasks, constraints: str, rounds: int, warmup: int, seed: int,
            fitness: str) -> dict:
    """Time ``rounds`` rounds of the round's Task objects; returns the figures."""
    if native_scheduler_class() is None:
        raise SystemExit("titus.Scheduler is not available (build the engine first)")
    hosts, tasks, background = len(cluster.host_ids), len(round_tasks.demand), len(cluster.demand)
    scheduler = make_scheduler("native", fitness=fitness, seed=seed)
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
    first = scheduler.schedule(batch)  # the placements the baseline is compared with
    engine_rows = [first.assignments.get(t.id) for t in batch]
    ordered = sorted(times)
    return {
        "hosts": hosts, "tasks_per_round": tasks, "background_tasks": background,
        "background_placed": background_placed, "constraints": constraints, "fitness": fitness,
        "rounds": rounds, "placed_per_round": int(statistics.median(placed)),
        "median_ms": statistics.median(times),
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "min_ms": ordered[0], "mean_ms": statistics.fmean(times), "max_ms": ordered[-1],
        "engine_rows": engine_rows,
    }


def measure_numpy(cluster, round_tasks, rounds: int, seed: int, fitness: str) -> dict:
    """The same rounds placed by the numpy vectorised greedy: milliseconds per round and the
    placements of one round (host ids)."""
    background = len(cluster.demand)
    loaded = workload_greedy(cluster, fitness, seed)
    if background:
        with tqdm(total=background, desc="numpy background", unit="task", file=sys.stderr,
                  leave=False, disable=None) as bar:
            loaded.schedule_arrays(cluster.demand, cluster.task_class, cluster.classes,
                                   progress=lambda done: bar.update(done - bar.n))
    times, rows = [], None
    for _ in tqdm(range(rounds), desc="numpy rounds", unit="round", file=sys.stderr,
                  leave=False, disable=None):
        greedy = copy.deepcopy(loaded)  # every round sees the same loaded cluster
        start = time.perf_counter()
        out, _ = greedy.schedule_arrays(round_tasks.demand, round_tasks.task_class,
                                        round_tasks.classes)
        times.append((time.perf_counter() - start) * 1000.0)
        rows = [cluster.host_ids[h] if h >= 0 else None for h in out.tolist()]
    return {"rounds": rounds, "median_ms": statistics.median(times), "min_ms": min(times),
            "rows": rows}


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
    p.add_argument("--numpy-rounds", type=int, default=20,
                   help="rounds of the numpy baseline (0: skip it)")
    p.add_argument("--name", default="round_latency", help="results file stem")
    p.add_argument("--out", default=str(RESULTS), help="results directory")
    args = p.parse_args(argv)
    cluster, round_tasks = workloads(args.hosts, args.tasks, args.background, args.constraints,
                                     args.seed)
    figures = measure(cluster, round_tasks, args.constraints, args.rounds, args.warmup, args.seed,
                      args.fitness)
    engine_rows = figures.pop("engine_rows")
    if args.numpy_rounds > 0:
        numpy_figures = measure_numpy(cluster, round_tasks, args.numpy_rounds, args.seed,
                                      args.fitness)
        figures["numpy_median_ms"] = numpy_figures["median_ms"]
        figures["numpy_rounds"] = numpy_figures["rounds"]
        figures["speedup_vs_numpy"] = numpy_figures["median_ms"] / figures["median_ms"]
        figures["same_placements_as_numpy"] = numpy_figures["rows"] == engine_rows
    print(f"round of {figures['tasks_per_round']} Task objects onto {figures['hosts']:,} hosts "
          f"({figures['background_placed']:,} background tasks held, {args.constraints}): "
          f"median {figures['median_ms']:.3f} ms, p99 {figures['p99_ms']:.3f} ms, "
          f"min {figures['min_ms']:.3f} ms, mean {figures['mean_ms']:.3f} ms "
          f"over {figures['rounds']} rounds; {figures['placed_per_round']} placed per round")
    if "numpy_median_ms" in figures:
        print(f"numpy vectorised greedy, same rounds: median {figures['numpy_median_ms']:.2f} ms "
              f"-> engine x{figures['speedup_vs_numpy']:.0f}; same placements: "
              f"{figures['same_placements_as_numpy']}")
    path = save_json(args.name, {"machine": machine(),
                                       "command": " ".join(["python bench/round_latency.py", *(argv or sys.argv[1:])]),
                                       "result": figures}, Path(args.out))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
