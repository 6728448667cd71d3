"""Preemption benchmark: placements per second with ``preempt=True`` and without, 10k hosts.

Two cases, each run both ways on the native engine:

- ``room``: 10,000 hosts (16 cpus, 64 GiB) half full of low-priority tasks; ``--rows`` rows of
  1 cpu / 2 GiB at priority 10 all fit. Preemption is only looked at for a row that fits
  nowhere, so ``preempt=True`` should cost nothing here.
- ``full``: every host full of low-priority tasks (4 of 4 cpus each, their job with an
  eviction quota large enough); ``--full-rows`` rows of 4 cpus at priority 10. Without
  preemption none fits; with it, each row evicts one task (a search over every held task).

Prints a summary and writes ``bench/results/preemption.json``.

    python bench/preemption.py
    python bench/preemption.py --hosts 2000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, rate, save_json  # noqa: E402
from titus import Host, Scheduler, TaskClass  # noqa: E402


def cluster(n_hosts: int, per_host: int, cpus_each: float) -> Scheduler:
    """``n_hosts`` hosts each holding ``per_host`` low-priority tasks of ``cpus_each`` cpus."""
    s = Scheduler(fitness="cpu_mem_binpack")
    s.add_hosts([Host(f"h{i:05d}", cpus=16, memory_mb=65536) for i in range(n_hosts)])
    rows = n_hosts * per_host
    if rows:
        demand = np.tile(np.array([[cpus_each, 4096.0, 0, 0]]), (rows, 1))
        placed = s.schedule_arrays(demand, np.zeros(rows, dtype=np.int32), [TaskClass(job="low", priority=0)])
        assert (placed >= 0).all()
    s.set_eviction_quota("low", 2**31 - 1)
    return s


def timed(s: Scheduler, rows: int, cpus: float, preempt: bool) -> dict:
    demand = np.tile(np.array([[cpus, 2048.0, 0, 0]]), (rows, 1))
    tc = np.zeros(rows, dtype=np.int32)
    classes = [TaskClass(job="high", priority=10)]
    start = time.perf_counter()
    out = s.schedule_arrays(demand, tc, classes, preempt=preempt)
    seconds = time.perf_counter() - start
    placements, preemptions = out if preempt else (out, {})
    placed = int((placements >= 0).sum())
    return {"rows": rows, "placed": placed, "victims": sum(len(v) for v in preemptions.values()),
            "seconds": round(seconds, 4), "placements_per_sec": rate(placed, seconds),
            "rows_per_sec": rate(rows, seconds)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, default=10_000)
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--full-rows", type=int, default=200)
    args = p.parse_args(argv)
    results = {}
    for case, per_host, rows, cpus in (("room", 2, args.rows, 1.0), ("full", 4, args.full_rows, 4.0)):
        for preempt in (False, True):
            s = cluster(args.hosts, per_host, 4.0)
            results[f"{case}_{'preempt' if preempt else 'plain'}"] = timed(s, rows, cpus, preempt)
    payload = {"hosts": args.hosts, "results": results, "machine": machine()}
    path = save_json("preemption", payload)
    for name, r in results.items():
        pps = r["placements_per_sec"]
        print(f"{name:14s} rows {r['rows']:6d} placed {r['placed']:6d} victims {r['victims']:5d} "
              f"{r['seconds']:8.3f} s  {0 if pps is None else pps:12.0f} placements/s")
    print(f"cpu: {payload['machine']['cpu']}; written to {path}")
    return payload


if __name__ == "__main__":
    main()
