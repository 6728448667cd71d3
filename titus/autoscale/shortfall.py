"""Shortfall by trial placement: how many new hosts of each group the unplaced tasks need.

The unplaced tasks are placed, with the real scheduling engine, in a fresh ``Scheduler`` that holds
the empty hosts a group already has (idle or still booting) and *pseudo hosts* of each group's
instance type, carrying the group's attributes and zones. Every constraint and the fitness
function act as they would on real hosts, so scale-up asks for what is needed: 32 one-cpu tasks
on a group of 4-cpu hosts with 2 hosts idle asks for 6 more hosts, not 32.

The pipeline, built to evaluate 100,000 tasks against 10 groups quickly:

1. **equivalence classes**: rows with the same task class and demand are one class with a count;
2. **feasibility**: each class is checked against each (group, zone) with numpy and the class's
   hard constraints; tasks no group could ever run are counted as ``unplaceable``, not asked for;
3. **bundling**: identical tasks whose constraints do not depend on co-tasks are placed in bundles
   of ``b`` (``b`` divides how many fit on every host of a group that can take them, so bundling
   never wastes room on a host of a single class);
4. **preference**: one task of each class placed alone on an all-empty cluster tells which
   (group, zone) the scheduler prefers for it, which sizes the pseudo hosts offered;
5. **trial placement** (``titus.autoscale.trial``) with ``schedule_arrays``, on the groups' empty
   hosts first, then in chunks on pseudo hosts, removing hosts no remaining task can fit so the
   cost grows with the tasks, not with tasks x hosts; never beyond a group's headroom.

Not modelled: co-tasks already running elsewhere (a ``UniqueHostAttr`` job sees only its unplaced
tasks) and resource sets (instance types declare none).
"""
from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from titus.autoscale.groups import InstanceGroup
from titus.autoscale.trial import Trial
from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr
from titus.resources import BASE_RESOURCES, PLATFORM_RESOURCES
from titus.scheduler.factory import make_scheduler
from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.validation import EPS

#: The resources every instance type offers, in the trial scheduler's column order (the
#: engine's base columns, then ``gpu``, the one scalar every pseudo host declares).
RESOURCES = PLATFORM_RESOURCES
#: Ports a host offers (the agent's default range).
HOST_PORTS = ((31000, 31999),)
#: Classes whose preferred group is asked of the scheduler itself (the rest are estimated).
PROBE_LIMIT = 1000
#: A bundle is at most this fraction of the hosts it may land on.
BUNDLE_DIVISOR = 4


@dataclass(frozen=True)
class GroupCapacity:
    """What the evaluator may use of one group.

    ``empty_by_zone``: hosts the group already has that hold nothing (idle, or booting and not yet
    registered; a booting host's zone may be a best guess). ``headroom``: the most hosts the group
    may still add (``max_size`` minus its current size).
    """

    group: InstanceGroup
    empty_by_zone: Mapping[str, int] = field(default_factory=dict)
    headroom: int = 0


@dataclass(frozen=True)
class UnplacedArrays:
    """Unplaced tasks in the array form of ``Scheduler.schedule_arrays``.

    ``demand[i]`` is row ``i``'s demand with columns named by ``resources``; ``task_class[i]``
    indexes ``classes``.
    """

    demand: np.ndarray
    task_class: np.ndarray
    classes: Sequence[TaskClass]
    resources: Sequence[str] = BASE_RESOURCES

    def __len__(self) -> int:
        return int(self.demand.shape[0])

    @classmethod
    def from_tasks(cls, tasks: Sequence[Task]) -> "UnplacedArrays":
        """Arrays for ``Task`` objects (tasks sharing job, group, constraints and ports share a class)."""
        resources = list(BASE_RESOURCES)
        for t in tasks:
            for name in t.scalars:
                if name not in resources:
                    resources.append(name)
        demand = np.zeros((len(tasks), len(resources)), dtype=np.float64)
        task_class = np.zeros(len(tasks), dtype=np.int32)
        index: dict[tuple, int] = {}
        classes: list[TaskClass] = []
        for i, t in enumerate(tasks):
            row = [getattr(t, r) for r in BASE_RESOURCES]
            row += [float(t.scalars.get(r, 0.0)) for r in resources[len(BASE_RESOURCES):]]
            demand[i] = row
            key = (t.job, t.group, tuple(t.hard), tuple(t.soft), int(t.ports),
                   tuple(sorted(t.resource_sets.items())))
            if key not in index:
                index[key] = len(classes)
                classes.append(TaskClass(job=t.job, group=t.group, hard=tuple(t.hard),
                                         soft=tuple(t.soft), ports=int(t.ports),
                                         resource_sets=dict(t.resource_sets)))
            task_class[i] = index[key]
        return cls(demand, task_class, classes, tuple(resources))


