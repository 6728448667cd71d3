"""Packing quality on small instances: engine (greedy) hosts used vs the lower bound vs the
optimum found by OR-Tools CP-SAT (pure packing, constraints ignored).

The engine grid's quality rows: one fitness on the CP-SAT instances, measured by
``bench.packing`` (which runs every fitness on larger instances too).
"""
from __future__ import annotations

from bench.packing import HOMOGENEOUS, Instance, measure_instance

__all__ = ["DEFAULT_INSTANCES", "HOMOGENEOUS", "run_quality"]

# (hosts, tasks, cluster): small enough for CP-SAT to (nearly) prove optimality in its time
# limit; "google2011" is the trace's mix of machine shapes, "homogeneous" its common shape only
DEFAULT_INSTANCES = ((40, 400, "google2011"), (100, 1000, "google2011"),
                     (100, 1000, "homogeneous"))


def run_quality(instances=DEFAULT_INSTANCES, *, fitness: str, seed: int,
                time_limit: float) -> list[dict]:
    """One row per instance: hosts used by the greedy scheduler, lower bound, CP-SAT optimum."""
    rows = []
    for hosts, tasks, cluster in instances:
        rows += measure_instance(Instance(hosts, tasks, cluster), (fitness,), seed=seed,
                                 cpsat_seconds=time_limit, cpsat=True)
    return rows
