"""Small helpers shared by the scheduler tests: tie keys, state snapshots, result summaries."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from titus.scheduler.model import Host

MASK64 = (1 << 64) - 1


class LyingStr(str):
    """Equal to its characters, but its ``__str__`` says something else."""

    def __str__(self):
        return "b"


class LyingInt(int):
    """Equal to its value, but its ``__str__`` (and repr) says something else."""

    def __str__(self):
        return "2"

    __repr__ = __str__


class IntSaysFive(int):
    """Its value for ``int.__index__``, but ``int()`` and ``operator.index()`` say 5."""

    def __int__(self):
        return 5

    def __index__(self):
        return 5


class NpSaysFive(np.int64):
    """A numpy integer whose ``int()``, ``index()`` and ``item()`` say 5."""

    def __int__(self):
        return 5

    def __index__(self):
        return 5

    def item(self, *args):
        return 5


class OtherIntegral:
    """A ``numbers.Integral`` that is no int nor numpy integer, ordered and equal by its value."""

    def __init__(self, n):
        self.n = n

    def __int__(self):
        return self.n

    __index__ = __int__

    def __le__(self, other):
        return self.n <= other

    def __ge__(self, other):
        return self.n >= other

    def __lt__(self, other):
        return self.n < other

    def __gt__(self, other):
        return self.n > other

    def __eq__(self, other):
        return self.n == other

    def __hash__(self):
        return hash(self.n)


numbers.Integral.register(OtherIntegral)


def splitmix64(x: int) -> int:
    """One splitmix64 step, as docs/semantics.md defines it."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def fnv1a64(text: str) -> int:
    """FNV-1a 64-bit hash of the UTF-8 bytes of ``text``."""
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & MASK64
    return h


def tiekey(host_id: str, seed: int) -> int:
    """The tie-break key of a host: lower wins among equal scores."""
    return splitmix64(fnv1a64(host_id) ^ splitmix64(seed & MASK64))


def by_tiekey(host_ids, seed: int) -> list[str]:
    """Host ids ordered by tie key (the order a good_enough scan visits them)."""
    return sorted(host_ids, key=lambda h: tiekey(h, seed))


def score(soft: float, fit: float, soft_weight: float = 0.5, fitness_weight: float = 0.35) -> float:
    """A host's score from its mean soft score and its fitness (Fenzo's default weights)."""
    return (soft_weight * soft + fitness_weight * fit) / (soft_weight + fitness_weight)


def plain(value):
    """Turn numpy arrays, tuples, sets and mappings into comparable plain lists and dicts."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def snapshot(scheduler) -> dict:
    """Everything a read-only look at the scheduler shows: hosts, held tasks, usage per host."""
    host_ids = list(scheduler.host_ids)
    live = [h for h in host_ids if h is not None]
    return {
        "resources": list(scheduler.resources),
        "host_ids": host_ids,
        "held": plain(scheduler.held_tasks()),
        "task_hosts": {t: scheduler.task_host(t) for t in held_ids(scheduler)},
        "usage": {h: plain(scheduler.host_usage(h)) for h in live},
        "free": {h: plain(scheduler.host_free(h)) for h in live},
    }


def held_ids(scheduler) -> list[str]:
    """Ids of the tasks the scheduler holds, sorted (held_tasks() may be a mapping or a list)."""
    held = scheduler.held_tasks()
    return sorted(held.keys() if isinstance(held, Mapping) else held)


def summary(result) -> dict:
    """A Result as plain data, for equality between implementations or runs."""
    return {
        "assignments": dict(result.assignments),
        "ports": {t: list(p) for t, p in result.ports.items()},
        "resource_sets": {t: dict(s) for t, s in result.resource_sets.items()},
        "failures": {t: (dict(f.counts), f.message) for t, f in result.failures.items()},
        "preemptions": {t: list(v) for t, v in getattr(result, "preemptions", {}).items()},
    }


def zone_hosts(zones, per_zone: int = 1, prefix: str = "h", **resources) -> list[Host]:
    """Identical hosts, ``per_zone`` in each zone, ids ``h-a-0``, ``h-a-1``, ``h-b-0``, ..."""
    resources.setdefault("cpus", 16)
    resources.setdefault("memory_mb", 65536)
    return [
        Host(f"{prefix}-{zone}-{i}", attributes={"zone": zone}, **resources)
        for zone in zones
        for i in range(per_zone)
    ]


def zone_of(host_id: str) -> str:
    """The zone encoded in a host id made by ``zone_hosts``."""
    return host_id.split("-")[1]


def scheduler_state(s) -> tuple:
    """What a refused call must leave as it was: resources, host ids, every live host's usage
    and the held tasks."""
    return (s.resources, s.host_ids, {h: s.host_usage(h) for h in s.host_ids if h is not None}, s.held_tasks())


def assert_within_capacity(s) -> None:
    """Every live host's usage finite and within its capacity (free >= 0 up to rounding)."""
    for h in s.host_ids:
        if h is None:
            continue
        used, free = s.host_usage(h), s.host_free(h)
        for r, u in used.items():
            assert math.isfinite(u) and math.isfinite(free[r]) and free[r] >= -1e-6, (h, r, used, free)