@dataclass
class Shortfall:
    """The outcome of a trial placement.

    ``new_hosts``: hosts to add per group; ``used_empty``: empty hosts the group already has that
    the trial filled; ``tasks``: tasks the trial put on each group; ``unplaceable``: tasks that
    fit no group even on an empty host; ``capped``: tasks that fit a group but still found no
    place (the groups are at their maximum size, or constraints among the tasks themselves hold
    them back, e.g. more tasks than zones under ``UniqueHostAttr("zone")``); ``new_by_zone``:
    the new hosts per group and zone.
    """

    new_hosts: dict[str, int] = field(default_factory=dict)
    used_empty: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    unplaceable: int = 0
    capped: int = 0
    new_by_zone: dict[str, dict[str, int]] = field(default_factory=dict)

    def needs(self, group: str) -> bool:
        """Whether the unplaced tasks want any capacity of ``group`` (so it must not shrink)."""
        return self.tasks.get(group, 0) > 0 or self.new_hosts.get(group, 0) > 0


def default_scheduler_factory():
    """A fresh scheduler for a trial: the compiled engine, ``cpu_mem_binpack``, seed 0.

    Every trial builds its own scheduler, so the master's engine is never touched; and the
    compiled engine is always present (``titus`` does not import without it). The reference
    twin would place identically, only far slower on 100,000-task backlogs, so it is not used.
    """
    return make_scheduler("native", fitness="cpu_mem_binpack", seed=0)


@dataclass
class _Slot:
    """One (group, zone) of the trial: its empty real hosts and how many hosts the group may add."""

    group: InstanceGroup
    zone: str
    empty: int
    headroom: int


