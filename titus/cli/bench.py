"""``titus bench``: schedule a synthetic, trace-shaped workload on an in-memory cluster."""
from __future__ import annotations

import json
import sys

import click

from titus.cli import main
from titus.scheduler.task_order import TASK_ORDERS as SCHEDULER_ORDERS
from titus.scheduler.validation import FITNESS_NAMES
from titus.workloads import CONSTRAINT_MIXES, SHAPES, TASK_ORDERS, generate, make_spec
from titus.workloads.runner import APIS, ENGINES, cpu_model, make_scheduler, run

# Above this many tasks the run goes in batches with a progress bar (a long run shows life).
_PROGRESS_ABOVE = 200_000
_PROGRESS_BATCH = 100_000


@main.command("bench")
@click.option("--hosts", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Hosts in the cluster (Google 2011 trace machine shapes).")
@click.option("--tasks", default=None, type=click.IntRange(min=0),
              help="Tasks to place [default: 100,000; 110,000 with --shape pareto].")
@click.option("--constraints", "--workload", "constraints", default=None,
              type=click.Choice(CONSTRAINT_MIXES),
              help="Constraint mix: none; zone = hard HostAttrValue(tier=flex) + soft "
                   "BalancedHostAttr(zone); unique = one task per host per job; mixed; pinned = "
                   "10% hard HostAttrValue(zone, [two zones]), 30% soft BalancedHostAttr(zone). "
                   "[default: zone; pinned with --shape pareto]")
@click.option("--shape", default="google", show_default=True, type=click.Choice(SHAPES),
              help="google: Google 2011 machine shapes, Google 2019 job sizes; pareto: three "
                   "instance types over three zones, Pareto job sizes up to 20,000 tasks.")
@click.option("--fitness", default="cpu_mem_binpack", show_default=True,
              type=click.Choice(FITNESS_NAMES), help="Fitness function.")
@click.option("--task-order", default="given", show_default=True, type=click.Choice(SCHEDULER_ORDERS),
              help="The scheduler's placement order within a call: the given order, or each "
                   "job's tasks spread evenly through the call (fewer hosts on mixed shapes).")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the workload and of the scheduler's tie-breaking.")
@click.option("--api", default="arrays", show_default=True, type=click.Choice(APIS),
              help="arrays: schedule_arrays (throughput path); objects: schedule(Task list).")
@click.option("--engine", default="native", show_default=True, type=click.Choice(ENGINES),
              help="native: titus.Scheduler; reference: the plain-Python twin (slow).")
@click.option("--zones", default=3, show_default=True, type=click.IntRange(min=1),
              help="Zones (host attribute 'zone').")
@click.option("--order", default="jobs", show_default=True, type=click.Choice(TASK_ORDERS),
              help="Task order: each job's tasks together, or all interleaved.")
@click.option("--batch", default=0, type=click.IntRange(min=0),
              help="Tasks per scheduling call (0: all at once, or batches of "
                   f"{_PROGRESS_BATCH:,} with a progress bar above {_PROGRESS_ABOVE:,} tasks).")
@click.option("--full-scan", is_flag=True,
              help="Turn the engine's indexes off: scan every host per task, as Fenzo does.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench(hosts, tasks, constraints, shape, fitness, task_order, seed, api, engine, zones, order, batch,
          full_scan, as_json):
    """Schedule a synthetic workload and print placements/s, hosts used and the lower bound.

    The cluster and workload are generated from published trace facts (see docs/benchmarks.md);
    only the scheduling calls are timed.
    """
    if tasks is None:
        tasks = 110_000 if shape == "pareto" else 100_000
    knobs = dict(hosts=hosts, tasks=tasks, seed=seed, zones=zones, order=order)
    if constraints is not None or shape == "google":
        knobs["constraints"] = constraints or "zone"
    spec = make_spec(shape, **knobs)
    workload = generate(spec)
    try:
        options = {"index": False} if full_scan else {}
        scheduler = make_scheduler(engine, fitness=fitness, seed=seed, task_order=task_order,
                                   **options)
    except ImportError as exc:
        raise click.ClickException(f"the {engine} scheduler is not available: {exc}") from exc
    if batch == 0 and tasks > _PROGRESS_ABOVE:
        batch = _PROGRESS_BATCH
    outcome = _run_with_progress(scheduler, workload, api, batch or None, quiet=as_json)
    figures = _figures(spec, workload, outcome, fitness, api, engine)
    figures["full_scan"] = full_scan
    figures["task_order"] = task_order
    figures["shape"] = shape
    figures["cpu"] = cpu_model()
    if as_json:
        click.echo(json.dumps(figures, indent=2))
    else:
        _print(figures)


def _run_with_progress(scheduler, workload, api, batch, quiet):
    n = len(workload.demand)
    if batch is None or batch >= n or quiet:
        return run(scheduler, workload, api=api, batch=batch)
    from tqdm import tqdm

    with tqdm(total=n, unit="task", unit_scale=True, desc="scheduling", file=sys.stderr,
              leave=False, disable=None) as bar:
        return run(scheduler, workload, api=api, batch=batch,
                   progress=lambda done: bar.update(done - bar.n))


def _figures(spec, workload, outcome, fitness, api, engine) -> dict:
    placed = outcome.placement >= 0
    bound = workload.lower_bound(placed)
    ratio = outcome.hosts_used / bound.hosts if bound.hosts else None
    return {
        "hosts": spec.hosts,
        "tasks": spec.tasks,
        "jobs": len(workload.classes),
        "constraints": spec.constraints,
        "fitness": fitness,
        "seed": spec.seed,
        "api": api,
        "engine": engine,
        "placed": outcome.placed,
        "unplaced": spec.tasks - outcome.placed,
        "schedule_seconds": outcome.schedule_seconds,
        "add_hosts_seconds": outcome.add_hosts_seconds,
        "placements_per_second": outcome.placements_per_second,
        "hosts_used": outcome.hosts_used,
        "lower_bound_hosts": bound.hosts,
        "lower_bound_method": bound.method,
        "hosts_used_over_lower_bound": ratio,
        "used_host_utilisation": workload.used_host_utilisation(outcome.placement),
    }


def _print(f: dict) -> None:
    click.echo(f"titus bench: {f['tasks']:,} tasks in {f['jobs']:,} jobs onto {f['hosts']:,} "
               f"hosts (shape={f['shape']}, constraints={f['constraints']}, fitness={f['fitness']}, "
               f"task order={f['task_order']}, api={f['api']}, engine={f['engine']}, "
               f"seed={f['seed']})")
    click.echo(f"  cpu            {f['cpu']} (one thread)")
    click.echo(f"  placed         {f['placed']:,} ({f['unplaced']:,} unplaced)")
    click.echo(f"  schedule time  {f['schedule_seconds']:.4f} s  "
               f"(add hosts {f['add_hosts_seconds']:.4f} s)")
    click.echo(f"  placements/s   {f['placements_per_second']:,.0f}")
    click.echo(f"  hosts used     {f['hosts_used']:,}")
    if f["lower_bound_hosts"] is None:
        click.echo("  lower bound    n/a")
    else:
        ratio = f["hosts_used_over_lower_bound"]
        ratio_text = f"{ratio:.3f}" if ratio is not None else "n/a"
        click.echo(f"  lower bound    {f['lower_bound_hosts']:,} hosts ({f['lower_bound_method']}); "
                   f"hosts used / bound = {ratio_text}")
    if f["used_host_utilisation"] is not None:
        click.echo(f"  used hosts     {f['used_host_utilisation']:.1%} full in their bottleneck "
                   f"resource")
