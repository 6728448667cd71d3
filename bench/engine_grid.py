"""The engine benchmark grid: hosts x tasks x constraint mixes, with baselines side by side.

Default run (about 5 minutes on 2 cores): the diagonal cells 1k/10k, 10k/100k, 100k/1M
hosts/tasks for the ``none``, ``zone`` and ``mixed`` mixes (10k hosts / 100k tasks / zone is the
throughput target's cell), and the CP-SAT quality instances:

    python bench/engine_grid.py

The full grid (3 x 3 x 4 cells; about an hour here):

    python bench/engine_grid.py --grid product --constraints none,zone,unique,mixed

Methods: ``engine`` (titus.Scheduler, arrays API, full run), ``full_scan`` (the engine with its
indexes off, as Fenzo scans), ``numpy`` (vectorised greedy, the same fitness), ``reference``
(the plain-Python twin, clusters up to --reference-max-hosts). Baselines run on a prefix of the
rows within --budget seconds; their placements must equal the engine's on that prefix, and the
run prints that check. Writes bench/results/engine_grid.json and two PNG plots.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from bench.common import RESULTS, machine, native_scheduler_class, save_json  # noqa: E402
from bench.grid_cells import METHODS, run_cell  # noqa: E402
from bench.plots import plot_quality, plot_speed  # noqa: E402
from bench.quality import run_quality  # noqa: E402

DEFAULT_HOSTS = "1000,10000,100000"
DEFAULT_TASKS = "10000,100000,1000000"


def main(argv=None) -> int:
    """Run the grid described by the command line; print and save the figures."""
    args = _parser().parse_args(argv)
    cells = _cells(args)
    if native_scheduler_class() is None:
        print("note: titus.Scheduler is not available; running the baselines only",
              file=sys.stderr)
    results = []
    for hosts, tasks, mix in tqdm(cells, desc="grid cells", unit="cell", file=sys.stderr):
        cell = run_cell(hosts, tasks, mix, fitness=args.fitness, seed=args.seed,
                        methods=args.methods, budget=args.budget,
                        reference_max_hosts=args.reference_max_hosts)
        results.append(cell)
        tqdm.write(_cell_lines(cell), file=sys.stdout)
    quality = []
    if args.quality:
        quality = run_quality(fitness=args.fitness, seed=args.seed, time_limit=args.cpsat_seconds)
        for row in quality:
            print(_quality_line(row))
    payload = {"machine": machine(), "command": " ".join(["python bench/engine_grid.py", *(argv or sys.argv[1:])]),
               "budget_seconds": args.budget, "cells": results, "quality": quality}
    out = Path(args.out)
    print(f"saved {save_json(args.name, payload, out)}")
    if results:
        print(f"saved {plot_speed(results, out / f'{args.name}_speed.png')}")
        print(f"saved {plot_quality(results, quality, out / f'{args.name}_quality.png')}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", default=DEFAULT_HOSTS, help="comma-separated host counts")
    p.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated task counts")
    p.add_argument("--constraints", default="none,zone,mixed",
                   help="comma-separated mixes: none, zone, unique, mixed; or pareto, the Pareto "
                        "trace shape (three instance types, Pareto job sizes, the pinned mix)")
    p.add_argument("--grid", choices=("diagonal", "product"), default="diagonal",
                   help="diagonal: i-th hosts with i-th tasks; product: every pair")
    p.add_argument("--methods", default=",".join(METHODS),
                   type=lambda s: tuple(m for m in s.split(",") if m),
                   help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--budget", type=float, default=6.0,
                   help="seconds each baseline may spend per cell (on a prefix of the rows)")
    p.add_argument("--reference-max-hosts", type=int, default=1000,
                   help="run the plain-Python twin only on clusters up to this size")
    p.add_argument("--no-quality", dest="quality", action="store_false",
                   help="skip the CP-SAT packing-quality instances")
    p.add_argument("--cpsat-seconds", type=float, default=20.0, help="CP-SAT time limit")
    p.add_argument("--fitness", default="cpu_mem_binpack")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="engine_grid", help="results file stem")
    p.add_argument("--out", default=str(RESULTS), help="results directory")
    return p


def _cells(args) -> list[tuple[int, int, str]]:
    hosts = [int(x) for x in args.hosts.split(",") if x]
    tasks = [int(x) for x in args.tasks.split(",") if x]
    mixes = [m for m in args.constraints.split(",") if m]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--methods: unknown {', '.join(unknown)}; known: {', '.join(METHODS)}")
    if args.grid == "diagonal":
        if len(hosts) != len(tasks):
            raise SystemExit("--grid diagonal needs as many --hosts as --tasks values")
        pairs = list(zip(hosts, tasks))
    else:
        pairs = [(h, t) for h in hosts for t in tasks]
    return [(h, t, m) for m in mixes for h, t in pairs]


def _fmt_rate(value) -> str:
    return f"{value:,.0f}" if value else "-"


def _cell_lines(cell: dict) -> str:
    head = (f"{cell['hosts']:>7,} hosts {cell['tasks']:>9,} tasks {cell['constraints']:<6} "
            f"({cell['jobs']} jobs)")
    lines = [head]
    bound = cell.get("lower_bound_hosts")
    for method, r in cell["methods"].items():
        text = (f"    {method:<10} rows {r['rows']:>9,}  {r['seconds']:8.3f} s  "
                f"tasks/s {_fmt_rate(r['tasks_per_second']):>12}  "
                f"placed/s {_fmt_rate(r['placements_per_second']):>12}")
        if r.get("speedup_vs_numpy"):
            text += f"  x{r['speedup_vs_numpy']:.1f} vs numpy"
        if method == "engine":
            ratio = r.get("hosts_used_over_lower_bound")
            text += (f"  hosts used {r['hosts_used']:,} / bound {bound:,}"
                     f" = {ratio:.3f}" if ratio else f"  hosts used {r['hosts_used']:,}")
        if "same_placements_as_engine" in r:
            check = "same placements" if r["same_placements_as_engine"] else "DIFFERENT PLACEMENTS"
            text += (f"  [{check} as engine on {r['rows']:,} rows; engine speed-up on them"
                     f" x{r['engine_speedup_same_rows']:.1f}]")
        lines.append(text)
    return "\n".join(lines)


def _quality_line(q: dict) -> str:
    return (f"quality {q['hosts']} {q['cluster']} hosts / {q['tasks']} tasks: greedy ({q['greedy']}) uses "
            f"{q['greedy_hosts_used']}, CP-SAT {q['cpsat_hosts']} ({q['cpsat_status']}, bound "
            f"{q['cpsat_bound']}), lower bound {q['lower_bound_hosts']} ({q['lower_bound_method']})")


if __name__ == "__main__":
    raise SystemExit(main())
