"""The engine's throughput targets in one command, each against a baseline tree in the same run.

Cells (single-threaded ``schedule_arrays``, placements/s of the whole call, workload built
before the clock starts): 10k hosts x 100k tasks of the zone mix (``titus bench``'s default),
the Pareto trace shape (10k hosts, 110k tasks, ``titus bench --shape pareto``), and 1M tasks
onto 100k hosts (zone mix). Each cell runs ``--repeat`` times in fresh processes, alternating
this tree and the baseline (``--baseline DIR``: another checkout with its extension built, e.g.
``git worktree add /tmp/base <rev> && (cd /tmp/base && python setup.py build_ext --inplace)``),
so both see the same machine; the ratio of medians is the speed-up. Placements must be equal
(the engine's semantics did not change): the run checks a digest of them.

    python bench/engine_speed.py --baseline /tmp/base

Writes bench/results/engine_speed.json and engine_speed.png.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from bench.common import RESULTS, machine, save_json  # noqa: E402

CELLS = {
    "zone 10k x 100k": dict(shape="google", hosts=10_000, tasks=100_000, constraints="zone"),
    "pareto 10k x 110k": dict(shape="pareto", hosts=10_000, tasks=110_000, constraints="pinned"),
    "zone 100k x 1M": dict(shape="google", hosts=100_000, tasks=1_000_000, constraints="zone"),
}

# Run in a child process so that each tree's extension is the one imported.
CHILD = r"""
import hashlib, json, sys, time
from titus.workloads import generate, make_spec
from titus.workloads.runner import make_scheduler
cell = json.loads(sys.argv[1])
wl = generate(make_spec(cell["shape"], hosts=cell["hosts"], tasks=cell["tasks"], seed=0,
                        constraints=cell["constraints"]))
hosts = wl.hosts()
s = make_scheduler("native", fitness="cpu_mem_binpack", seed=0)
s.add_hosts(hosts)
import gc; gc.collect(); gc.disable()
t = time.perf_counter()
out = s.schedule_arrays(wl.demand, wl.task_class, wl.classes)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "placed": int((out >= 0).sum()),
                  "digest": hashlib.sha1(out.tobytes()).hexdigest()}))
"""


def run_child(tree: Path, cell: dict) -> dict:
    """One timed call in a fresh interpreter importing titus from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cell)], env=env, cwd=str(tree),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    """Run the cells; print and save the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=Path, help="a checkout with its extension built")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated cell names")
    p.add_argument("--name", default="engine_speed")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    names = [c.strip() for c in args.cells.split(",") if c.strip()]
    trees = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    figures = {"machine": machine(), "repeat": args.repeat, "cells": {}}
    steps = [(n, t) for n in names for _ in range(args.repeat) for t in trees]
    runs = {(n, t): [] for n in names for t in trees}
    for name, tree in tqdm(steps, desc="engine speed", unit="run"):
        runs[(name, tree)].append(run_child(trees[tree], CELLS[name]))
    for name in names:
        row = {}
        for tree in trees:
            rs = runs[(name, tree)]
            rates = sorted(r["placed"] / r["seconds"] for r in rs)
            row[tree] = {"placements_per_s": {"min": rates[0], "median": statistics.median(rates),
                                              "max": rates[-1]},
                         "seconds_median": statistics.median(r["seconds"] for r in rs),
                         "digest": rs[0]["digest"]}
        if "baseline" in row:
            row["speedup_median"] = (row["this"]["placements_per_s"]["median"]
                                     / row["baseline"]["placements_per_s"]["median"])
            row["same_placements"] = row["this"]["digest"] == row["baseline"]["digest"]
        figures["cells"][name] = row
    _print(figures)
    out = Path(args.out)
    save_json(args.name, figures, out)
    _plot(figures, out / f"{args.name}.png")
    return 0


def _print(f: dict) -> None:
    print(f"cpu {f['machine'].get('cpu', '?')}; {f['repeat']} runs per tree, placements/s min-median-max")
    for name, row in f["cells"].items():
        line = f"  {name:<20}"
        for tree in ("this", "baseline"):
            if tree in row:
                r = row[tree]["placements_per_s"]
                line += f"  {tree}: {r['min'] / 1e6:.2f}-{r['median'] / 1e6:.2f}-{r['max'] / 1e6:.2f}M/s"
        if "speedup_median" in row:
            same = "same placements" if row["same_placements"] else "PLACEMENTS DIFFER"
            line += f"  x{row['speedup_median']:.2f} ({same})"
        print(line)


def _plot(f: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(f["cells"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.38
    for k, tree in enumerate(("baseline", "this")):
        meds = [f["cells"][n].get(tree, {}).get("placements_per_s", {}).get("median", 0) / 1e6 for n in names]
        ax.bar([i + (k - 0.5) * width for i in range(len(names))], meds, width, label=tree)
    ax.axhline(2.0, color="grey", linestyle="--", linewidth=1, label="2M/s target")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("placements/s (millions, median)")
    ax.set_title(f"Engine throughput, one thread ({f['machine'].get('cpu', '?')})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
