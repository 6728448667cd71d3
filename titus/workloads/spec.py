"""The knobs of a synthetic workload, checked on construction."""
from __future__ import annotations

import math
from dataclasses import dataclass

from titus.workloads.trace_facts import (
    GOOGLE_2011_MACHINE_SHAPES,
    GOOGLE_2019_TOP_1PCT_JOBS_RESOURCE_SHARE,
)

CONSTRAINT_MIXES = ("none", "zone", "unique", "mixed", "pinned")
TASK_ORDERS = ("jobs", "shuffled")
JOB_SIZE_LAWS = ("zipf", "pareto")
SHAPES = ("google", "pareto")

# Three instance types (m5.4xlarge, c5.9xlarge, r5.8xlarge), normalised to 64 cpus / 256 GiB:
# (name, cpu, memory, share of hosts). Our choice: a small fleet of general, compute and
# memory shapes, as an EC2 cluster has.
THREE_INSTANCE_TYPES: tuple[tuple[str, float, float, float], ...] = (
    ("m5.4xlarge", 0.25, 0.25, 0.4),
    ("c5.9xlarge", 0.5625, 0.28125, 0.3),
    ("r5.8xlarge", 0.5, 1.0, 0.3),
)


@dataclass(frozen=True)
class WorkloadSpec:
    """Everything that decides a generated cluster and workload; same spec, same output.

    Cluster (Google 2011 trace shapes, scaled to real units):

    - ``hosts``: number of machines; ``machine_shapes``: ``(name, cpu, memory, share)`` rows in
      normalised units, drawn by share; ``cpus_per_unit``/``memory_mb_per_unit``: what 1.0
      normalised means (default 64 cpus / 256 GiB); ``disk_mb``/``network_mbps``: every host's
      disk and network (not in the trace's shape table; our choice, large enough not to bind);
    - ``zones``: hosts get attribute ``zone`` = ``zone-0`` .. ``zone-{zones-1}``, drawn uniformly;
    - ``critical_fraction``: share of hosts with attribute ``tier=critical`` (the rest are
      ``tier=flex``); the ``zone`` mix asks for flex hosts.

    Workload (Google 2019 trace job sizes):

    - ``tasks``: number of tasks; ``jobs``: number of jobs (default ``round(sqrt(tasks))``);
    - ``top_share``: share of tasks given to the top 1% of jobs (default 0.99, the 2019 trace's
      resource share of its top 1%; the largest 1% then hold at least this); the rest go to the other jobs by a Zipf law with exponent
      ``tail_exponent``, at least one task each;
    - per job, one demand shared by all its tasks: cpu drawn log-normal around
      ``task_cpu_median`` (normalised), memory/cpu ratio log-normal around 1 with
      ``task_memory_spread``, both capped at ``task_max`` (tasks are small beside a machine);
      disk and network log-normal around ``task_disk_mb`` / ``task_network_mbps``;
    - ``constraints``: one of ``CONSTRAINT_MIXES`` (see ``titus.workloads.mixes``);
    - ``order``: ``"jobs"`` (each job's tasks together, jobs in random arrival order) or
      ``"shuffled"`` (all tasks interleaved);
    - ``job_size_law``: ``"zipf"`` (the above) or ``"pareto"``: job sizes drawn
      ``ceil(Pareto(pareto_alpha))`` (at least 1 task), capped at ``job_max`` tasks, until they
      hold ``tasks`` tasks (the last job cut to fit); ``jobs`` and ``top_share`` are then unused;
    - ``seed``: the only source of randomness.
    """

    hosts: int = 1000
    tasks: int = 10_000
    seed: int = 0
    machine_shapes: tuple[tuple[str, float, float, float], ...] = GOOGLE_2011_MACHINE_SHAPES
    cpus_per_unit: float = 64.0
    memory_mb_per_unit: float = 262_144.0
    disk_mb: float = 1_048_576.0
    network_mbps: float = 10_000.0
    zones: int = 3
    critical_fraction: float = 0.1
    jobs: int | None = None
    top_share: float = GOOGLE_2019_TOP_1PCT_JOBS_RESOURCE_SHARE
    tail_exponent: float = 1.0
    task_cpu_median: float = 0.01
    task_cpu_sigma: float = 0.8
    task_memory_spread: float = 0.5
    task_max: float = 0.0625
    task_disk_mb: float = 2048.0
    task_network_mbps: float = 50.0
    constraints: str = "none"
    order: str = "jobs"
    job_size_law: str = "zipf"
    pareto_alpha: float = 1.1
    job_max: int = 20_000

    def __post_init__(self):
        _positive_int("hosts", self.hosts)
        _non_negative_int("tasks", self.tasks)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        _positive_int("zones", self.zones)
        if self.jobs is not None:
            _positive_int("jobs", self.jobs)
        for name in ("cpus_per_unit", "memory_mb_per_unit", "disk_mb", "network_mbps",
                     "task_cpu_median", "task_max", "tail_exponent"):
            _positive_float(name, getattr(self, name))
        for name in ("task_cpu_sigma", "task_memory_spread", "task_disk_mb", "task_network_mbps"):
            _non_negative_float(name, getattr(self, name))
        for name in ("critical_fraction", "top_share"):
            value = getattr(self, name)
            _non_negative_float(name, value)
            if value > 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.critical_fraction >= 1:
            raise ValueError(f"critical_fraction must be < 1, got {self.critical_fraction!r}")
        _check_shapes(self.machine_shapes)
        if self.constraints not in CONSTRAINT_MIXES:
            raise ValueError(
                f"constraints must be one of {', '.join(CONSTRAINT_MIXES)}, got {self.constraints!r}")
        if self.job_size_law not in JOB_SIZE_LAWS:
            raise ValueError(f"job_size_law must be one of {', '.join(JOB_SIZE_LAWS)}, got {self.job_size_law!r}")
        _positive_float("pareto_alpha", self.pareto_alpha)
        _positive_int("job_max", self.job_max)
        if self.order not in TASK_ORDERS:
            raise ValueError(f"order must be one of {', '.join(TASK_ORDERS)}, got {self.order!r}")

    @property
    def job_count(self) -> int:
        """Number of jobs: ``jobs`` if given, else ``round(sqrt(tasks))``; never above ``tasks``."""
        wanted = self.jobs if self.jobs is not None else max(1, round(math.sqrt(self.tasks)))
        return min(wanted, self.tasks)


