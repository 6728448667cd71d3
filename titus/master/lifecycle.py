"""Planning the life of tasks and jobs: endings and retries, kills, service counts, settling.

Every function here only *plans* into a :class:`~titus.master.work.Work`; the ledger commits.

- ``finish``: a task ends with a reason; the retry rules (``titus.master.retry``, after
  Titus's retry policies) decide whether a replacement is created, and it may run after the
  longer of the policy's delay and the crash-loop back-off of its index;
- ``kill``: a waiting task ends at once, a placed one moves to KillInitiated and its agent gets
  a kill order;
- ``resolve_service``: a service job below its desired count gets new tasks (a relocation's
  replacement and the task it takes over from count as one); above it, surplus tasks are killed with ``scaledDown`` (tasks already KillInitiated count as gone first, then
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
from titus.master.errors import Conflict
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
        healthy_sec = _healthy_sec(work, task, now)
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
            self._resubmit(work, job, task, judged, decision, healthy_sec, now)
        elif job.batch:
            work.done_indices.append((job, task.idx, reason != states.NORMAL))

    def _resubmit(self, work: Work, job: JobRecord, task: TaskRecord, reason: str,
                  decision: retry.Decision, healthy_sec: float, now: float) -> None:
        """Plan the replacement of ``task`` (same index), held back by the longer of the retry
        policy's delay and its index's crash-loop back-off."""
        backoff = self.backoff()
        failures = backoff.failures_after(task.consecutive_failures, reason=reason,
                                          batch=job.batch, healthy_sec=healthy_sec)
        crash_delay = backoff.delay_sec(failures) if retry.is_crash(reason, job.batch) else 0.0
        if decision.system:  # an engine that just failed gets a moment before the next try
            crash_delay = backoff.system_delay_sec(reason, task.system_resubmit_number + 1)
        delay = max(decision.delay_sec, crash_delay)
        new = self.state.new_task(
            job, task.idx, now, resubmit_of=task.id, resubmit_number=task.resubmit_number + 1,
            system_resubmit_number=task.system_resubmit_number + (1 if decision.system else 0),
            retry_at=now + delay if delay > 0 else 0.0, consecutive_failures=failures)
        work.new_tasks.append(new)
        if delay > 0:
            work.log.append(("taskBackingOff", job.id, {
                "taskId": task.id, "replacementId": new.id, "index": task.idx, "reason": reason,
                "consecutiveFailures": failures, "delaySec": delay}))
            log.info("task %s (job %s index %d) ended %s: replaced in %gs (%d quick failures "
                     "in a row)", task.id, job.id, task.idx, reason, delay, failures)

    def backoff(self) -> retry.Backoff:
        """The crash-loop back-off of the current settings."""
        s = self.settings
        return retry.Backoff(s.crash_backoff_base_sec, s.crash_backoff_max_sec,
                             s.crash_backoff_reset_sec)

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
                  if work.get(t, "state") not in (states.FINISHED, states.KILL_INITIATED)
                  and not in_flight(work, job, t)]
        planned_new = [t for t in work.new_tasks if t.job_id == job.id
                       and not in_flight(work, job, t)]
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
        """Plan lowering a service job's desired count by one.

        :class:`Conflict` when desired is already at min: as Titus, a task kill never lowers
        the job's minimum (resize the job first)."""
        descriptor = job.descriptor.model_copy(deep=True)
        cap = descriptor.service.capacity
        if cap.desired <= cap.min:
            raise Conflict(f"cannot shrink below the job's min ({cap.min}); lower min first",
                           field="service.capacity.min")
        cap.desired -= 1
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


def _healthy_sec(work: Work, task: TaskRecord, now: float) -> float:
    """How long ``task`` has run healthily: from Started to now, or to when it turned
    unhealthy (0 if it never started)."""
    started = work.get(task, "started_at")
    if started is None:
        return 0.0
    unhealthy = work.noted(task, "unhealthy_since")
    return max(0.0, (now if unhealthy is None else unhealthy) - started)


def in_flight(work: Work, job: JobRecord, task: TaskRecord) -> bool:
    """Whether ``task`` is a relocation's replacement whose old task still runs (and is not
    being killed): until then the pair counts as one toward the desired count."""
    if not task.relocates:
        return False
    old = job.tasks.get(task.relocates)
    return old is not None and work.get(old, "state") not in (states.FINISHED,
                                                              states.KILL_INITIATED)


def _planned_live(work: Work, job: JobRecord) -> int:
    """Tasks of a job that will be alive (and not being killed) after ``work``, a relocation's
    pair counted once."""
    n = sum(1 for t in job.tasks.values()
            if work.get(t, "state") not in (states.FINISHED, states.KILL_INITIATED)
            and not in_flight(work, job, t))
    return n + sum(1 for t in work.new_tasks if t.job_id == job.id
                   and not in_flight(work, job, t))
