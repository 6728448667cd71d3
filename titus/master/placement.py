"""One engine call for a batch of waiting tasks, on the engine's throughput path.

Tasks of one job share demand and constraints, so each job is one ``TaskClass`` and the batch
crosses into the engine as a demand matrix (``schedule_arrays``), with no Python work per
task inside the engine. The same call explains every unplaced row (``explain=True``: the
engine's per-reason host counts, decoded into the ``Failure`` that ``schedule`` would give), so
nothing is asked twice. Tasks needing a resource the engine has never heard of (a scalar no
host offers) go through ``schedule`` directly.

A pending task's message is the engine's ``Failure.message`` and, when a resource is the
leading reason, what the task asks of it and the most any host has free:
``"0/2 hosts: 2 cpus; asks 32 cpus; largest free 16"``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from titus.scheduler.model import Failure, TaskClass


@dataclass
class Placement:
    """Where tasks went (task id -> host id), their ports, and why others did not."""

    assignments: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)  # task id -> message
    preemptions: dict = field(default_factory=dict)  # task id -> ids of the tasks it preempted


def place(engine, records: list, zones: int, quotas=None) -> Placement:
    """Offer ``records`` (TaskRecords, in order) to ``engine`` (an
    :class:`~titus.master.engine_adapter.EngineAdapter`) in one batch.

    ``quotas`` ({job id: tasks it may lose in this round}, the Flex jobs' disruption budgets):
    when given and some task is of a preempting Critical group, a task that fits nowhere may
    evict Flex tasks (docs/preemption.md); ``Placement.preemptions`` names them."""
    scheduler = engine.scheduler
    if not quotas:
        return _place(engine, records, zones, False)
    for job_id, n in quotas.items():
        scheduler.set_eviction_quota(job_id, max(0, min(int(n), 2**31 - 1)))
    try:
        return _place(engine, records, zones, True)
    finally:
        for job_id in quotas:
            scheduler.set_eviction_quota(job_id, None)


def _place(engine, records: list, zones: int, preempt: bool) -> Placement:
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
                                         soft=probe.soft, gang=job.gang_pending(),
                                         priority=probe.priority))
                class_rows.append([demand.get(r, 0.0) for r in resources])
            class_of_job[job_id] = index
        if index < 0:
            slow.append(task)
        else:
            fast.append(task)
            task_class.append(index)
    notes = _Notes(scheduler)
    fast, task_class = _whole_gangs(jobs, classes, fast, task_class, out)
    if fast:
        tc = np.asarray(task_class, dtype=np.int32)
        demand = np.ascontiguousarray(np.asarray(class_rows, dtype=np.float64)[tc])
        got = scheduler.schedule_arrays(demand, tc, classes, task_ids=[t.id for t in fast],
                                        explain=True, preempt=preempt)
        hosts, failures = got[0], got[1]
        if preempt:
            for row, victims in got[2].items():
                out.preemptions[fast[row].id] = [v for v in victims if v is not None]
        host_ids = scheduler.host_ids
        for task, h in zip(fast, hosts.tolist()):
            if h >= 0:
                out.assignments[task.id] = host_ids[h]
        said: dict = {}  # (failure, class) -> message: rows of a class mostly fail alike
        for row, failure in failures.items():
            key = (id(failure), task_class[row])
            message = said.get(key)
            if message is None:
                asks = dict(zip(resources, class_rows[task_class[row]]))
                message = said[key] = notes.message(failure, asks).replace(
                    f"gang classes[{task_class[row]}]:", f"gang of job {fast[row].job_id}:", 1)
            out.failures[fast[row].id] = message
    if slow:
        tasks = [engine.task_for(t, zones) for t in slow]
        result = scheduler.schedule(tasks, preempt=preempt)
        out.assignments.update(result.assignments)
        for tid, victims in result.preemptions.items():
            out.preemptions[tid] = [v for v in victims if v is not None]
        out.ports.update(result.ports)
        for task in tasks:
            failure = result.failures.get(task.id)
            if failure is not None:
                out.failures[task.id] = notes.message(failure, _asks(task))
    return out


def _whole_gangs(jobs, classes, fast, task_class, out: Placement):
    """Keep a gang job's rows only when the batch holds every waiting task of the job (the queue
    may split a job over rounds); otherwise they wait, saying so, and go together later."""
    gang_rows: dict[int, int] = {}
    for k in task_class:
        if classes[k].gang:
            gang_rows[k] = gang_rows.get(k, 0) + 1
    short = set()
    for k, n in gang_rows.items():
        job = jobs[classes[k].job]
        if n < sum(1 for t in job.tasks.values() if not t.finished_at):
            short.add(k)
    if not short:
        return fast, task_class
    keep_tasks, keep_rows = [], []
    for task, k in zip(fast, task_class):
        if k in short:
            out.failures[task.id] = (f"gang of job {task.job_id}: waiting for all its tasks "
                                     "in one scheduling round")
        else:
            keep_tasks.append(task)
            keep_rows.append(k)
    return keep_tasks, keep_rows


def _asks(task) -> dict:
    """What a ``Task`` asks, resource name -> amount."""
    return {"cpus": task.cpus, "memory_mb": task.memory_mb, "disk_mb": task.disk_mb,
            "network_mbps": task.network_mbps, **dict(task.scalars)}


class _Notes:
    """Pending-task messages, the largest free amount of each resource looked up once per round
    (the state after the round's placements)."""

    def __init__(self, scheduler):
        self._scheduler = scheduler
        self._largest: dict[str, float] = {}

    def message(self, failure: Failure, asks: dict) -> str:
        """``failure.message``, then ``; asks 32 cpus; largest free 16`` when the leading reason
        (most hosts) is a resource the task asks for."""
        if not failure.counts:
            return failure.message
        reason = min(failure.counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        if reason not in asks or reason not in self._scheduler.resources:
            return failure.message
        largest = self._largest.get(reason)
        if largest is None:
            largest = self._largest[reason] = self._scheduler.largest_free(reason)
        return f"{failure.message}; asks {_amount(asks[reason])} {reason}; largest free {_amount(largest)}"


def _amount(x: float) -> str:
    """An amount as people write it: 32, 0.5, 1536."""
    return f"{x:.6g}"
