"""Plain data the scheduler reads: hosts, tasks, task classes and results.

These objects are never changed by the scheduler (it keeps its own state). They do no checking
on construction: a scheduler call validates a whole batch before changing anything, and names
the bad field in its error (see ``docs/semantics.md``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence


@dataclass(frozen=True)
class Host:
    """A machine tasks can be placed on.

    ``ports`` are inclusive ``(lo, hi)`` ranges; ``scalars`` named countable resources such as
    ``{"gpu": 4}``; ``resource_sets`` maps a name to ``(sets, slots)``, e.g. ``{"eni": (4, 8)}``
    for 4 ENIs of 8 IPs each; ``attributes`` are string labels such as ``{"zone": "a"}``.
    """

    id: str
    cpus: float = 0.0
    memory_mb: float = 0.0
    disk_mb: float = 0.0
    network_mbps: float = 0.0
    ports: Sequence[tuple[int, int]] = ()
    scalars: Mapping[str, float] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)
    resource_sets: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One unit of work to place.

    ``ports`` is how many ports it needs; ``resource_sets`` maps a set name to the label the task
    wants (``{"eni": "sg-1"}``); ``job`` makes tasks co-tasks for constraints; ``group`` is the
    name used by ``group_limits``; ``hard``/``soft`` are lists of constraints.

    ``gang`` names a gang: the tasks of one ``schedule`` call with the same gang are placed all
    together or none (each fails with reason ``gang``). ``priority`` (an int in -2**31..2**31-1,
    higher wins, default 0) matters with ``schedule(..., preempt=True)``: a task that fits
    nowhere may evict held tasks of strictly lower priority (docs/semantics.md, "Preemption").
    """

    id: str
    cpus: float = 0.0
    memory_mb: float = 0.0
    disk_mb: float = 0.0
    network_mbps: float = 0.0
    ports: int = 0
    scalars: Mapping[str, float] = field(default_factory=dict)
    job: str | None = None
    group: str | None = None
    hard: Sequence = ()
    soft: Sequence = ()
    resource_sets: Mapping[str, str] = field(default_factory=dict)
    gang: str | None = None
    priority: int = 0


@dataclass(frozen=True)
class TaskClass:
    """What the rows of ``schedule_arrays`` share: job, group, constraints, ports, resource sets,
    priority. ``gang=True``: all rows of this class in one call form one gang (placed all
    together or none)."""

    job: str | None = None
    group: str | None = None
    hard: Sequence = ()
    soft: Sequence = ()
    ports: int = 0
    resource_sets: Mapping[str, str] = field(default_factory=dict)
    gang: bool = False
    priority: int = 0


@dataclass(frozen=True)
class Failure:
    """Why a task was not placed: ``counts`` maps a reason to how many hosts it rejected."""

    counts: dict[str, int]
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Result:
    """The outcome of ``Scheduler.schedule``.

    ``assignments`` task id -> host id; ``ports`` task id -> ports given (tasks that asked);
    ``resource_sets`` task id -> {set name: set index}; ``failures`` task id -> Failure;
    ``preemptions`` preemptor id -> ids of the held tasks it evicted, oldest held first (only
    with ``preempt=True``; a victim held without an id, an unnamed array row, shows as None).
    """

    assignments: dict[str, str] = field(default_factory=dict)
    ports: dict[str, list[int]] = field(default_factory=dict)
    resource_sets: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    preemptions: dict[str, list] = field(default_factory=dict)
