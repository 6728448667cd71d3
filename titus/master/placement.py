"""One engine call for a batch of waiting tasks, on the engine's throughput path.

Tasks of one job share demand and constraints, so each job is one ``TaskClass`` and the batch
crosses into the engine as a demand matrix (``schedule_arrays``), with no Python work per
task inside the engine. The array path returns no failure reasons, so for each job with
unplaced tasks one of them is offered again through ``schedule`` to learn why; its
message is given to the job's other waiting tasks of this round. Tasks needing a resource
the engine has never heard of (a scalar no host offers) go through ``schedule`` directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from titus.scheduler.model import TaskClass


@dataclass
class Placement:
    """Where tasks went (task id -> host id), their ports, and why others did not."""

    assignments: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)  # task id -> message


def place(engine, records: list, zones: int) -> Placement:
    """Offer ``records`` (TaskRecords, in order) to ``engine`` (an
    :class:`~titus.master.engine_adapter.EngineAdapter`) in one batch."""
    scheduler = engine.scheduler
    state = engine.state
    out = Placement()
    if not records:
        return out
    resources = tuple(scheduler.resources)
    jobs = state.jobs
    class_of_job: dict[str, int] = {}
    classes: list[TaskClass] = []
    class_rows: list[list[float]] = []
    slow: list = []
    fast: list = []
    task_class: list[int] = []
    for task in records:
        job_id = task.job_id
        index = class_of_job.get(job_id)
        if index is None:
            job = jobs[job_id]
            demand = state.demand(job)
            if any(v > 0 and r not in resources for r, v in demand.items()):
                index = -1
            else:
                probe = engine.task_for(task, zones)
                index = len(classes)
                classes.append(TaskClass(job=job_id, group=job.group, hard=probe.hard,
                                         soft=probe.soft))
                class_rows.append([demand.get(r, 0.0) for r in resources])
            class_of_job[job_id] = index
        if index < 0:
            slow.append(task)
        else:
            fast.append(task)
            task_class.append(index)
    if fast:
        tc = np.asarray(task_class, dtype=np.int32)
        demand = np.ascontiguousarray(np.asarray(class_rows, dtype=np.float64)[tc])
        hosts = scheduler.schedule_arrays(demand, tc, classes, task_ids=[t.id for t in fast])
        host_ids = scheduler.host_ids
        unplaced_by_class: dict[int, list] = {}
        for task, h, c in zip(fast, hosts.tolist(), task_class):
            if h >= 0:
                out.assignments[task.id] = host_ids[h]
            else:
                unplaced_by_class.setdefault(c, []).append(task)
        for waiting in unplaced_by_class.values():
            _explain(engine, waiting, zones, out)
    if slow:
        result = scheduler.schedule([engine.task_for(t, zones) for t in slow])
        out.assignments.update(result.assignments)
        out.ports.update(result.ports)
        out.failures.update({tid: f.message for tid, f in result.failures.items()})
    return out


def _explain(engine, waiting: list, zones: int, out: Placement) -> None:
    """Ask the engine why the first waiting task of a job does not fit; share the answer."""
    first = waiting[0]
    result = engine.scheduler.schedule([engine.task_for(first, zones)])
    if first.id in result.assignments:  # room appeared (e.g. a constraint's count moved)
        out.assignments[first.id] = result.assignments[first.id]
        out.ports.update(result.ports)
        message = ""
    else:
        message = result.failures[first.id].message
        out.failures[first.id] = message
    for task in waiting[1:]:
        out.failures[task.id] = message
