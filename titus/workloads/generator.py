"""Seeded generation of trace-shaped clusters and workloads, as arrays and as objects."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from titus.constraints import HostAttrValue
from titus.resources import BASE_RESOURCES
from titus.scheduler.model import Host, Task, TaskClass
from titus.workloads.bounds import HostBound, lower_bound_hosts
from titus.workloads.mixes import task_classes
from titus.workloads.spec import WorkloadSpec

#: The workload's array columns: the engine's base resources (generated hosts and tasks have no
#: scalars), so ``Scheduler.resources`` equals them once the hosts are added.
RESOURCES = BASE_RESOURCES


@dataclass(frozen=True, eq=False)
class Workload:
    """A generated cluster and the tasks to place on it.

    Arrays (the throughput path): ``capacity`` float64[H, 4] and ``demand`` float64[N, 4] in
    ``RESOURCES`` order, ``task_class`` int32[N] indexing ``classes`` (one ``TaskClass`` per
    job). ``host_ids``, ``host_zone`` (str[H]), ``host_tier`` (str[H]) and ``host_shape``
    (int[H], index into ``spec.machine_shapes``) describe the hosts. ``hosts()`` and
    ``tasks()`` build the same cluster and workload as ``Host``/``Task`` objects (task ``i`` is
    row ``i``), so both APIs can be fed identical input.
    """

    spec: WorkloadSpec
    host_ids: list[str]
    capacity: np.ndarray
    host_shape: np.ndarray
    host_zone: np.ndarray
    host_tier: np.ndarray
    demand: np.ndarray
    task_class: np.ndarray
    classes: list[TaskClass]
    job_sizes: np.ndarray

    resources = RESOURCES

    @property
    def task_ids(self) -> list[str]:
        """Task ids, row order."""
        return [f"task-{i}" for i in range(len(self.demand))]

    def hosts(self) -> list[Host]:
        """The cluster as ``Host`` objects (attributes ``zone``, ``tier``, ``shape``)."""
        names = [row[0] for row in self.spec.machine_shapes]
        cap = self.capacity.tolist()
        return [
            Host(hid, cpus=c[0], memory_mb=c[1], disk_mb=c[2], network_mbps=c[3],
                 attributes={"zone": z, "tier": t, "shape": names[s]})
            for hid, c, z, t, s in zip(self.host_ids, cap, self.host_zone.tolist(),
                                       self.host_tier.tolist(), self.host_shape.tolist())
        ]

    def tasks(self, start: int = 0, stop: int | None = None) -> list[Task]:
        """Rows ``start:stop`` of the workload as ``Task`` objects (ids ``task-<row>``)."""
        stop = len(self.demand) if stop is None else stop
        rows = self.demand[start:stop].tolist()
        classes = self.classes
        out = []
        for i, (d, c) in enumerate(zip(rows, self.task_class[start:stop].tolist()), start):
            k = classes[c]
            out.append(Task(f"task-{i}", cpus=d[0], memory_mb=d[1], disk_mb=d[2],
                            network_mbps=d[3], job=k.job, group=k.group, hard=k.hard,
                            soft=k.soft))
        return out

    @cached_property
    def eligible_hosts(self) -> np.ndarray:
        """bool[H]: hosts that the hard ``HostAttrValue`` constraints let at least one job use."""
        attrs = {"zone": self.host_zone, "tier": self.host_tier,
                 "hostname": np.asarray(self.host_ids, dtype=object)}
        eligible = np.zeros(len(self.host_ids), dtype=bool)
        for cls in self.classes:
            mask = np.ones(len(self.host_ids), dtype=bool)
            for c in cls.hard:
                if isinstance(c, HostAttrValue):
                    values = attrs.get(c.attr)
                    mask &= (np.isin(values, list(c.values)) if values is not None
                             else np.zeros_like(mask))
            eligible |= mask
            if eligible.all():
                break
        return eligible

    def used_host_utilisation(self, placement: np.ndarray) -> float | None:
        """How full the hosts a placement uses are, in their most-used resource.

        ``placement`` int[N] gives each row's host index (-1 unplaced). Returns
        ``max over resources r of (placed demand[r] / capacity[r] of the hosts used)``: 1.0 means
        the used hosts are full in their bottleneck resource. Unlike the host count, it does not
        penalise filling small hosts first on a cluster of mixed shapes. None if nothing placed.
        """
        placement = np.asarray(placement)
        placed = placement >= 0
        if not placed.any():
            return None
        capacity = self.capacity[np.unique(placement[placed])].sum(axis=0)
        demand = self.demand[placed].sum(axis=0)
        has = capacity > 0
        return float(np.max(demand[has] / capacity[has]))

    def lower_bound(self, placed: np.ndarray | None = None, method: str = "auto") -> HostBound:
        """Lower bound on the hosts needed for the tasks in bool[N] ``placed`` (default: all).

        Only ``eligible_hosts`` count as capacity. See ``titus.workloads.bounds``.
        """
        demand = self.demand if placed is None else self.demand[np.asarray(placed, dtype=bool)]
        return lower_bound_hosts(self.capacity[self.eligible_hosts], demand.sum(axis=0), method)


def generate(spec: WorkloadSpec | None = None, **knobs) -> Workload:
    """Generate the cluster and workload described by ``spec`` (or by ``WorkloadSpec(**knobs)``).

    Deterministic: the same spec gives the same arrays, ids and classes.
    """
    if spec is None:
        spec = WorkloadSpec(**knobs)
    elif knobs:
        raise TypeError("pass either a WorkloadSpec or keyword knobs, not both")
    seeds = np.random.SeedSequence(spec.seed).spawn(4)
    host_rng, size_rng, demand_rng, order_rng = (np.random.default_rng(s) for s in seeds)

    shape, capacity, zone, tier = _cluster(spec, host_rng)
    if spec.job_size_law == "pareto":
        sizes = pareto_job_sizes(spec.tasks, spec.pareto_alpha, spec.job_max, size_rng)
    else:
        sizes = job_sizes(spec.tasks, spec.job_count, spec.top_share, spec.tail_exponent, size_rng)
    per_job = _job_demand(spec, len(sizes), demand_rng)
    classes = task_classes(spec.constraints, sizes, spec.hosts, spec.zones, demand_rng)
    task_class = _task_order(spec.order, sizes, order_rng)
    return Workload(
        spec=spec,
        host_ids=[f"host-{i}" for i in range(spec.hosts)],
        capacity=capacity,
        host_shape=shape,
        host_zone=zone,
        host_tier=tier,
        demand=np.ascontiguousarray(per_job[task_class]),
        task_class=task_class,
        classes=classes,
        job_sizes=sizes,
    )


def job_sizes(tasks: int, jobs: int, top_share: float, tail_exponent: float,
              rng: np.random.Generator) -> np.ndarray:
    """Tasks per job (int64[jobs], summing to ``tasks``, each >= 1), largest first.

    The top 1% of jobs (at least one) hold ``top_share`` of the tasks, as far as the other
    jobs' one-task minimum allows; within each of the two groups sizes follow a Zipf law with
    exponent ``tail_exponent`` (rank r gets weight r**-exponent). ``rng`` jitters the weights so
    equal-ranked seeds differ.
    """
    if tasks == 0:
        return np.zeros(0, dtype=np.int64)
    jobs = min(jobs, tasks)
    top = max(1, math.ceil(jobs / 100))
    rest = jobs - top
    top_tasks = tasks - rest if rest == 0 else min(tasks - rest, max(top, round(top_share * tasks)))
    sizes = np.concatenate([
        _split(top_tasks, top, tail_exponent, rng),
        _split(tasks - top_tasks, rest, tail_exponent, rng),
    ])
    return np.sort(sizes)[::-1]


def pareto_job_sizes(tasks: int, alpha: float, job_max: int, rng: np.random.Generator) -> np.ndarray:
    """Tasks per job (int64, summing to ``tasks``, each in 1..``job_max``), in draw order: sizes
    ``ceil(Pareto(alpha))`` (Lomax + 1, so the least is 1) capped at ``job_max``, drawn until
    they hold ``tasks`` tasks; the last job is cut to fit."""
    sizes: list[int] = []
    total = 0
    while total < tasks:
        draw = np.minimum(np.ceil(rng.pareto(alpha, size=1024) + 1.0), job_max).astype(np.int64)
        for x in draw.tolist():
            x = min(x, tasks - total)
            sizes.append(x)
            total += x
            if total >= tasks:
                break
    return np.asarray(sizes, dtype=np.int64)


def _split(total: int, parts: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``total`` split into ``parts`` integers >= 1 with Zipf weights (largest-remainder)."""
    if parts == 0:
        return np.zeros(0, dtype=np.int64)
    weights = np.arange(1, parts + 1, dtype=np.float64) ** -exponent
    weights *= rng.uniform(0.9, 1.1, size=parts)
    share = weights / weights.sum() * (total - parts)
    sizes = np.floor(share).astype(np.int64)
    short = (total - parts) - int(sizes.sum())
    sizes[np.argsort(share - sizes, kind="stable")[::-1][:short]] += 1
    return sizes + 1


