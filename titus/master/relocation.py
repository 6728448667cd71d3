"""Relocation: moving tasks off drained hosts at the pace their jobs' budgets allow.

A drained host (``PUT /api/v3/hosts/{id}/drain``, or the autoscaler's scale-down) takes no new
task. Each reconciliation pass, for the tasks still on drained hosts:

- a **service** task is moved make-before-break, after Titus's relocation service: a
  replacement (same index, ``relocates`` naming the old task) is started elsewhere, and the
  old task is killed with reason ``relocated`` only once the replacement is healthy (Started,
  and passing its health check if the job has one). The pair counts as one toward the desired
  count, so the job neither grows nor replaces the old task again. A relocation begun spends
  one unit of the job's quota (``titus.master.eviction.job_quota``: policy, rate and time
  windows; one relocation may always begin when the whole job is healthy and none is under
  way, since the old task serves until its replacement does), and is recorded as a
  disruption. If the replacement dies first, the old task is
  moved again later. A ``selfManaged`` job is left ``relocationTimeMs`` to move its tasks
  itself (the eviction API allows it), then its type's default budget applies;
- a **batch** task is left to finish; if the drain has a deadline, a task still there at the
  deadline is killed with reason ``relocated`` and runs again elsewhere without spending the
  user's retries (the deadline is the operator's, over the budget: a batch task has a finite
  runtime, and its budget's relocation limit is still counted).

Pacing is per job across every drained host. Everything here plans into a ``Work`` under the
reconciler's hold of the state lock.
"""
from __future__ import annotations

import logging
from typing import Callable

from titus import states
from titus.master.budget import default_budget
from titus.master.eviction import healthy, job_quota
from titus.master.lifecycle import Lifecycle
from titus.master.moves import Disruption
from titus.master.records import JobRecord, TaskRecord
from titus.master.state import ClusterState
from titus.master.work import Work

log = logging.getLogger("titus.master.relocation")


class Relocator:
    """Plans the moves off drained hosts."""

    def __init__(self, state: ClusterState, lifecycle: Lifecycle, clock: Callable[[], float]):
        self.state = state
        self.lifecycle = lifecycle
        self.clock = clock

    def tasks_on(self, host_id: str) -> list[TaskRecord]:
        """Live tasks on a host (launching, running or being killed)."""
        agent_id = self.state.registry.agent_of_host(host_id)
        return [t for t in self.state.tasks_on(agent_id or "")
                if t.host_id == host_id and t.state in states.ON_HOST]

    def plan(self, work: Work, now: float) -> None:
        """Plan this pass's moves (see the module docstring)."""
        st = self.state
        if not st.drains:
            return
        candidates: dict[str, list[TaskRecord]] = {}
        started_at: dict[str, float] = {}  # job id -> the earliest drain its tasks are under
        replacements: dict[str, dict[str, TaskRecord]] = {}  # job id -> old id -> replacement
        for host_id, drain in sorted(st.drains.items()):
            for task in self.tasks_on(host_id):
                job = st.jobs.get(task.job_id)
                if job is None or work.get(task, "state") == states.KILL_INITIATED:
                    continue
                if job.batch:
                    if drain.deadline is not None and now >= drain.deadline:
                        self._kill(work, job, task, now, "the drain's deadline passed")
                    continue
                if job.id not in replacements:
                    replacements[job.id] = _replacements(job)
                replacement = replacements[job.id].get(task.id)
                if replacement is None:
                    candidates.setdefault(job.id, []).append(task)
                    started_at[job.id] = min(started_at.get(job.id, drain.since), drain.since)
                elif healthy(replacement, job):
                    # make-before-break: the replacement serves, the old task may go
                    self.lifecycle.kill(work, task, states.RELOCATED)
        for job_id, tasks in candidates.items():
            job = st.jobs[job_id]
            if work.job_get(job, "state") != states.ACCEPTED:
                continue
            budget = job.budget
            if budget.selfManaged is not None:
                wait = budget.selfManaged.relocationTimeMs / 1000.0
                if now < started_at[job_id] + wait:
                    continue  # the owner's turn
                budget = default_budget(job.batch)
            allowed = job_quota(st, job, now, budget, relocation=True).count
            tasks.sort(key=lambda t: (t.state == states.STARTED, t.seq))  # not yet serving first
            for task in tasks[:allowed]:
                self._begin(work, job, task, now)

    def _begin(self, work: Work, job: JobRecord, task: TaskRecord, now: float) -> None:
        """Start a replacement of ``task`` elsewhere (the host is held off)."""
        new = self.state.new_task(job, task.idx, now, resubmit_of=task.id,
                                  resubmit_number=task.resubmit_number,
                                  system_resubmit_number=task.system_resubmit_number,
                                  relocates=task.id)
        work.new_tasks.append(new)
        self._record(work, job, task, now)
        work.log.append(("taskRelocating", job.id, {"taskId": task.id, "replacementId": new.id,
                                                    "hostId": task.host_id}))
        log.info("relocating task %s of job %s off %s (replacement %s)", task.id, job.id,
                 task.host_id, new.id)

    def _kill(self, work: Work, job: JobRecord, task: TaskRecord, now: float, why: str) -> None:
        self.lifecycle.kill(work, task, states.RELOCATED)
        self._record(work, job, task, now)
        work.log.append(("taskRelocated", job.id, {"taskId": task.id, "hostId": task.host_id,
                                                   "why": why}))

    def _record(self, work: Work, job: JobRecord, task: TaskRecord, now: float) -> None:
        if any(d.task_id == task.id for d in self.state.disruptions.get(job.id, ())):
            return  # recorded already (one row per task)
        work.disruptions.append(Disruption(task.id, job.id, task.idx, states.RELOCATED, now,
                                           "drain"))


def _replacements(job: JobRecord) -> dict[str, TaskRecord]:
    """Old task id -> its live replacement, for the job's relocations begun."""
    return {t.relocates: t for t in job.tasks.values()
            if t.relocates and t.state != states.FINISHED}
