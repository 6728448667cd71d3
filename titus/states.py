"""Task and job state machines.

Task: ``Accepted -> Launched -> StartInitiated -> Started -> KillInitiated -> Finished``.
A task may skip forward (an agent can report Started without StartInitiated, a task can end
from any state), but never go back, and nothing leaves ``Finished``. ``KillInitiated`` is
reachable from every live state; ``Finished`` carries a reason.

Job: ``Accepted -> KillInitiated -> Finished`` (a batch job may go straight to Finished when
its tasks are done).

An illegal transition raises :class:`IllegalTransition` and is logged; the caller drops the
change, so a late or duplicated agent report can never resurrect or re-end a task.
"""
from __future__ import annotations

import logging

log = logging.getLogger("titus.states")

ACCEPTED = "Accepted"
LAUNCHED = "Launched"
START_INITIATED = "StartInitiated"
STARTED = "Started"
KILL_INITIATED = "KillInitiated"
FINISHED = "Finished"

TASK_STATES = (ACCEPTED, LAUNCHED, START_INITIATED, STARTED, KILL_INITIATED, FINISHED)
JOB_STATES = (ACCEPTED, KILL_INITIATED, FINISHED)
# States in which a task holds resources on a host.
ON_HOST = (LAUNCHED, START_INITIATED, STARTED, KILL_INITIATED)

# Reasons a task finishes with (Titus's reason codes, plus oom and unhealthy).
NORMAL = "normal"
FAILED = "failed"
KILLED = "killed"
LOST = "lost"
RUNTIME_LIMIT_EXCEEDED = "runtimeLimitExceeded"
SCALED_DOWN = "scaledDown"
STUCK_IN_STATE = "stuckInState"
STUCK_IN_KILLING_STATE = "stuckInKillingState"
CRASHED = "crashed"
INVALID_REQUEST = "invalidRequest"
TRANSIENT_SYSTEM_ERROR = "transientSystemError"
OOM = "oom"
UNHEALTHY = "unhealthy"
# moved by the platform: evicted through the eviction API, or relocated off a drained host
# (titus.master.budget); neither spends the user's retries
EVICTED = "evicted"
RELOCATED = "relocated"
# preempted: evicted by the scheduler to make room for a Critical-tier task (docs/preemption.md)
PREEMPTED = "preempted"

REASONS = (NORMAL, FAILED, KILLED, LOST, RUNTIME_LIMIT_EXCEEDED, SCALED_DOWN, STUCK_IN_STATE,
           STUCK_IN_KILLING_STATE, CRASHED, INVALID_REQUEST, TRANSIENT_SYSTEM_ERROR, OOM, UNHEALTHY,
           EVICTED, RELOCATED, PREEMPTED)

_TASK_ORDER = {state: i for i, state in enumerate(TASK_STATES)}
_JOB_ORDER = {state: i for i, state in enumerate(JOB_STATES)}


class IllegalTransition(ValueError):
    """A state change the machine does not allow."""


def can_move_task(current: str, target: str) -> bool:
    """Whether a task in ``current`` may move to ``target`` (forward only, Finished is final)."""
    if current not in _TASK_ORDER or target not in _TASK_ORDER:
        return False
    if current == FINISHED:
        return False
    return _TASK_ORDER[target] > _TASK_ORDER[current]


def is_behind(reported: str, current: str) -> bool:
    """Whether ``reported`` is a task state at or before ``current``: a late report of a
    step the task already took (or skipped), not a move out of order."""
    if reported not in _TASK_ORDER or current not in _TASK_ORDER:
        return False
    return _TASK_ORDER[reported] <= _TASK_ORDER[current]


def check_task_move(task_id: str, current: str, target: str) -> None:
    """Raise (and log) :class:`IllegalTransition` unless ``current -> target`` is allowed."""
    if not can_move_task(current, target):
        log.warning("refused task transition %s: %s -> %s", task_id, current, target)
        raise IllegalTransition(f"task {task_id}: {current} -> {target} is not allowed")


def can_move_job(current: str, target: str) -> bool:
    """Whether a job in ``current`` may move to ``target``."""
    if current not in _JOB_ORDER or target not in _JOB_ORDER or current == FINISHED:
        return False
    return _JOB_ORDER[target] > _JOB_ORDER[current]


def check_job_move(job_id: str, current: str, target: str) -> None:
    """Raise (and log) :class:`IllegalTransition` unless the job move is allowed."""
    if not can_move_job(current, target):
        log.warning("refused job transition %s: %s -> %s", job_id, current, target)
        raise IllegalTransition(f"job {job_id}: {current} -> {target} is not allowed")


def finish_reason(agent_reason: str, exit_code: int | None) -> str:
    """The Finished reason for what an agent reported (its reason, else from the exit code)."""
    if agent_reason in REASONS:
        return agent_reason
    if agent_reason in ("error", "failure"):
        return FAILED
    if exit_code is None:
        return NORMAL if agent_reason in ("", NORMAL) else FAILED
    return NORMAL if exit_code == 0 else FAILED
