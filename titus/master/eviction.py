"""Eviction: a job's quota now, and evicting one task when the quota allows it.

After Titus's eviction service (``GET /api/v3/eviction/quotas/jobs/{id}``,
``DELETE /api/v3/eviction/tasks/{id}``): the quota is the job's disruption budget
(``titus.master.budget``) applied to the job as it stands; an eviction the quota allows kills
the task with reason ``evicted`` (the job replaces it as usual, no user retry spent) and is
recorded as a disruption, in the store, so the budget's rate holds across a restart. A refusal
is an answer, not an error: ``{"allowed": false, "reason": ...}``.

Every function here plans or reads under the caller's hold of the state lock.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Optional

from titus import states
from titus.master.budget import Quota, quota
from titus.master.lifecycle import Lifecycle, in_flight
from titus.master.model import DisruptionBudget
from titus.master.moves import Disruption
from titus.master.records import JobRecord, TaskRecord
from titus.master.state import ClusterState
from titus.master.work import Work


@dataclass(frozen=True)
class Outcome:
    """The answer to an eviction: ``allowed`` or not, a short ``code`` and a readable
    ``reason``."""

    allowed: bool
    code: str
    reason: str

    def view(self) -> dict:
        """As the REST API shows it (Titus's ``allowed`` with a reason)."""
        return {"allowed": self.allowed, "reasonCode": self.code, "reason": self.reason}


def healthy(task: TaskRecord, job: JobRecord) -> bool:
    """Started, and passing its health check if the job has one (without one: not reported
    unhealthy)."""
    if task.state != states.STARTED:
        return False
    if job.descriptor.container.healthCheck is not None:
        return task.health == "healthy"
    return task.health != "unhealthy"


def moving(job: JobRecord) -> set[str]:
    """Ids of the job's tasks whose relocation has begun (a live replacement exists)."""
    empty = Work()
    return {t.relocates for t in job.tasks.values()
            if t.relocates and t.state != states.FINISHED and in_flight(empty, job, t)}


def job_quota(state: ClusterState, job: JobRecord, now: float,
              budget: Optional[DisruptionBudget] = None, relocation: bool = False) -> Quota:
    """The job's quota now under ``budget`` (default: its own); ``relocation``: for a
    make-before-break relocation (``titus.master.budget.quota``), else for an eviction."""
    budget = budget or job.budget
    leaving = moving(job)
    on_host = [t for t in job.tasks.values() if t.state in states.ON_HOST
               and t.state != states.KILL_INITIATED and t.id not in leaving]
    ok = sum(1 for t in on_host if healthy(t, job))
    if job.batch:
        desired = sum(1 for t in job.tasks.values() if t.state != states.FINISHED)
    else:
        desired = job.size
    history = state.disruptions.get(job.id, ())
    movable = None
    if budget.relocationLimit is not None:
        moved = Counter(d.idx for d in history)
        movable = sum(1 for t in on_host if moved[t.idx] < budget.relocationLimit.limit)
    return quota(budget, desired=desired, healthy=ok, live=len(on_host),
                 recent=[d.at for d in history], now=now, movable=movable,
                 in_flight=len(leaving) if relocation else None)


def preemption_quota(state: ClusterState, job: JobRecord, now: float) -> int:
    """How many of ``job``'s tasks one scheduling round may preempt (docs/preemption.md): its
    eviction quota, but none while a task of it on a host has used up the budget's
    ``relocationLimit``: the engine picks victims by job, not by index, so it could pick that
    very task."""
    count = job_quota(state, job, now).count
    limit = job.budget.relocationLimit
    if count > 0 and limit is not None:
        moved = Counter(d.idx for d in state.disruptions.get(job.id, ()))
        if any(moved[t.idx] >= limit.limit for t in job.tasks.values()
               if t.state in states.ON_HOST and t.state != states.KILL_INITIATED):
            return 0
    return count


def evict(state: ClusterState, lifecycle: Lifecycle, work: Work, task: TaskRecord,
          job: JobRecord, now: float, by: str) -> Outcome:
    """Plan evicting ``task`` if its job's quota allows it; the outcome either way. A task
    already evicted, being killed, finished or not on a host is refused (so a retried call
    never kills twice)."""
    if task.state == states.FINISHED:
        code = "alreadyEvicted" if task.reason_code == states.EVICTED else "finished"
        return Outcome(False, code, f"the task has finished ({task.reason_code})")
    if task.state == states.KILL_INITIATED:
        if task.kill_reason == states.EVICTED:
            return Outcome(False, "alreadyEvicted", "the task is already evicted")
        return Outcome(False, "beingKilled", f"the task is being killed ({task.kill_reason})")
    if task.state not in states.ON_HOST:
        return Outcome(False, "notOnHost", "the task is not on a host yet: nothing to evict")
    if task.id in moving(job):
        return Outcome(False, "beingRelocated", "the task is being relocated")
    budget = job.budget
    if budget.relocationLimit is not None:
        moved = sum(1 for d in state.disruptions.get(job.id, ()) if d.idx == task.idx)
        if moved >= budget.relocationLimit.limit:
            return Outcome(False, "relocationLimit",
                           f"relocationLimit {budget.relocationLimit.limit}: index {task.idx} "
                           f"was moved {moved} times")
    q = job_quota(state, job, now)
    if q.count < 1:
        return Outcome(False, "quota", q.reason)
    lifecycle.kill(work, task, states.EVICTED)
    work.disruptions.append(Disruption(task.id, job.id, task.idx, states.EVICTED, now, by))
    work.log.append(("taskEvicted", job.id, {"taskId": task.id, "by": by}))
    return Outcome(True, "evicted", f"evicted ({q.reason})")