class ShortfallEvaluator:
    """Computes a :class:`Shortfall` by trial placement (see the module docstring)."""

    def __init__(self, scheduler_factory: Optional[Callable[[], object]] = None):
        self._factory = scheduler_factory or default_scheduler_factory
        self._memo: tuple = (None, None)  # (inputs, result) of the last evaluation

    def evaluate(self, capacities: Sequence[GroupCapacity],
                 unplaced: UnplacedArrays | Sequence[Task]) -> Shortfall:
        """Place ``unplaced`` on the groups' empty and pseudo hosts; count what each group needs."""
        if not isinstance(unplaced, UnplacedArrays):
            unplaced = UnplacedArrays.from_tasks(list(unplaced))
        result = Shortfall()
        slots = [
            _Slot(c.group, z, int(c.empty_by_zone.get(z, 0)), max(0, int(c.headroom)))
            for c in capacities if c.group.accepts_tasks for z in c.group.zones
        ]
        if len(unplaced) == 0:
            return result
        demand, extra_ok = _standard_demand(unplaced)
        keys, counts, _ = _equivalence_classes(demand, np.asarray(unplaced.task_class), extra_ok)
        feasible = _feasibility(keys, unplaced.classes, slots)  # [classes, slots] bool
        fits_somewhere = feasible.any(axis=1)
        result.unplaceable = int(len(unplaced) - counts[fits_somewhere].sum())
        live = np.flatnonzero(fits_somewhere)
        if live.size == 0 or not slots:
            return result
        # The same backlog against the same groups (a common case between two steps): same answer.
        inputs = (repr([(s.group, s.zone, s.empty, s.headroom) for s in slots]), keys.tobytes(),
                  counts.tobytes(), repr([unplaced.classes[int(c)] for c in np.unique(keys[:, 0]) if c >= 0]))
        if self._memo[0] == inputs:
            return copy.deepcopy(self._memo[1])
        result = self._place(keys, counts, live, feasible, unplaced.classes, slots, result)
        self._memo = (inputs, copy.deepcopy(result))
        return result

    def _place(self, keys, counts, live, feasible, classes, slots, result: Shortfall) -> Shortfall:
        """Bundles, preferences and the trial itself; fills ``result``."""
        bundles = _bundle_sizes(keys, classes, feasible, slots)
        keys, counts, bundles, feasible = keys[live], counts[live], bundles[live], feasible[live]
        preferred = self._preferred_slots(keys, counts, classes, feasible, slots)
        d, tc, cls, weight, row_key = _rows(keys, counts, bundles, classes)
        order = _largest_first(d)
        capacity = np.array([[s.group.instance_type.resources()[r] for r in RESOURCES] for s in slots])
        trial = Trial(self._factory(), slots, _host, capacity)
        outcome = trial.run(d[order], tc[order], cls, weight[order], row_key[order], preferred, feasible)
        if trial.ids and trial.sched.resources != RESOURCES:
            raise RuntimeError(f"trial scheduler resources {trial.sched.resources!r} != {RESOURCES!r}")
        result.capped = outcome.left
        per_group_new: dict[str, int] = defaultdict(int)
        for i, s in enumerate(slots):
            per_group_new[s.group.name] += int(outcome.used_pseudo[i])
            if outcome.used_pseudo[i]:
                result.new_by_zone.setdefault(s.group.name, {})[s.zone] = int(outcome.used_pseudo[i])
            if outcome.used_empty[i]:
                result.used_empty[s.group.name] = result.used_empty.get(s.group.name, 0) + int(outcome.used_empty[i])
            if outcome.tasks_on[i]:
                result.tasks[s.group.name] = result.tasks.get(s.group.name, 0) + int(outcome.tasks_on[i])
        headroom = {s.group.name: s.headroom for s in slots}
        for name, n in per_group_new.items():
            if n > 0:
                result.new_hosts[name] = min(n, headroom[name])
        return result

    # ------------------------------------------------------------------ steps
    def _preferred_slots(self, keys, counts, classes, feasible, slots) -> np.ndarray:
        """For each class, the slot the scheduler picks for one task on an all-empty cluster.

        Only the ``PROBE_LIMIT`` most numerous classes are asked; the others (and any the probe
        cannot place) get the feasible slot they would fill the most, the bin-packers' usual pick.
        """
        sched = self._factory()
        sched.add_hosts([_host(s, f"probe-{i}") for i, s in enumerate(slots)])
        index = {host_id: i for i, host_id in enumerate(sched.host_ids)}
        preferred = _fullest_slot(keys, feasible, slots)
        for k in np.argsort(-counts, kind="stable")[:PROBE_LIMIT]:
            # One task per call, released after, so every class sees the same empty hosts.
            probe = _probe_task(f"probe-task-{k}", keys[k], classes[int(keys[k, 0])])
            placed = sched.schedule([probe]).assignments.get(probe.id)
            if placed is not None:
                preferred[k] = index[placed]
                sched.release(probe.id)
        return preferred


# ---------------------------------------------------------------------- helpers
def _host(slot: _Slot, host_id: str) -> Host:
    t = slot.group.instance_type
    return Host(host_id, cpus=t.cpus, memory_mb=t.memory_mb, disk_mb=t.disk_mb,
                network_mbps=t.network_mbps, ports=HOST_PORTS, scalars={"gpu": t.gpu},
                attributes=slot.group.host_attributes(slot.zone))


