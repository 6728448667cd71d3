"""Packing quality: hosts the engine uses against the lower bound, per fitness, per instance.

For every fitness and instance the native engine places every task (``schedule_arrays`` on the
workload's arrays, one call) and the run records the hosts used, the lower bound
(``Workload.lower_bound``: LP over host types), their ratio, how full the used hosts are and
the seconds taken. On small instances (``--cpsat-max-hosts``, default 100 hosts) OR-Tools
CP-SAT also packs the tasks (constraints ignored), once per instance, hinted with the best
engine placement: its best host count and its proven bound.

    python bench/packing.py
    python bench/packing.py --fitness cpu_mem_fewest_hosts --sizes 40x400,1000x10000:google2011:zone

An instance is ``HOSTSxTASKS[:CLUSTER[:CONSTRAINTS]]``: cluster ``google2011`` (the 2011
trace's mix of machine shapes) or ``homogeneous`` (its common half-half shape only),
constraints a ``titus.workloads`` mix. Instances up to 100 hosts get ``max(10, tasks // 20)``
jobs (as the CP-SAT quality instances always had); larger ones the generator's default, so
their figures match the engine grid's cells. Writes bench/results/packing.json and packing.png.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench.baselines.cpsat_packing import min_hosts  # noqa: E402
from bench.common import (RESULTS, machine, native_scheduler_class, save_json,  # noqa: E402
                          workload_greedy)
from titus.scheduler.factory import make_scheduler  # noqa: E402
from titus.scheduler.task_order import check_task_order, in_input_order, row_order  # noqa: E402
from titus.workloads import generate  # noqa: E402

HOMOGENEOUS = (("half-half", 0.5, 0.5, 1.0),)
CLUSTERS = ("google2011", "homogeneous")
# a policy is a fitness name, optionally "+" a task order (titus.scheduler.task_order)
DEFAULT_FITNESS = "cpu_mem_binpack,cpu_mem_fewest_hosts,cpu_mem_fewest_hosts+interleave_jobs"
CPSAT_MAX_HOSTS = 100


class Instance(NamedTuple):
    """One packing instance: cluster size, task count, cluster kind and constraint mix."""

    hosts: int
    tasks: int
    cluster: str = "google2011"
    constraints: str = "none"

    @property
    def small(self) -> bool:
        """Whether it is one of the CP-SAT-sized instances."""
        return self.hosts <= CPSAT_MAX_HOSTS

    def workload(self, seed: int):
        """The instance's generated workload."""
        if self.cluster not in CLUSTERS:
            raise ValueError(f"unknown cluster {self.cluster!r}; known: {', '.join(CLUSTERS)}")
        knobs = {"machine_shapes": HOMOGENEOUS} if self.cluster == "homogeneous" else {}
        if self.small:  # few jobs, so CP-SAT sees few distinct item types and can prove bounds
            knobs["jobs"] = max(10, self.tasks // 20)
        return generate(hosts=self.hosts, tasks=self.tasks, constraints=self.constraints,
                        seed=seed, **knobs)

    def label(self) -> str:
        """Short name for plots: ``1k/10k google2011 zone``."""
        return f"{_short(self.hosts)}/{_short(self.tasks)} {self.cluster} {self.constraints}"


DEFAULT_INSTANCES = (
    Instance(40, 400), Instance(100, 1000), Instance(100, 1000, "homogeneous"),
    Instance(1000, 10000), Instance(1000, 10000, constraints="zone"),
    Instance(10000, 100000), Instance(10000, 100000, constraints="zone"),
    Instance(100000, 1000000),
)


def parse_instance(text: str) -> Instance:
    """``"HOSTSxTASKS[:CLUSTER[:CONSTRAINTS]]"`` as an ``Instance``."""
    size, *rest = text.split(":")
    hosts, _, tasks = size.lower().partition("x")
    if not hosts.isdigit() or not tasks.isdigit() or len(rest) > 2:
        raise ValueError(f"instance {text!r} is not HOSTSxTASKS[:CLUSTER[:CONSTRAINTS]]")
    if rest and rest[0] not in CLUSTERS:
        raise ValueError(f"instance {text!r}: cluster must be one of {', '.join(CLUSTERS)}")
    return Instance(int(hosts), int(tasks), *rest)


def split_policy(policy: str) -> tuple[str, str]:
    """``"fitness[+task_order]"`` as (fitness, task order)."""
    fitness, _, task_order = policy.partition("+")
    return fitness, check_task_order(task_order or "given")


def place(workload, policy, seed: int) -> tuple[np.ndarray, str, float]:
    """Place every row of ``workload``: (host index per row or -1, who placed, seconds).

    The native engine when it is built; otherwise the numpy baseline, which places identically
    (rows permuted as the engine's task order would). Only the scheduling call is timed.
    """
    fitness, task_order = split_policy(policy)
    if native_scheduler_class() is not None:
        scheduler = make_scheduler("native", fitness=fitness, seed=seed, task_order=task_order)
        scheduler.add_hosts(workload.hosts())
        start = time.perf_counter()
        placement = scheduler.schedule_arrays(workload.demand, workload.task_class,
                                              workload.classes)
        return placement, "engine", time.perf_counter() - start
    greedy = workload_greedy(workload, fitness, seed)
    rows = row_order(workload.task_class, workload.classes, task_order)
    if rows is None:
        rows = np.arange(len(workload.task_class))
    start = time.perf_counter()
    placement, _ = greedy.schedule_arrays(workload.demand[rows], workload.task_class[rows],
                                          workload.classes)
    return in_input_order(placement, rows), "numpy", time.perf_counter() - start


def measure_instance(instance: Instance, fitnesses, *, seed: int, cpsat_seconds: float,
                     cpsat: bool) -> list[dict]:
    """One row per fitness on ``instance``; with ``cpsat``, CP-SAT's figures on every row."""
    workload = instance.workload(seed)
    rows, placements = [], []
    for fitness in fitnesses:
        placement, who, seconds = place(workload, fitness, seed)
        placed = placement >= 0
        used = int(len(np.unique(placement[placed])))
        bound = workload.lower_bound(placed)
        placements.append(placement)
        rows.append({
            **instance._asdict(), "jobs": len(workload.classes), "seed": seed,
            "fitness": fitness, "placed": int(placed.sum()), "greedy": who,
            "greedy_hosts_used": used, "greedy_seconds": seconds,
            "lower_bound_hosts": bound.hosts, "lower_bound_method": bound.method,
            "greedy_over_lower_bound": used / bound.hosts if bound.hosts else None,
            "greedy_used_host_utilisation": workload.used_host_utilisation(placement),
            "cpsat_hosts": None, "cpsat_bound": None, "cpsat_status": None,
            "cpsat_seconds": None, "greedy_over_cpsat": None,
        })
    if cpsat and rows:
        _add_cpsat(rows, placements, workload, cpsat_seconds)
    return rows


def _add_cpsat(rows, placements, workload, time_limit) -> None:
    """CP-SAT once for the instance (it does not depend on the fitness), hinted with the
    placement that placed the most tasks in the fewest hosts."""
    best = min(range(len(rows)), key=lambda i: (-rows[i]["placed"], rows[i]["greedy_hosts_used"]))
    mask = placements[best] >= 0
    result = min_hosts(workload.capacity, workload.demand[mask], time_limit=time_limit,
                       hint=placements[best][mask])
    for row, placement in zip(rows, placements):
        row.update(cpsat_status=result.status, cpsat_seconds=result.seconds)
        # CP-SAT packed the hinted placement's tasks: its count and bound hold only for a row
        # that placed exactly those
        if np.array_equal(placement >= 0, mask):
            row.update(cpsat_hosts=result.hosts, cpsat_bound=result.bound)
            if result.hosts:
                row["greedy_over_cpsat"] = row["greedy_hosts_used"] / result.hosts


def run_packing(instances=DEFAULT_INSTANCES, fitnesses=tuple(DEFAULT_FITNESS.split(",")), *,
                seed: int = 0, cpsat_seconds: float = 20.0,
                cpsat_max_hosts: int = CPSAT_MAX_HOSTS, progress: bool = False) -> list[dict]:
    """Every fitness on every instance (CP-SAT on those up to ``cpsat_max_hosts`` hosts);
    prints one line per row."""
    rows = []
    bar = tqdm(total=len(instances) * len(fitnesses), desc="packing", unit="row",
               file=sys.stderr, disable=None if progress else True)  # None: off when not a terminal
    with bar:
        for instance in instances:
            bar.set_postfix_str(instance.label())
            new = measure_instance(instance, fitnesses, seed=seed, cpsat_seconds=cpsat_seconds,
                                   cpsat=instance.hosts <= cpsat_max_hosts)
            for row in new:
                tqdm.write(row_line(row), file=sys.stdout)
            rows += new
            bar.update(len(new))
    return rows


def row_line(row: dict) -> str:
    """One printed line for a row."""
    ratio = row["greedy_over_lower_bound"]
    full = row["greedy_used_host_utilisation"]
    text = (f"{row['hosts']:>7,} hosts {row['tasks']:>8,} tasks {row['cluster']:<11} "
            f"{row['constraints']:<5} {row['fitness']:<37} used {row['greedy_hosts_used']:>6,}"
            f" / bound {row['lower_bound_hosts'] or 0:>6,} = {ratio or float('nan'):.3f}"
            f"  {full or 0:4.0%} full  {row['greedy_seconds']:.3f} s")
    if row["cpsat_status"]:
        text += (f"  CP-SAT {row['cpsat_hosts'] or '-'} ({row['cpsat_status']}, bound "
                 f"{row['cpsat_bound']}, {row['cpsat_seconds']:.0f} s)")
        if row["greedy_over_cpsat"]:
            text += f" -> {row['greedy_over_cpsat']:.3f}"
    return text


def _short(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fitness", default=DEFAULT_FITNESS,
                   help="comma-separated policies: a fitness name, optionally +interleave_jobs")
    p.add_argument("--sizes", type=lambda s: [parse_instance(x) for x in s.split(",") if x],
                   default=list(DEFAULT_INSTANCES),
                   help="comma-separated instances HOSTSxTASKS[:CLUSTER[:CONSTRAINTS]]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpsat-seconds", type=float, default=20.0, help="CP-SAT time limit")
    p.add_argument("--cpsat-max-hosts", type=int, default=CPSAT_MAX_HOSTS,
                   help="run CP-SAT on instances up to this many hosts")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--name", default="packing", help="results file stem")
    p.add_argument("--out", default=str(RESULTS), help="results directory")
    return p


def main(argv=None) -> int:
    """Run the instances given on the command line; print, save the JSON and the plot."""
    from bench.plots import plot_packing  # matplotlib only when plotting

    args = _parser().parse_args(argv)
    fitnesses = [f for f in args.fitness.split(",") if f]
    if native_scheduler_class() is None:
        print("note: titus.Scheduler is not available; the numpy baseline places instead",
              file=sys.stderr)
    rows = run_packing(args.sizes, fitnesses, seed=args.seed, cpsat_seconds=args.cpsat_seconds,
                       cpsat_max_hosts=args.cpsat_max_hosts, progress=args.progress)
    argv = sys.argv[1:] if argv is None else argv
    payload = {"machine": machine(), "command": " ".join(["python bench/packing.py", *argv]),
               "seed": args.seed, "fitness": fitnesses, "cpsat_seconds": args.cpsat_seconds,
               "rows": rows}
    out = Path(args.out)
    print(f"saved {save_json(args.name, payload, out)}")
    print(f"saved {plot_packing(rows, out / f'{args.name}.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
