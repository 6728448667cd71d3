"""PNG plots of the engine grid: speed per method against hosts, and packing against the bound."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

_STYLE = {"engine": "o-", "full_scan": "s--", "numpy": "^:", "reference": "x-."}
_COLOR = {"engine": "tab:blue", "full_scan": "tab:orange", "numpy": "tab:green",
          "reference": "tab:red"}


def plot_speed(cells: list[dict], path: Path) -> Path:
    """Tasks per second (log) against hosts (log), one panel per constraint mix.

    On a diagonal grid (one task count per host count) each method is one line through the
    cells, points labelled with their task count; on a product grid, one line per method and
    task count."""
    mixes = sorted({c["constraints"] for c in cells})
    fig, axes = plt.subplots(1, len(mixes), figsize=(5.5 * len(mixes), 4.2), squeeze=False)
    for ax, mix in zip(axes[0], mixes):
        mine = [c for c in cells if c["constraints"] == mix]
        diagonal = len({(c["hosts"], c["tasks"]) for c in mine}) == len({c["hosts"] for c in mine})
        series = [None] if diagonal else sorted({c["tasks"] for c in mine})
        for method in _STYLE:
            for tasks in series:
                points = sorted((c["hosts"], c["methods"][method]["tasks_per_second"], c["tasks"])
                                for c in mine if (tasks is None or c["tasks"] == tasks)
                                and c["methods"].get(method, {}).get("tasks_per_second"))
                if not points:
                    continue
                xs, ys, ns = zip(*points)
                label = method if tasks is None else f"{method}, {tasks:,} tasks"
                ax.plot(xs, ys, _STYLE[method], color=_COLOR[method], label=label)
                if diagonal and method == "engine":
                    for x, y, n in points:
                        ax.annotate(f"{n:,} tasks", (x, y), textcoords="offset points",
                                    xytext=(4, 6), fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("hosts")
        ax.set_ylabel("tasks scheduled per second")
        ax.set_title(f"constraints: {mix}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_quality(cells: list[dict], quality: list[dict], path: Path) -> Path:
    """Hosts used by the engine over the lower bound per grid cell, and the small instances
    with CP-SAT's optimum."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    labelled = [c for c in cells if c["methods"].get("engine", {}).get("hosts_used_over_lower_bound")]
    names = [f"{c['hosts'] // 1000}k/{c['tasks'] // 1000}k\n{c['constraints']}" for c in labelled]
    ratios = [c["methods"]["engine"]["hosts_used_over_lower_bound"] for c in labelled]
    left.bar(range(len(ratios)), ratios, color="tab:blue")
    for x, c in enumerate(labelled):  # how full the used hosts are, in their bottleneck
        full = c["methods"]["engine"].get("used_host_utilisation")
        if full:
            left.annotate(f"{full:.0%} full", (x, ratios[x]), ha="center", fontsize=7,
                          textcoords="offset points", xytext=(0, 3))
    left.axhline(1.02, color="tab:red", linestyle="--", label="target 1.02")
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_xticks(range(len(names)), names, fontsize=7)
    left.set_ylabel("engine hosts used / lower bound")
    left.set_title("grid (hosts/tasks, constraints)")
    left.legend()
    width = 0.27
    xs = range(len(quality))
    right.bar([x - width for x in xs], [q["lower_bound_hosts"] for q in quality], width,
              label="lower bound (LP)")
    right.bar(list(xs), [q["cpsat_hosts"] or 0 for q in quality], width, label="CP-SAT best")
    right.bar([x + width for x in xs], [q["greedy_hosts_used"] for q in quality], width,
              label="greedy (engine)")
    right.set_xticks(list(xs), [f"{q['hosts']} hosts, {q['tasks']} tasks\n{q['cluster']}"
                                for q in quality], fontsize=8)
    right.set_ylabel("hosts used")
    right.set_title("small instances, no constraints")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_packing(rows: list[dict], path: Path) -> Path:
    """Hosts used over the lower bound per instance, one bar per fitness, with the 1.02 target
    and, where CP-SAT ran, its best packing and proven bound on the same scale."""
    keys = list(dict.fromkeys((r["hosts"], r["tasks"], r["cluster"], r["constraints"])
                              for r in rows))
    fitnesses = list(dict.fromkeys(r["fitness"] for r in rows))
    by = {((r["hosts"], r["tasks"], r["cluster"], r["constraints"]), r["fitness"]): r
          for r in rows}
    width = 0.8 / max(1, len(fitnesses))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.5 * len(keys)), 4.6))
    for i, fitness in enumerate(fitnesses):
        xs = [k + (i - (len(fitnesses) - 1) / 2) * width for k in range(len(keys))]
        ratios = [(by.get((key, fitness)) or {}).get("greedy_over_lower_bound") or 0
                  for key in keys]
        ax.bar(xs, ratios, width, label=fitness)
        for x, ratio in zip(xs, ratios):
            if ratio:
                ax.annotate(f"{ratio:.2f}", (x, ratio), ha="center", fontsize=7,
                            textcoords="offset points", xytext=(0, 2))
    # CP-SAT does not depend on the fitness: one marker pair per instance, on the scale of the
    # row whose tasks it packed
    labelled = False
    for k, key in enumerate(keys):
        row = next((by[(key, f)] for f in fitnesses
                    if (by.get((key, f)) or {}).get("cpsat_hosts")), None)
        if not row or not row.get("lower_bound_hosts"):
            continue
        span = [k - 0.45, k + 0.45]
        ax.plot(span, [row["cpsat_hosts"] / row["lower_bound_hosts"]] * 2, color="black",
                linewidth=3, zorder=3, label=None if labelled else "CP-SAT best")
        # drawn over the best line in another colour, so both show when they are equal
        ax.plot(span, [row["cpsat_bound"] / row["lower_bound_hosts"]] * 2, color="tab:green",
                linestyle="--", linewidth=1.5, zorder=4,
                label=None if labelled else "CP-SAT proven bound")
        labelled = True
    ax.axhline(1.02, color="tab:red", linestyle="--", label="target 1.02")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_ylim(bottom=0.9)
    ax.set_xticks(range(len(keys)), [f"{h:,} hosts\n{t:,} tasks\n{c}\n{m}"
                                     for h, t, c, m in keys], fontsize=7)
    ax.set_ylabel("hosts used / lower bound (LP)")
    ax.set_title("packing quality per fitness")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
