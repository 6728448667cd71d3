"""Planning the life of tasks and jobs: endings and retries, kills, service counts, settling.

Every function here only *plans* into a :class:`~titus.master.work.Work`; the ledger commits.

- ``finish``: a task ends with a reason; the retry rules (``titus.master.retry``, after
  Titus's retry policies) decide whether a replacement is created and when it may run;
- ``kill``: a waiting task ends at once, a placed one moves to KillInitiated and its agent gets
  a kill order;
- ``resolve_service``: a service job below its desired count gets new tasks; above it, surplus
  tasks are killed with ``scaledDown`` (tasks already KillInitiated count as gone first, then
  waiting Accepted tasks go, then the youngest running ones);
- ``settle``: jobs whose work is over (batch done, or killed and drained) finish and are
  archived.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Optional

from titus import states
from titus.master import retry
from titus.master.config import MasterSettings
from titus.master.model import CapacityUpdate
from titus.master.records import JobRecord, TaskRecord
from titus.master.state import ClusterState
from titus.master.validation import Problem, SpecError
from titus.master.work import Work
from titus.protocol import kill_order

log = logging.getLogger("titus.master")


class Lifecycle:
    """Plans task endings, kills, service counts and job completion."""

    def __init__(self, state: ClusterState, settings: MasterSettings, clock: Callable[[], float]):
        self.state = state
        self.settings = settings
        self.clock = clock

    def finish(self, work: Work, task: TaskRecord, reason: str, message: str = "",
               exit_code: Optional[int] = None) -> None:
        """Plan ``task`` -> Finished(reason), and its replacement if the retry rules say so."""
        if work.get(task, "state") == states.FINISHED:
            return
        now = self.clock()
        work.update(task, state=states.FINISHED, reason_code=reason, reason_message=message,
                    finished_at=now, exit_code=exit_code)
        job = self.state.jobs[task.job_id]
        work.touch(job)
        active = work.job_get(job, "state") == states.ACCEPTED
        kill_reason = work.get(task, "kill_reason")
        # a task that was being killed on purpose ends for that purpose, however it ended
        judged = kill_reason if kill_reason and reason in retry.SYSTEM_REASONS else reason
        decision = retry.decide(
            batch=job.batch, rule=job.rule, reason=judged, user_retries_used=task.user_retries_used,
            system_retries_used=task.system_resubmit_number, job_active=active,
            retry_on_runtime_limit=bool(job.batch and job.descriptor.batch.retryOnRuntimeLimit),
            max_system_retries=self.settings.max_system_retries)
        if not job.batch and decision.resubmit:
            # a service job replaces only while it is below its desired count
            desired = work.job_get(job, "descriptor").service.capacity.desired
            if _planned_live(work, job) >= desired:
                decision = retry.NO
        if decision.resubmit:
            work.new_tasks.append(self.state.new_task(
                job, task.idx, now, resubmit_of=task.id, resubmit_number=task.resubmit_number + 1,
                system_resubmit_number=task.system_resubmit_number + (1 if decision.system else 0),
                retry_at=now + decision.delay_sec if decision.delay_sec > 0 else 0.0))
        elif job.batch:
            work.done_indices.append((job, task.idx, reason != states.NORMAL))

    def kill(self, work: Work, task: TaskRecord, kill_reason: str) -> None:
        """Plan killing ``task``: a waiting one ends at once, a placed one gets a KillOrder."""
        state = work.get(task, "state")
        if state == states.FINISHED:
            return
        if state == states.ACCEPTED:
            self.finish(work, task, kill_reason, "killed before it was placed")
            return
        job = self.state.jobs[task.job_id]
        if state != states.KILL_INITIATED:
            work.update(task, state=states.KILL_INITIATED, kill_reason=kill_reason,
                        kill_initiated_at=self.clock())
        work.order(work.get(task, "agent_id"), kill_order(task.id, job.kill_grace_sec))

    def resolve_service(self, work: Work, job: JobRecord) -> None:
        """Plan new or surplus-killing tasks so a service job holds its desired count."""
        if job.batch or work.job_get(job, "state") != states.ACCEPTED:
            return
        desired = work.job_get(job, "descriptor").service.capacity.desired
        active = [t for t in job.tasks.values()
                  if work.get(t, "state") not in (states.FINISHED, states.KILL_INITIATED)]
        planned_new = [t for t in work.new_tasks if t.job_id == job.id]
        count = len(active) + len(planned_new)
        now = self.clock()
        if count < desired:
            next_index = max([job.next_index] + [t.idx + 1 for t in planned_new])
            for i in range(desired - count):
                work.new_tasks.append(self.state.new_task(job, next_index + i, now))
        elif count > desired:
            surplus = count - desired
            waiting = [t for t in active if work.get(t, "state") == states.ACCEPTED]
            placed = [t for t in active if work.get(t, "state") != states.ACCEPTED]
            waiting.sort(key=lambda t: t.seq, reverse=True)
            placed.sort(key=lambda t: (t.launched_at or 0.0, t.seq), reverse=True)
            for task in (waiting + placed)[:surplus]:
                self.kill(work, task, states.SCALED_DOWN)

    def resize(self, work: Work, job: JobRecord, update: CapacityUpdate) -> None:
        """Plan a service job's new capacity {min, desired, max} (unset fields keep their value;
        with no desired given, desired is kept inside the new bounds), and the tasks it starts
        or kills. SpecError unless min <= desired <= max."""
        cap = job.descriptor.service.capacity
        new = {"min": cap.min if update.min is None else update.min,
               "desired": cap.desired if update.desired is None else update.desired,
               "max": cap.max if update.max is None else update.max}
        if update.desired is None:
            new["desired"] = min(max(new["desired"], new["min"]), new["max"])
        if not (new["min"] <= new["desired"] <= new["max"]):
            raise SpecError([Problem("capacity", "must satisfy min <= desired <= max", new)],
                            "capacity")
        descriptor = job.descriptor.model_copy(deep=True)
        descriptor.service.capacity.min = new["min"]
        descriptor.service.capacity.desired = new["desired"]
        descriptor.service.capacity.max = new["max"]
        work.update_job(job, descriptor=descriptor)
        work.log.append(("jobResized", job.id, new))
        self.resolve_service(work, job)

    def shrink(self, work: Work, job: JobRecord) -> None:
        """Plan lowering a service job's desired count by one (min follows if needed)."""
        descriptor = job.descriptor.model_copy(deep=True)
        cap = descriptor.service.capacity
        cap.desired = max(0, cap.desired - 1)
        cap.min = min(cap.min, cap.desired)
        work.update_job(job, descriptor=descriptor)

    def settle(self, jobs: Iterable[JobRecord]) -> Work:
        """Plan finishing and archiving jobs whose work is over (batch done, or killed and
        drained)."""
        work = Work()
        now = self.clock()
        for job in jobs:
            if job.id not in self.state.jobs or job.state == states.FINISHED:
                continue
            if job.live_count > 0:
                continue
            if job.state == states.KILL_INITIATED:
                reason = "killed"
            elif job.batch and len(job.done_indices) >= job.size:
                reason = "normal" if not job.failed_indices else "failed"
            else:
                continue
            work.update_job(job, state=states.FINISHED, reason_code=reason, finished_at=now,
                            reason_message="" if reason != "failed" else "some tasks failed")
            work.archives.append(job)
            work.log.append(("jobFinished", job.id, {"reason": reason}))
            log.info("job %s finished (%s)", job.id, reason)
        return work


def _planned_live(work: Work, job: JobRecord) -> int:
    """Tasks of a job that will be alive (and not being killed) after ``work``."""
    n = sum(1 for t in job.tasks.values()
            if work.get(t, "state") not in (states.FINISHED, states.KILL_INITIATED))
    return n + sum(1 for t in work.new_tasks if t.job_id == job.id)
