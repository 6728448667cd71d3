"""Chaos, long form: many seeded trials, every fault kind, every invariant after each.

Each trial starts masters (three when the master supports standbys, else one) and three sim
agents on a fresh database of a throwaway PostgreSQL cluster this script creates (initdb in a
temporary directory, its own port), runs a mix of batch and service jobs, injects one fault
at a random moment and checks the invariants of tests/chaos/invariants.py. Fault kinds go
round in a seeded order, so every kind gets trials/5 of them.

Prints a summary, writes ``bench/results/chaos.json`` (every trial, its seed, fault and
violations) and ``bench/results/chaos.png`` (violations per kind, trial durations). Logs and
journals of trials with violations are kept under ``bench/results/chaos-failed/``. Never
fails on a violation: the figures are the output.

    python bench/chaos.py                    # 50 trials, seed 13
    python bench/chaos.py --trials 100 --seed 7 --masters 3
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from bench.common import RESULTS, machine, save_json  # noqa: E402
from tests.chaos.faults import KINDS  # noqa: E402
from tests.chaos.pgcluster import PgCluster  # noqa: E402
from tests.chaos.trial import TrialConfig, run_trial  # noqa: E402
from titus.master.config import MasterSettings  # noqa: E402


def schedule(trials: int, rng: random.Random) -> list[str]:
    """Fault kinds for ``trials`` trials: rounds of every kind, each round shuffled."""
    kinds: list[str] = []
    while len(kinds) < trials:
        round_ = list(KINDS)
        rng.shuffle(round_)
        kinds += round_
    return kinds[:trials]


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0-1) by nearest rank, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def summarise(results: list[dict]) -> dict:
    """Violations per kind and per check, durations, failover times."""
    per_kind: dict[str, dict] = {}
    for kind in KINDS:
        mine = [r for r in results if r["kind"] == kind]
        checks = Counter(v["check"] for r in mine for v in r["violations"])
        seconds = [r["seconds"] for r in mine]
        failovers = [r["fault"]["failover_sec"] for r in mine if "failover_sec" in r["fault"]]
        per_kind[kind] = {
            "trials": len(mine), "trials_with_violations": sum(bool(r["violations"])
                                                               for r in mine),
            "violations": sum(checks.values()), "by_check": dict(checks),
            "seconds_p50": percentile(seconds, 0.5), "seconds_max": max(seconds, default=None),
            "failover_sec_p50": percentile(failovers, 0.5),
            "failover_sec_p99": percentile(failovers, 0.99)}
    return {"trials": len(results),
            "trials_with_violations": sum(bool(r["violations"]) for r in results),
            "violations": sum(len(r["violations"]) for r in results), "per_kind": per_kind,
            "seconds_total": round(sum(r["seconds"] for r in results), 1),
            "seconds_p50": percentile([r["seconds"] for r in results], 0.5)}


def plot(results: list[dict], summary: dict, path: Path, title: str) -> Path:
    """Violations per kind (stacked by check) and each trial's duration, coloured by kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    checks = sorted({c for k in summary["per_kind"].values() for c in k["by_check"]})
    bottom = [0] * len(KINDS)
    for check in checks:
        counts = [summary["per_kind"][k]["by_check"].get(check, 0) for k in KINDS]
        left.bar(range(len(KINDS)), counts, bottom=bottom, label=check)
        bottom = [b + c for b, c in zip(bottom, counts)]
    for x, kind in enumerate(KINDS):
        info = summary["per_kind"][kind]
        left.annotate(f"{info['violations']} in {info['trials']} trials", (x, bottom[x]),
                      ha="center", fontsize=8, textcoords="offset points", xytext=(0, 3))
    left.set_xticks(range(len(KINDS)), KINDS)
    left.set_xlim(-0.6, len(KINDS) - 0.4)
    left.set_ylim(0, max(1, max(bottom)) * 1.25)
    left.set_ylabel("invariant violations")
    left.set_title("violations per fault kind (target 0)")
    if checks:
        left.legend(fontsize=7)
    left.tick_params(axis="x", labelsize=8)
    colours = dict(zip(KINDS, ("tab:red", "tab:orange", "tab:blue", "tab:green",
                               "tab:purple")))
    for kind in KINDS:
        mine = [r for r in results if r["kind"] == kind]
        right.scatter([r["trial"] for r in mine], [r["seconds"] for r in mine], s=18,
                      color=colours[kind], label=kind,
                      marker="x" if any(r["violations"] for r in mine) else "o")
    right.set_xlabel("trial")
    right.set_ylabel("trial duration (s)")
    right.set_title("trial durations")
    right.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    """Run the trials, print the summary, write the JSON and the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--masters", type=int, default=None,
                        help="default: 3 when the master supports standbys, else 1")
    parser.add_argument("--lease-sec", type=float, default=2.0)
    parser.add_argument("--name", default="chaos", help="result file name (no extension)")
    args = parser.parse_args()
    masters = args.masters or (3 if "lease_sec" in MasterSettings.model_fields else 1)
    config = TrialConfig(masters=masters, lease_sec=args.lease_sec)
    rng = random.Random(args.seed)
    kinds = schedule(args.trials, rng)
    seeds = [rng.getrandbits(32) for _ in kinds]
    results: list[dict] = []
    began = time.time()
    with PgCluster() as pg:
        bar = tqdm(list(enumerate(zip(kinds, seeds))), desc="chaos trials", unit="trial",
                   file=sys.stderr)
        for number, (kind, seed) in bar:
            result = run_trial(pg, number, kind, seed, config,
                               keep_dir=RESULTS / f"{args.name}-failed").as_dict()
            results.append(result)
            bad = sum(bool(r["violations"]) for r in results)
            bar.set_postfix(kind=kind, bad_trials=bad)
            if result["violations"]:
                tqdm.write(f"trial {number} {kind} seed {seed}: "
                           f"{[v['check'] for v in result['violations']]} "
                           f"(kept in {result['workdir']})", file=sys.stdout)
    summary = summarise(results)
    facts = machine()
    payload = {"benchmark": "chaos", "seed": args.seed, "trials": args.trials,
               "config": vars(config), "machine": facts,
               "command": "python bench/chaos.py " + " ".join(sys.argv[1:]),
               "wall_sec": round(time.time() - began, 1), "summary": summary,
               "results": results}
    json_path = save_json(args.name, payload)
    png = plot(results, summary, RESULTS / f"{args.name}.png",
               f"{args.trials} trials, seed {args.seed}, {masters} master(s), "
               f"{facts['cpu']} x{facts['cores']}")
    print(f"\n{summary['trials']} trials, {summary['trials_with_violations']} with violations, "
          f"{summary['violations']} violations; trial p50 {summary['seconds_p50']} s")
    for kind, info in summary["per_kind"].items():
        failover = (f", failover p50 {info['failover_sec_p50']} s p99 "
                    f"{info['failover_sec_p99']} s" if info["failover_sec_p50"] else "")
        print(f"  {kind:13s} {info['trials']:3d} trials  {info['violations']:3d} violations "
              f"{info['by_check'] or ''}  p50 {info['seconds_p50']} s{failover}")
    print(f"wrote {json_path} and {png}")


if __name__ == "__main__":
    main()
