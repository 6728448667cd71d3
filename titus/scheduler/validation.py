"""Checks shared by the engine wrapper and the reference twin.

Every public scheduler call validates its whole batch here before any state changes, so a
rejected call leaves the scheduler exactly as it was, and both implementations raise the same
errors with the same messages. Errors name the object and the field:
``task 't7': cpus must be finite and >= 0, got nan``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real

import numpy as np

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.resources import BASE_RESOURCES
from titus.scheduler.model import Host, Task, TaskClass

BINPACKERS = {
    "cpu_binpack": ("cpus",),
    "memory_binpack": ("memory_mb",),
    "network_binpack": ("network_mbps",),
    "cpu_mem_binpack": ("cpus", "memory_mb"),
    "cpu_mem_network_binpack": ("cpus", "memory_mb", "network_mbps"),
}
# Hosts in use first (by their cpu/memory binpack value), empty hosts largest first: for clusters
# of mixed machine shapes, where a plain binpacker fills the smallest hosts first.
FEWEST_HOSTS = "cpu_mem_fewest_hosts"
# Slack under which a used amount counts as none (releases leave rounding residues).
IN_USE_EPS = 1e-9
FITNESS_NAMES = (tuple(BINPACKERS) + tuple(n.replace("_binpack", "_spread") for n in BINPACKERS)
                 + (FEWEST_HOSTS,))

# Slack when comparing sums of doubles against a capacity or a limit.
EPS = 1e-9


def number(value, field: str) -> float:
    """``value`` as a float that is finite and >= 0, else ValueError/TypeError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.integer, np.floating)):
        raise TypeError(f"{field} must be a number, got {type(value).__name__} {value!r}")
    f = float(value)
    if not math.isfinite(f) or f < 0:
        raise ValueError(f"{field} must be finite and >= 0, got {value!r}")
    return f


def count(value, field: str) -> int:
    """``value`` as a non-negative int, else ValueError/TypeError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)):
        raise TypeError(f"{field} must be an integer, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{field} must be >= 0, got {value!r}")
    return int(value)


def ident(value, field: str) -> str:
    """A non-empty string id."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    return value


def normalize_fitness(spec) -> tuple[tuple[str, float], ...]:
    """``"cpu_mem_binpack"`` or ``{"cpu_binpack": 2, "memory_spread": 1}`` -> ((name, w), ...)."""
    if isinstance(spec, str):
        spec = {spec: 1.0}
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"fitness must be a name or a non-empty {{name: weight}} mapping, got {spec!r}")
    pairs = []
    for name, weight in spec.items():
        if name not in FITNESS_NAMES:
            raise ValueError(f"fitness: unknown fitness {name!r}; known: {', '.join(FITNESS_NAMES)}")
        pairs.append((name, number(weight, f"fitness weight of {name!r}")))
    if sum(w for _, w in pairs) <= 0:
        raise ValueError("fitness: the weights must not all be 0")
    return tuple(pairs)


def check_weights(soft_weight, fitness_weight) -> tuple[float, float]:
    """The soft-constraint and fitness weights of the score blend."""
    ws = number(soft_weight, "soft_weight")
    wf = number(fitness_weight, "fitness_weight")
    if ws + wf <= 0:
        raise ValueError("soft_weight and fitness_weight must not both be 0")
    return ws, wf


def check_good_enough(value) -> float | None:
    """None, or a score threshold in [0, 1]."""
    if value is None:
        return None
    g = number(value, "good_enough")
    if g > 1:
        raise ValueError(f"good_enough must be in [0, 1], got {value!r}")
    return g


