"""Trace-shaped synthetic clusters and workloads for benchmarks and ``titus bench``.

``generate(WorkloadSpec(...))`` (or ``generate(hosts=..., tasks=..., ...)``) builds, from one
seed, a cluster whose machine shapes follow Google's 2011 trace and a workload whose job sizes
follow Google's 2019 trace (see ``trace_facts``), with an optional constraint mix. The result
holds arrays for ``Scheduler.schedule_arrays`` and builds the same input as ``Host``/``Task``
objects; ``Workload.lower_bound`` gives a lower bound on the hosts any placement needs.
"""
from titus.workloads.bounds import HostBound, lower_bound_hosts
from titus.workloads.generator import RESOURCES, Workload, generate, job_sizes, pareto_job_sizes
from titus.workloads.spec import (CONSTRAINT_MIXES, SHAPES, TASK_ORDERS, THREE_INSTANCE_TYPES, WorkloadSpec,
                                  make_spec, pareto_spec)

__all__ = [
    "CONSTRAINT_MIXES",
    "RESOURCES",
    "TASK_ORDERS",
    "HostBound",
    "Workload",
    "WorkloadSpec",
    "generate",
    "job_sizes",
    "make_spec",
    "pareto_job_sizes",
    "pareto_spec",
    "SHAPES",
    "THREE_INSTANCE_TYPES",
    "lower_bound_hosts",
]