def pareto_spec(hosts: int = 10_000, tasks: int = 110_000, seed: int = 0, order: str = "jobs",
                **knobs) -> WorkloadSpec:
    """The Pareto trace shape: three instance types (``THREE_INSTANCE_TYPES``) over three zones,
    heavy-tailed job sizes (Pareto, alpha 1.1, up to 20,000 tasks), the ``pinned`` constraint mix
    (10% of jobs held by a hard ``HostAttrValue`` to two of the three zones, 30% with a soft
    ``BalancedHostAttr("zone")``), jobs arriving in random order. ``knobs`` override any field."""
    fields = dict(hosts=hosts, tasks=tasks, seed=seed, order=order, machine_shapes=THREE_INSTANCE_TYPES,
                  zones=3, critical_fraction=0.0, job_size_law="pareto", constraints="pinned")
    return WorkloadSpec(**{**fields, **knobs})


def make_spec(shape: str = "google", **knobs) -> WorkloadSpec:
    """A spec of one of ``SHAPES``: ``google`` (``WorkloadSpec``'s defaults: the Google traces)
    or ``pareto`` (``pareto_spec``)."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    return pareto_spec(**knobs) if shape == "pareto" else WorkloadSpec(**knobs)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")


def _non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def _non_negative_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def _positive_float(name, value):
    _non_negative_float(name, value)
    if value == 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_shapes(shapes):
    if not shapes:
        raise ValueError("machine_shapes must not be empty")
    for row in shapes:
        if len(row) != 4:
            raise ValueError(f"machine_shapes rows are (name, cpu, memory, share), got {row!r}")
        name, cpu, memory, share = row
        _positive_float(f"machine_shapes[{name!r}].cpu", cpu)
        _positive_float(f"machine_shapes[{name!r}].memory", memory)
        _non_negative_float(f"machine_shapes[{name!r}].share", share)
    if sum(row[3] for row in shapes) <= 0:
        raise ValueError("machine_shapes shares must not all be 0")