def check_seed(seed) -> int:
    """The tie-break seed: any int (taken modulo 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, (Integral, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    return int(seed) % (1 << 64)


def check_group_limits(limits) -> dict[str, dict[str, float]]:
    """``{"g1": {"cpus": 64, ...}}`` with known-looking resource names and valid quantities."""
    if limits is None:
        return {}
    if not isinstance(limits, Mapping):
        raise TypeError(f"group_limits must be a mapping of group -> {{resource: limit}}, got {limits!r}")
    out = {}
    for group, lim in limits.items():
        ident(group, "group_limits group name")
        if not isinstance(lim, Mapping):
            raise TypeError(f"group_limits[{group!r}] must be a mapping of resource -> limit")
        out[group] = {
            ident(r, f"group_limits[{group!r}] resource"): number(v, f"group_limits[{group!r}][{r!r}]")
            for r, v in lim.items()
        }
    return out


def check_constraint(c, where: str) -> None:
    """One constraint object: a known kind, well formed."""
    if isinstance(c, HostAttrValue):
        ident(c.attr, f"{where}: HostAttrValue.attr")
        if not c.values:
            raise ValueError(f"{where}: HostAttrValue({c.attr!r}) needs a value or values")
        for v in c.values:
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                raise TypeError(f"{where}: HostAttrValue value must be a string, got {v!r}")
    elif isinstance(c, UniqueHostAttr):
        ident(c.attr, f"{where}: UniqueHostAttr.attr")
    elif isinstance(c, ExclusiveHost):
        pass
    elif isinstance(c, BalancedHostAttr):
        ident(c.attr, f"{where}: BalancedHostAttr.attr")
        if isinstance(c.expected_values, bool) or not isinstance(c.expected_values, (Integral, np.integer)):
            raise TypeError(f"{where}: BalancedHostAttr.expected_values must be an integer")
        if c.expected_values < 1:
            raise ValueError(f"{where}: BalancedHostAttr.expected_values must be >= 1, got {c.expected_values}")
    else:
        raise TypeError(f"{where}: not a constraint: {c!r} (use titus.constraints)")


def check_constraints(constraints, where: str) -> None:
    """A sequence of constraints (hard or soft)."""
    if isinstance(constraints, (str, bytes)) or not isinstance(constraints, Iterable):
        raise TypeError(f"{where} must be a list of constraints, got {constraints!r}")
    for c in constraints:
        check_constraint(c, where)


def _check_scalars(scalars, where: str) -> None:
    if not isinstance(scalars, Mapping):
        raise TypeError(f"{where}.scalars must be a mapping of name -> quantity")
    for name, q in scalars.items():
        ident(name, f"{where}: scalar name")
        if name in BASE_RESOURCES:
            raise ValueError(f"{where}: scalar {name!r} clashes with a base resource")
        number(q, f"{where}: {name}")


def check_host(h, where: str) -> None:
    """One host: id, quantities, port ranges, resource sets, attributes."""
    if not isinstance(h, Host):
        raise TypeError(f"{where}: expected a Host, got {type(h).__name__}")
    for r in BASE_RESOURCES:
        number(getattr(h, r), f"{where}: {r}")
    _check_scalars(h.scalars, where)
    for rng in h.ports:
        if (not isinstance(rng, Sequence) or len(rng) != 2
                or not all(isinstance(p, (Integral, np.integer)) and not isinstance(p, bool) for p in rng)):
            raise TypeError(f"{where}: ports must be (lo, hi) integer pairs, got {rng!r}")
        lo, hi = int(rng[0]), int(rng[1])
        if not 0 <= lo <= hi <= 65535:
            raise ValueError(f"{where}: port range {rng!r} must have 0 <= lo <= hi <= 65535")
    if not isinstance(h.resource_sets, Mapping):
        raise TypeError(f"{where}.resource_sets must be a mapping of name -> (sets, slots)")
    for name, shape in h.resource_sets.items():
        ident(name, f"{where}: resource set name")
        if not isinstance(shape, Sequence) or len(shape) != 2:
            raise TypeError(f"{where}: resource set {name!r} must be (sets, slots)")
        for part, v in zip(("sets", "slots"), shape):
            if count(v, f"{where}: resource set {name!r} {part}") < 1:
                raise ValueError(f"{where}: resource set {name!r} {part} must be >= 1")
    if not isinstance(h.attributes, Mapping):
        raise TypeError(f"{where}.attributes must be a mapping of name -> value")
    for k in h.attributes:
        ident(k, f"{where}: attribute name")


def _plain_quantity(x) -> bool:
    """True for a plain int/float that is finite and >= 0 (the common case, checked cheaply)."""
    return (type(x) is float or type(x) is int) and 0 <= x < math.inf


def _plain_host(h) -> bool:
    """A host that is obviously valid: only a host failing this takes the full check."""
    return (type(h) is Host and type(h.id) is str and h.id != ""
            and _plain_quantity(h.cpus) and _plain_quantity(h.memory_mb)
            and _plain_quantity(h.disk_mb) and _plain_quantity(h.network_mbps)
            and not h.scalars and not h.resource_sets
            and all(type(r) is tuple and len(r) == 2 and type(r[0]) is int and type(r[1]) is int
                    and 0 <= r[0] <= r[1] <= 65535 for r in h.ports)
            and type(h.attributes) is dict
            and all(type(k) is str and k for k in h.attributes))


def _check_batch(items, known_ids, plain, check_one, kind: str) -> list:
    """Each item valid (``plain`` first, the full ``check_one`` only when it says no) and its
    id unique in the batch and not in ``known_ids``."""
    items = list(items)
    seen = set()
    for x in items:
        if not plain(x):
            check_one(x, f"{kind} {getattr(x, 'id', x)!r}")
            ident(x.id, f"{kind} id")
        if x.id in seen or x.id in known_ids:
            raise ValueError(f"duplicate {kind} id {x.id!r}")
        seen.add(x.id)
    return items


def check_hosts(hosts, known_ids) -> list:
    """A batch of hosts: each valid, ids unique in the batch and not already known."""
    return _check_batch(hosts, known_ids, _plain_host, check_host, "host")


def _check_demand_shape(t, where: str) -> None:
    """What a Task and a TaskClass share: job, group, constraints, ports, resource sets."""
    for f in ("job", "group"):
        v = getattr(t, f)
        if v is not None:
            ident(v, f"{where}: {f}")
    check_constraints(t.hard, f"{where}: hard")
    check_constraints(t.soft, f"{where}: soft")
    count(t.ports, f"{where}: ports")
    if not isinstance(t.resource_sets, Mapping):
        raise TypeError(f"{where}.resource_sets must be a mapping of name -> label")
    for name, label in t.resource_sets.items():
        ident(name, f"{where}: resource set name")
        ident(label, f"{where}: resource set {name!r} label")


def check_task(t, where: str) -> None:
    """One task: quantities, constraints, ports, resource sets."""
    if not isinstance(t, Task):
        raise TypeError(f"{where}: expected a Task, got {type(t).__name__}")
    for r in BASE_RESOURCES:
        number(getattr(t, r), f"{where}: {r}")
    _check_scalars(t.scalars, where)
    _check_demand_shape(t, where)


# Constraints already checked: they are frozen, hashable values, so a check holds forever.
_VALID_CONSTRAINTS: dict = {}


def _plain_constraints(cs) -> bool:
    if type(cs) is not list and type(cs) is not tuple:
        return False
    for c in cs:
        # Equal values of other types (1 == 1.0 == True) must not share a verdict.
        key = (type(c), c, tuple(map(type, c.values)) if type(c) is HostAttrValue
               else type(getattr(c, "expected_values", None)))
        try:
            if key not in _VALID_CONSTRAINTS:
                check_constraint(c, "constraint")
                if len(_VALID_CONSTRAINTS) < 100_000:
                    _VALID_CONSTRAINTS[key] = True
        except (TypeError, ValueError, AttributeError):
            return False
    return True


def _plain_name(x) -> bool:
    return x is None or (type(x) is str and x != "")


def _plain_task(t) -> bool:
    """A task that is obviously valid: only a task failing this takes the full check."""
    return (type(t) is Task and type(t.id) is str and t.id != ""
            and _plain_quantity(t.cpus) and _plain_quantity(t.memory_mb)
            and _plain_quantity(t.disk_mb) and _plain_quantity(t.network_mbps)
            and type(t.ports) is int and t.ports >= 0
            and not t.scalars and not t.resource_sets
            and _plain_name(t.job) and _plain_name(t.group)
            and _plain_constraints(t.hard) and _plain_constraints(t.soft))


def check_tasks(tasks, held_ids) -> list:
    """A batch of tasks: each valid, ids unique in the batch and not already held."""
    return _check_batch(tasks, held_ids, _plain_task, check_task, "task")


def check_running_ports(task, ports) -> list[int]:
    """The exact ports ``add_running`` is told a running task holds: distinct, ``task.ports`` many."""
    ports = [count(p, f"add_running: task {task.id!r} port") for p in ports]
    if len(ports) != task.ports:
        raise ValueError(f"add_running: task {task.id!r}: ports names {len(ports)} ports, "
                         f"the task asks for {task.ports}")
    if len(set(ports)) != len(ports):
        raise ValueError(f"add_running: task {task.id!r}: duplicate ports {ports}")
    return ports


def check_classes(classes) -> list:
    """The task classes of ``schedule_arrays``."""
    classes = list(classes)
    for i, c in enumerate(classes):
        if not isinstance(c, TaskClass):
            raise TypeError(f"classes[{i}]: expected a TaskClass, got {type(c).__name__}")
        _check_demand_shape(c, f"classes[{i}]")
    return classes


def check_arrays(demand, task_class, classes, resources: Sequence[str], task_ids=None, held_ids=()):
    """Validate the array API's inputs; returns (demand float64 C-contiguous, task_class int32)."""
    classes = check_classes(classes)
    d = np.asarray(demand)
    if d.dtype == object or not (np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer)):
        raise TypeError(f"demand must be a numeric array, got dtype {d.dtype}")
    if d.ndim != 2 or d.shape[1] != len(resources):
        raise ValueError(
            f"demand must have shape (N, {len(resources)}) with columns {tuple(resources)}, got {d.shape}")
    d = np.ascontiguousarray(d, dtype=np.float64)
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise ValueError(f"demand[{row}, {col}] ({resources[col]}) must be finite and >= 0, got {d[row, col]!r}")
    tc = np.asarray(task_class)
    if not np.issubdtype(tc.dtype, np.integer):
        raise TypeError(f"task_class must be an integer array, got dtype {tc.dtype}")
    if tc.ndim != 1 or tc.shape[0] != d.shape[0]:
        raise ValueError(f"task_class must have shape ({d.shape[0]},), got {tc.shape}")
    if tc.size and (tc.min() < 0 or tc.max() >= len(classes)):
        row = int(np.argmax((tc < 0) | (tc >= len(classes))))
        raise ValueError(f"task_class[{row}] = {int(tc[row])} is not an index into {len(classes)} classes")
    tc = np.ascontiguousarray(tc, dtype=np.int32)
    if task_ids is not None:
        task_ids = list(task_ids)
        if len(task_ids) != d.shape[0]:
            raise ValueError(f"task_ids must have {d.shape[0]} entries, got {len(task_ids)}")
        seen = set()
        for tid in task_ids:
            ident(tid, "task id")
            if tid in seen or tid in held_ids:
                raise ValueError(f"duplicate task id {tid!r}")
            seen.add(tid)
    return d, tc, classes, task_ids