def _fullest_slot(keys, feasible, slots) -> np.ndarray:
    """For each class, the feasible slot one task would fill the most (mean of cpu and memory)."""
    caps = np.array([[s.group.instance_type.resources()[r] for r in RESOURCES[:2]] for s in slots])
    fill = (keys[:, None, 1:3] / caps[None, :, :]).mean(axis=2)
    return np.where(feasible, fill, -np.inf).argmax(axis=1).astype(np.int64)


def _probe_task(task_id: str, key: np.ndarray, c: TaskClass) -> Task:
    """A task of class ``c`` with the demand in ``key`` (class id first, then ``RESOURCES``)."""
    cpus, memory_mb, disk_mb, network_mbps, gpu = (float(x) for x in key[1:])
    return Task(task_id, cpus=cpus, memory_mb=memory_mb, disk_mb=disk_mb, network_mbps=network_mbps,
                ports=int(c.ports), scalars={"gpu": gpu} if gpu else {}, job=c.job, group=c.group,
                hard=tuple(c.hard), soft=tuple(c.soft), resource_sets=dict(c.resource_sets))


def _standard_demand(unplaced: UnplacedArrays) -> tuple[np.ndarray, np.ndarray]:
    """Demand in ``RESOURCES`` columns, and a mask of rows asking for nothing else."""
    src = np.asarray(unplaced.demand, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != len(unplaced.resources):
        raise ValueError(f"demand: expected {len(unplaced.resources)} columns, got shape {src.shape}")
    if len(unplaced.task_class) != src.shape[0]:
        raise ValueError("task_class: must have one entry per demand row")
    out = np.zeros((src.shape[0], len(RESOURCES)), dtype=np.float64)
    ok = np.ones(src.shape[0], dtype=bool)
    for j, name in enumerate(unplaced.resources):
        if name in RESOURCES:
            out[:, RESOURCES.index(name)] = src[:, j]
        else:
            ok &= src[:, j] <= 0  # no instance type offers this resource
    return out, ok


def _equivalence_classes(demand, task_class, extra_ok):
    """Unique (class, demand) rows: keys [K, 1+R] (class id first), counts [K], row -> key."""
    table = np.column_stack([task_class.astype(np.float64), demand])
    # Rows asking for a resource nobody offers get class -1: they never fit.
    table[~extra_ok, 0] = -1
    keys, inverse, counts = np.unique(table, axis=0, return_inverse=True, return_counts=True)
    return keys, counts, inverse


def _class_fits_slot(c: TaskClass, slot: _Slot) -> bool:
    """Whether a task of class ``c`` could ever run on an empty host of ``slot``."""
    if c.resource_sets:
        return False
    if c.ports > HOST_PORTS[0][1] - HOST_PORTS[0][0] + 1:
        return False
    attrs = slot.group.host_attributes(slot.zone)
    for con in c.hard:
        if isinstance(con, HostAttrValue):
            if con.attr == "hostname" or attrs.get(con.attr) not in con.values:
                return False
        elif isinstance(con, (UniqueHostAttr, BalancedHostAttr)):
            if con.attr != "hostname" and con.attr not in attrs:
                return False
    return True


def _feasibility(keys, classes, slots) -> np.ndarray:
    """[K, S]: class k fits an empty host of slot s (resources and static constraints)."""
    if not slots:
        return np.zeros((len(keys), 0), dtype=bool)
    caps = np.array([[s.group.instance_type.resources()[r] for r in RESOURCES] for s in slots])
    fits = np.all(keys[:, None, 1:] <= caps[None, :, :] + EPS, axis=2)  # the engine's fit test
    fits &= (keys[:, 0] >= 0)[:, None]
    by_class: dict[int, np.ndarray] = {}
    for k in range(len(keys)):
        cid = int(keys[k, 0])
        if cid < 0:
            continue
        if cid not in by_class:
            by_class[cid] = np.array([_class_fits_slot(classes[cid], s) for s in slots], dtype=bool)
        fits[k] &= by_class[cid]
    return fits


def _co_task_free(c: TaskClass) -> bool:
    """Whether tasks of ``c`` are interchangeable and independent (safe to bundle)."""
    return not c.resource_sets and all(isinstance(x, HostAttrValue) for x in (*c.hard, *c.soft))


def _per_host(keys, classes, caps) -> np.ndarray:
    """[K, S]: how many tasks of class k fit one empty host with capacities ``caps[s]``."""
    demand = keys[:, None, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(demand > 0, np.floor(caps[None, :, :] / np.where(demand > 0, demand, 1) + 1e-9), np.inf)
    fit = ratio.min(axis=2)
    ports = np.array([classes[int(c)].ports if c >= 0 else 0 for c in keys[:, 0]], dtype=np.float64)
    span = HOST_PORTS[0][1] - HOST_PORTS[0][0] + 1
    by_ports = np.where(ports > 0, np.floor(span / np.where(ports > 0, ports, 1)), np.inf)
    fit = np.minimum(fit, by_ports[:, None])
    return np.where(np.isfinite(fit), fit, 1_000_000).astype(np.int64)


def _bundle_sizes(keys, classes, feasible, slots) -> np.ndarray:
    """Tasks per bundle for each class (1 when bundling could change where tasks go).

    A bundle is the largest ``b`` that divides how many tasks fit every host the class may use
    and is at most a ``1 / BUNDLE_DIVISOR`` of the smallest of those.
    """
    sizes = np.ones(len(keys), dtype=np.int64)
    caps = np.array([[s.group.instance_type.resources()[r] for r in RESOURCES] for s in slots])
    per_host = _per_host(keys, classes, caps)
    free = {}
    for k in range(len(keys)):
        cid = int(keys[k, 0])
        if cid < 0 or not feasible[k].any():
            continue
        if cid not in free:
            free[cid] = _co_task_free(classes[cid])
        if not free[cid]:
            continue
        fits = per_host[k, feasible[k]]
        common = int(np.gcd.reduce(fits))
        limit = max(1, int(fits.min()) // BUNDLE_DIVISOR)
        sizes[k] = max((x for x in range(1, limit + 1) if common % x == 0), default=1)
    return sizes


def _rows(keys, counts, bundles, classes):
    """Trial rows in ``RESOURCES`` columns: each class as bundles of ``b`` tasks plus a remainder.

    Returns demand, class index per row, the bundle classes, tasks per row and key per row.
    """
    bundle_classes: list[TaskClass] = []
    class_index: dict[tuple[int, int], int] = {}
    parts = []
    for k in range(len(keys)):
        cid, b, n = int(keys[k, 0]), int(bundles[k]), int(counts[k])
        base = classes[cid]
        for size, repeat in ((b, n // b), (n % b, 1 if n % b else 0)):
            if repeat == 0 or size == 0:
                continue
            if (cid, size) not in class_index:
                class_index[(cid, size)] = len(bundle_classes)
                bundle_classes.append(TaskClass(job=base.job, group=base.group, hard=tuple(base.hard),
                                                soft=tuple(base.soft), ports=int(base.ports) * size,
                                                resource_sets=dict(base.resource_sets)))
            parts.append((k, repeat, size, class_index[(cid, size)]))
    repeats = np.array([p[1] for p in parts], dtype=np.int64)
    row_key = np.repeat(np.array([p[0] for p in parts], dtype=np.int64), repeats)
    size = np.repeat(np.array([p[2] for p in parts], dtype=np.float64), repeats)
    tc = np.repeat(np.array([p[3] for p in parts], dtype=np.int32), repeats)
    d = np.ascontiguousarray(keys[row_key, 1:] * size[:, None])
    return d, tc, bundle_classes, size, row_key


def _largest_first(d: np.ndarray) -> np.ndarray:
    """Row order for the trial: biggest first (fewer hosts end up half-used), stable."""
    return np.lexsort((-d[:, 1], -d[:, 0]))
