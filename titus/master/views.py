"""Jobs and tasks as the REST API shows them (Titus v3 JSON shape).

Timestamps are epoch milliseconds written as strings (the protobuf JSON mapping of int64).
Secret env values are shown redacted (``titus.master.secret_env``); only views are: the stored
descriptor and the launch orders built from it keep the real values.
"""
from __future__ import annotations

from typing import Optional

from titus import states
from titus.master.records import JobRecord, TaskRecord
from titus.master.secret_env import DEFAULT_SECRET_ENV_PATTERN, redact_descriptor


def ms(ts: Optional[float]) -> Optional[str]:
    """Epoch seconds -> epoch milliseconds as a string."""
    return None if ts is None else str(int(ts * 1000))


def _status(state: str, reason: str, message: str, ts: Optional[float]) -> dict:
    return {"state": state, "reasonCode": reason or "normal", "reasonMessage": message or "",
            "timestamp": ms(ts)}


def job_view(job: JobRecord, secret_pattern: str = DEFAULT_SECRET_ENV_PATTERN) -> dict:
    """A job: id, descriptor (echoed, unknown fields included, secret env values redacted
    by ``secret_pattern`` and the job's own list), status and its history."""
    history = [_status(states.ACCEPTED, "normal", "", job.accepted_at)]
    if job.kill_initiated_at is not None:
        history.append(_status(states.KILL_INITIATED, "killed", "", job.kill_initiated_at))
    if job.finished_at is not None:
        history.append(_status(states.FINISHED, job.reason_code, job.reason_message,
                               job.finished_at))
    status = history.pop()
    if job.state == states.FINISHED:
        status = _status(job.state, job.reason_code, job.reason_message, job.finished_at)
    return {"id": job.id, "jobDescriptor": descriptor_view(job, secret_pattern),
            "status": status, "statusHistory": history, **_job_backoff(job)}


def descriptor_view(job: JobRecord, secret_pattern: str = DEFAULT_SECRET_ENV_PATTERN) -> dict:
    """The job's descriptor as views show it, secret env values redacted.

    Cached on the record with the pattern it was made with: jobs are shown far more often than
    their descriptors change, and the ledger drops the cache when one does."""
    cached = job.wire_cache
    if cached is None or cached[0] != secret_pattern:
        view = redact_descriptor(job.descriptor.wire(), secret_pattern)
        cached = job.wire_cache = (secret_pattern, view)
    return cached[1]


def _job_backoff(job: JobRecord) -> dict:
    """The crash-loop summary of a job: how many of its tasks are held back by a restart
    delay, the earliest time one may run again, and the longest run of quick failures of an
    index still running or waiting."""
    waiting: list[float] = []
    failures = 0
    for t in job.tasks.values():
        if t.state == states.FINISHED:
            continue
        failures = max(failures, t.consecutive_failures)
        if t.backing_off:
            waiting.append(t.retry_at)
    return {"backingOff": bool(waiting), "tasksBackingOff": len(waiting),
            "retryAt": ms(min(waiting)) if waiting else None, "consecutiveFailures": failures}


def task_view(task: TaskRecord, job: Optional[JobRecord] = None) -> dict:
    """A task: ids, context, status, history, placement and why it waits, if it does."""
    history = []
    for state in states.TASK_STATES:
        ts = task.state_time(state)
        if ts is None or state == task.state:
            continue
        history.append(_status(state, "normal", "", ts))
    status = _status(task.state, task.reason_code, task.reason_message,
                     task.state_time(task.state))
    context = {"task.index": str(task.idx), "task.originalId": task.id,
               "task.resubmitNumber": str(task.resubmit_number),
               "task.systemResubmitNumber": str(task.system_resubmit_number)}
    if task.resubmit_of:
        context["task.resubmitOf"] = task.resubmit_of
    if task.launch_attempts:
        context["task.launchAttempts"] = str(task.launch_attempts)
    if task.relocates:  # a relocation's replacement: the task it takes over from
        context["task.relocates"] = task.relocates
    if task.host_id:
        context["agent.host"] = task.host_id
        context["agent.id"] = task.agent_id
    view = {
        "id": task.id, "jobId": task.job_id, "index": task.idx, "taskContext": context,
        "status": status, "statusHistory": history,
        "resubmitOf": task.resubmit_of or None, "resubmitNumber": task.resubmit_number,
        "systemResubmitNumber": task.system_resubmit_number,
        "hostId": task.host_id or None, "agentId": task.agent_id or None,
        "ports": task.port_list, "exitCode": task.exit_code, "health": task.health,
        "backingOff": task.backing_off, "consecutiveFailures": task.consecutive_failures,
        "launchAttempts": task.launch_attempts,
    }
    if task.state == states.ACCEPTED:
        view["schedulingFailure"] = task.scheduling_failure or None
        if task.retry_at:
            view["retryAt"] = ms(task.retry_at)
    if job is not None:
        view["capacityGroup"] = job.group
    return view