def _cluster(spec: WorkloadSpec, rng: np.random.Generator):
    shares = np.array([row[3] for row in spec.machine_shapes], dtype=np.float64)
    shape = rng.choice(len(shares), size=spec.hosts, p=shares / shares.sum())
    norm = np.array([[row[1], row[2]] for row in spec.machine_shapes], dtype=np.float64)
    capacity = np.empty((spec.hosts, len(RESOURCES)), dtype=np.float64)
    capacity[:, 0] = norm[shape, 0] * spec.cpus_per_unit
    capacity[:, 1] = np.floor(norm[shape, 1] * spec.memory_mb_per_unit)
    capacity[:, 2] = spec.disk_mb
    capacity[:, 3] = spec.network_mbps
    zone_names = np.array([f"zone-{z}" for z in range(spec.zones)], dtype=object)
    zone = zone_names[rng.integers(0, spec.zones, size=spec.hosts)]
    tier = np.where(rng.random(spec.hosts) < spec.critical_fraction, "critical", "flex").astype(object)
    return shape.astype(np.int64), capacity, zone, tier


def _job_demand(spec: WorkloadSpec, jobs: int, rng: np.random.Generator) -> np.ndarray:
    """float64[jobs, 4]: one demand per job, small beside a machine."""
    cpu = spec.task_cpu_median * rng.lognormal(0.0, spec.task_cpu_sigma, size=jobs)
    memory = cpu * rng.lognormal(0.0, spec.task_memory_spread, size=jobs)
    floor = spec.task_max / 64  # keeps every task a real request, not a rounding zero
    cpu = np.clip(cpu, floor, spec.task_max)
    memory = np.clip(memory, floor, spec.task_max)
    demand = np.empty((jobs, len(RESOURCES)), dtype=np.float64)
    demand[:, 0] = np.maximum(np.round(cpu * spec.cpus_per_unit, 2), 0.01)
    demand[:, 1] = np.maximum(np.round(memory * spec.memory_mb_per_unit), 1.0)
    demand[:, 2] = np.round(spec.task_disk_mb * rng.lognormal(0.0, 0.5, size=jobs))
    demand[:, 3] = np.round(spec.task_network_mbps * rng.lognormal(0.0, 0.5, size=jobs))
    return demand


def _task_order(order: str, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """int32[N]: the job (task class) of each task row."""
    if order == "jobs":
        arrival = rng.permutation(len(sizes))
        return np.repeat(arrival, sizes[arrival]).astype(np.int32)
    rows = np.repeat(np.arange(len(sizes)), sizes).astype(np.int32)
    return rng.permutation(rows)
