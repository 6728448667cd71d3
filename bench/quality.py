"""Packing quality on small instances: engine (greedy) hosts used vs the lower bound vs the
optimum found by OR-Tools CP-SAT (pure packing, constraints ignored)."""
from __future__ import annotations

from bench.baselines.cpsat_packing import min_hosts
from bench.common import native_scheduler_class, workload_greedy
from titus.workloads import generate

HOMOGENEOUS = (("half-half", 0.5, 0.5, 1.0),)
# (hosts, tasks, cluster): small enough for CP-SAT to (nearly) prove optimality in its time
# limit; "google2011" is the trace's mix of machine shapes, "homogeneous" its common shape only
DEFAULT_INSTANCES = ((40, 400, "google2011"), (100, 1000, "google2011"),
                     (100, 1000, "homogeneous"))


def run_quality(instances=DEFAULT_INSTANCES, *, fitness: str, seed: int,
                time_limit: float) -> list[dict]:
    """One row per instance: hosts used by the greedy scheduler, lower bound, CP-SAT optimum."""
    rows = []
    engine_cls = native_scheduler_class()
    for hosts, tasks, cluster in instances:
        shapes = {"machine_shapes": HOMOGENEOUS} if cluster == "homogeneous" else {}
        workload = generate(hosts=hosts, tasks=tasks, constraints="none", seed=seed,
                            jobs=max(10, tasks // 20), **shapes)
        if engine_cls is not None:
            scheduler = engine_cls(fitness=fitness, seed=seed)
            scheduler.add_hosts(workload.hosts())
            placement = scheduler.schedule_arrays(workload.demand, workload.task_class,
                                                  workload.classes)
            who = "engine"
        else:  # the numpy baseline places identically (same semantics)
            placement, _ = workload_greedy(workload, fitness, seed).schedule_arrays(
                workload.demand, workload.task_class, workload.classes)
            who = "numpy"
        placed = placement >= 0
        used = len(set(placement[placed].tolist()))
        bound = workload.lower_bound(placed)
        best = min_hosts(workload.capacity, workload.demand[placed], time_limit=time_limit,
                         hint=placement[placed])
        rows.append({
            "hosts": hosts, "tasks": tasks, "cluster": cluster, "placed": int(placed.sum()), "fitness": fitness,
            "greedy": who, "greedy_hosts_used": used,
            "lower_bound_hosts": bound.hosts, "lower_bound_method": bound.method,
            "cpsat_hosts": best.hosts, "cpsat_bound": best.bound, "cpsat_status": best.status,
            "cpsat_seconds": best.seconds,
            "greedy_over_lower_bound": used / bound.hosts if bound.hosts else None,
            "greedy_over_cpsat": used / best.hosts if best.hosts else None,
            "greedy_used_host_utilisation": workload.used_host_utilisation(placement),
        })
    return rows
