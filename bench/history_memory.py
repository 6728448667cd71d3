"""Scheduler memory against its history: jobs that ended and hosts that came and went.

A scheduler keeps a slot per host ever added and a name per job ever scheduled (host indices
are never reused), so a long-lived one grows with its history, not only with what it holds.
This runs, in one process, rounds of short jobs (two tasks each, a soft zone spread, all
released after the round) and then rounds of hosts added and removed (each with a unique
attribute, as an instance id), and prints the resident-set growth per ended job and per churned
host -- once on one scheduler kept throughout, once rebuilt from what it holds whenever its
``footprint`` passes twice what is live (what the master's ``EngineAdapter.compact_if_due``
does, with floors scaled down to this run).

    python bench/history_memory.py                      # 300k jobs, 100k hosts

Writes bench/results/history_memory.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from bench.common import machine, save_json  # noqa: E402
from titus import Host, Scheduler, Task  # noqa: E402
from titus.constraints import BalancedHostAttr  # noqa: E402


def rss() -> int:
    """Resident bytes of this process now."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


BASE = [Host(f"h{i}", cpus=64, memory_mb=1e6, attributes={"zone": "abc"[i % 3]}) for i in range(100)]


def rebuild(s: Scheduler, hosts: dict) -> Scheduler:
    """A fresh scheduler with the live hosts and (here) no held task: what compaction does."""
    fresh = Scheduler()
    fresh.add_hosts(list(hosts.values()))
    return fresh


def due(s: Scheduler, floor: int) -> bool:
    f = s.footprint
    return f["host_slots"] > 2 * f["live_hosts"] + floor or f["jobs_seen"] > 2 * f["held_tasks"] + floor


def run(jobs: int, hosts: int, compact: bool, floor: int) -> dict:
    s = Scheduler()
    live = {h.id: h for h in BASE}
    s.add_hosts(BASE)
    start = rss()
    rounds = jobs // 1000
    for r in tqdm(range(rounds), desc=f"jobs ({'rebuilt' if compact else 'kept'})", leave=False):
        tasks = [Task(f"t{r}-{i}", cpus=0.01, job=f"job-{r}-{i // 2}", soft=[BalancedHostAttr("zone", 3)])
                 for i in range(2000)]
        for tid in s.schedule(tasks).assignments:
            s.release(tid)
        if compact and due(s, floor):
            s = rebuild(s, live)
    after_jobs = rss()
    for r in tqdm(range(hosts // 500), desc=f"hosts ({'rebuilt' if compact else 'kept'})", leave=False):
        ids = [f"x{r}-{i}" for i in range(500)]
        s.add_hosts([Host(h, cpus=4, attributes={"instance": h, "zone": "a"}) for h in ids])
        s.remove_hosts(ids)
        if compact and due(s, floor):
            s = rebuild(s, live)
    end = rss()
    return {"bytes_per_ended_job": (after_jobs - start) / jobs, "bytes_per_churned_host": (end - after_jobs) / hosts,
            "footprint_at_end": s.footprint}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=300_000)
    p.add_argument("--hosts", type=int, default=100_000)
    p.add_argument("--floor", type=int, default=4096, help="slots or names past twice the live ones")
    args = p.parse_args(argv)
    figures = {"machine": machine(), "jobs": args.jobs, "hosts": args.hosts, "floor": args.floor,
               "kept": run(args.jobs, args.hosts, False, args.floor),
               "rebuilt": run(args.jobs, args.hosts, True, args.floor)}
    for name in ("kept", "rebuilt"):
        f = figures[name]
        print(f"{name:8s} {f['bytes_per_ended_job']:7.1f} B per ended job  {f['bytes_per_churned_host']:7.1f} B per "
              f"churned host  footprint {f['footprint_at_end']}")
    print("saved", save_json("history_memory", figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
