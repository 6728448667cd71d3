"""One cell of the engine grid: a workload, the engine's full run and the baselines beside it.

Every baseline runs on a prefix of the same task rows (as many as fit its time budget); since
all methods are exact greedy schedulers of the same semantics, their placements on that prefix
must equal the engine's, and the cell records whether they do. Speed-ups compare times on the
same rows: the engine is timed again, fresh, on each baseline's prefix.
"""
from __future__ import annotations

import time

import numpy as np

from bench.common import (native_scheduler_class, rate, supports_full_scan, timed_prefix,
                          workload_greedy)
from titus.scheduler.factory import make_scheduler
from titus.workloads import generate, pareto_spec

METHODS = ("engine", "full_scan", "numpy", "reference")


def run_cell(hosts: int, tasks: int, constraints: str, *, fitness: str, seed: int,
             methods: tuple, budget: float, reference_max_hosts: int) -> dict:
    """Measure one (hosts, tasks, constraints) cell; returns its figures as a dict."""
    # "pareto" is the Pareto trace shape (titus.workloads.pareto_spec), the rest are mixes
    workload = (generate(pareto_spec(hosts=hosts, tasks=tasks, seed=seed)) if constraints == "pareto"
                else generate(hosts=hosts, tasks=tasks, constraints=constraints, seed=seed))
    cell = {"hosts": hosts, "tasks": tasks, "constraints": constraints, "fitness": fitness,
            "seed": seed, "jobs": len(workload.classes), "methods": {}}
    engine_cls = native_scheduler_class()
    engine = None
    hosts_list = workload.hosts()  # built once, added to every scheduler of the cell
    if engine_cls is not None:
        engine = _engine_full(workload, hosts_list, fitness, seed)
        cell["methods"]["engine"] = engine
        bound = workload.lower_bound(engine["placement"] >= 0)
        cell["lower_bound_hosts"] = bound.hosts
        cell["lower_bound_method"] = bound.method
        if bound.hosts:
            engine["hosts_used_over_lower_bound"] = engine["hosts_used"] / bound.hosts
        engine["used_host_utilisation"] = workload.used_host_utilisation(engine["placement"])
    for method in methods:
        if method == "engine":
            continue
        result = _baseline(method, engine_cls, workload, hosts_list, fitness, seed, budget,
                           reference_max_hosts)
        if result is None:
            continue
        if engine is not None:
            _compare(result, engine, workload, hosts_list, fitness, seed)
        cell["methods"][method] = result
    _ratios_against_numpy(cell)
    for result in cell["methods"].values():
        result.pop("placement", None)
    return cell


def _engine_full(workload, hosts_list, fitness, seed) -> dict:
    """The engine on every row; a run under a second is repeated (best of 3) to damp the noise
    of a shared machine -- the placements are the same every time."""
    best = None
    for _ in range(3):
        scheduler = make_scheduler("native", fitness=fitness, seed=seed)
        start = time.perf_counter()
        scheduler.add_hosts(hosts_list)
        add_seconds = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        placement = scheduler.schedule_arrays(workload.demand, workload.task_class,
                                              workload.classes)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        if best is None or seconds < best[0]:
            best = (seconds, cpu, add_seconds, placement)
        if seconds >= 1.0:
            break
    seconds, cpu, add_seconds, placement = best
    # cpu_seconds (all threads of this process) shows how much a busy machine stretched the wall
    return _figures(placement, len(placement), seconds) | {"add_hosts_seconds": add_seconds,
                                                             "cpu_seconds": cpu}


def _engine_on_prefix(workload, hosts_list, fitness, seed, rows: int) -> float:
    """Seconds the engine takes on the first ``rows`` rows (best of up to 3 short runs)."""
    best = None
    for _ in range(3):
        scheduler = make_scheduler("native", fitness=fitness, seed=seed)
        scheduler.add_hosts(hosts_list)
        start = time.perf_counter()
        scheduler.schedule_arrays(workload.demand[:rows], workload.task_class[:rows],
                                  workload.classes)
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
        if seconds > 0.5:
            break
    return best


def _baseline(method, engine_cls, workload, hosts_list, fitness, seed, budget,
              reference_max_hosts):
    if method == "numpy":
        greedy = workload_greedy(workload, fitness, seed)
        start, cpu = time.perf_counter(), time.process_time()
        placement, rows = greedy.schedule_arrays(workload.demand, workload.task_class,
                                                 workload.classes, time_budget=budget)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return _figures(placement[:rows], rows, seconds) | {"cpu_seconds": cpu}
    if method == "reference":
        if len(workload.host_ids) > reference_max_hosts:
            return None
        scheduler = make_scheduler("reference", fitness=fitness, seed=seed)
    elif method == "full_scan":
        if not supports_full_scan(engine_cls):
            return None
        scheduler = make_scheduler("native", fitness=fitness, seed=seed, index=False)
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    scheduler.add_hosts(hosts_list)
    placement, rows, seconds = timed_prefix(scheduler, workload, budget)
    return _figures(placement, rows, seconds)


def _figures(placement: np.ndarray, rows: int, seconds: float) -> dict:
    placed = int(np.count_nonzero(placement >= 0))
    return {
        "rows": int(rows),
        "seconds": seconds,
        "placed": placed,
        "placements_per_second": rate(placed, seconds),
        "tasks_per_second": rate(rows, seconds),
        "hosts_used": int(len(np.unique(placement[placement >= 0]))),
        "placement": placement,
    }


def _compare(result, engine, workload, hosts_list, fitness, seed) -> None:
    rows = result["rows"]
    result["same_placements_as_engine"] = bool(
        np.array_equal(result["placement"], engine["placement"][:rows]))
    if rows == engine["rows"]:
        engine_seconds = engine["seconds"]
    else:
        engine_seconds = _engine_on_prefix(workload, hosts_list, fitness, seed, rows)
    result["engine_seconds_same_rows"] = engine_seconds
    result["engine_speedup_same_rows"] = (result["seconds"] / engine_seconds
                                          if engine_seconds else None)


def _ratios_against_numpy(cell) -> None:
    """Each method's tasks/s over the numpy baseline's, both from this run."""
    numpy_rate = cell["methods"].get("numpy", {}).get("tasks_per_second")
    for result in cell["methods"].values():
        own = result.get("tasks_per_second")
        result["speedup_vs_numpy"] = own / numpy_rate if own and numpy_rate else None
