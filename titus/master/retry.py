"""Retry policies: whether and when a finished task is resubmitted.

Policies (Titus's): ``immediate {retries}``; ``delayed {initialDelayMs, delayMs, retries}``
(the first resubmit waits ``initialDelayMs``, later ones ``delayMs``);
``exponentialBackOff {initialDelayMs, maxDelayIntervalMs, retries}`` (``initialDelayMs *
2^(n-1)`` capped at ``maxDelayIntervalMs`` for the n-th resubmit). No policy: no retries.

Rules:

- System errors and losses (``lost``, ``transientSystemError``, ``stuckInState``,
  ``stuckInKillingState``, ``crashed``) are not the task's fault: the task is resubmitted
  at once and the user's retries are not consumed (bounded by ``max_system_retries`` so a
  broken cluster cannot loop forever).
- ``evicted`` and ``relocated`` (the platform moved the task) are resubmitted the same way,
  without consuming the user's retries; a service job replaces them only while it is below
  its desired count (a relocation's replacement already runs).
- Batch: ``normal`` ends the index; ``scaledDown`` and a job being killed never resubmit;
  ``runtimeLimitExceeded`` resubmits only with ``retryOnRuntimeLimit``; any other end
  (failed, oom, killed by a task kill, unhealthy, ...) consumes one user retry while some remain.
- Service: while the job is active every ended task is replaced (except ``scaledDown``); the
  policy only sets the delay, from the number of user retries used so far.

A replacement keeps the task index, gets a new id, and records ``resubmitOf`` (the id it
replaces), ``resubmitNumber`` (all resubmits of that index) and ``systemResubmitNumber``.

Crash-loop back-off (:class:`Backoff`, after Kubernetes' CrashLoopBackOff): an index whose
tasks keep failing soon after they start waits ``base * 2^(n-1)`` seconds (at most ``max``)
before its n-th restart in a row; a task that ran healthily for ``reset`` seconds clears the
count. A failure here is any end that is neither on purpose (``killed``, ``scaledDown``) nor a
system reason, and for a service also a ``normal`` exit (a service is meant to keep running).
System reasons do not add to the count, and a lost host's replacement starts at once. A
``transientSystemError`` (the runtime could not reach its engine, or the engine failed, after
retrying) backs off on its own: ``base * 2^(n-1)`` seconds before the n-th system resubmit of
the index, at most ``SYSTEM_BACKOFF_MAX_SEC``, so a broken engine is not hammered while the
user's retries stay untouched. Where the retry policy asks for a delay too, the longer one is
used.
"""
from __future__ import annotations

from dataclasses import dataclass

from titus import states
from titus.master.model import RetryPolicy

SYSTEM_REASONS = frozenset({states.LOST, states.TRANSIENT_SYSTEM_ERROR, states.STUCK_IN_STATE,
                            states.STUCK_IN_KILLING_STATE, states.CRASHED})
# A transientSystemError's replacement waits at most this long (the engine is usually back
# within seconds; a longer outage is the lost-host path's business).
SYSTEM_BACKOFF_MAX_SEC = 30.0
# Ends someone asked for: they say nothing about whether the task can run.
ON_PURPOSE = frozenset({states.KILLED, states.SCALED_DOWN})
# Tasks the platform moved (evicted, relocated off a drained host, or preempted by a
# Critical-tier task): replaced as a system resubmit, the user's retries untouched (Titus's
# eviction and relocation services).
MOVED = frozenset({states.EVICTED, states.RELOCATED, states.PREEMPTED})


@dataclass(frozen=True)
class RetryRule:
    """A retry policy reduced to numbers: ``retries`` and the delays in milliseconds."""

    kind: str = "none"
    retries: int = 0
    initial_delay_ms: int = 0
    delay_ms: int = 0
    max_delay_ms: int = 0

    @classmethod
    def from_policy(cls, policy: RetryPolicy | None) -> "RetryRule":
        """The rule of a wire retry policy (no policy: no retries)."""
        if policy is None:
            return cls()
        if policy.immediate is not None:
            return cls("immediate", policy.immediate.retries)
        if policy.delayed is not None:
            d = policy.delayed
            return cls("delayed", d.retries, d.initialDelayMs, d.delayMs, 0)
        if policy.exponentialBackOff is not None:
            e = policy.exponentialBackOff
            return cls("exponentialBackOff", e.retries, e.initialDelayMs, 0, e.maxDelayIntervalMs)
        return cls()

    def delay_sec(self, attempt: int) -> float:
        """Seconds to wait before the ``attempt``-th user resubmit (1 for the first)."""
        attempt = max(1, attempt)
        if self.kind == "delayed":
            return (self.initial_delay_ms if attempt == 1 else self.delay_ms) / 1000.0
        if self.kind == "exponentialBackOff":
            ms = self.initial_delay_ms * (2 ** min(attempt - 1, 40))
            if self.max_delay_ms > 0:
                ms = min(ms, self.max_delay_ms)
            return ms / 1000.0
        return 0.0


@dataclass(frozen=True)
class Decision:
    """What to do with a finished task: resubmit or not, after how long, and whether it counts."""

    resubmit: bool
    delay_sec: float = 0.0
    system: bool = False  # a system resubmit: the user's retries are untouched


NO = Decision(False)


def decide(*, batch: bool, rule: RetryRule, reason: str, user_retries_used: int,
           system_retries_used: int, job_active: bool, retry_on_runtime_limit: bool = False,
           max_system_retries: int = 100) -> Decision:
    """Whether a task that finished with ``reason`` is resubmitted (see the module rules)."""
    if not job_active or reason == states.SCALED_DOWN:
        return NO
    if reason in SYSTEM_REASONS or reason in MOVED:
        if system_retries_used < max_system_retries:
            return Decision(True, 0.0, system=True)
        return NO
    if batch:
        if reason == states.NORMAL:
            return NO
        if reason == states.RUNTIME_LIMIT_EXCEEDED and not retry_on_runtime_limit:
            return NO
        if user_retries_used < rule.retries:
            return Decision(True, rule.delay_sec(user_retries_used + 1))
        return NO
    # service: keep the desired count; the policy only paces failing tasks
    if reason == states.NORMAL:
        return Decision(True, 0.0)
    return Decision(True, rule.delay_sec(min(user_retries_used + 1, max(1, rule.retries or 1))))


def is_crash(reason: str, batch: bool) -> bool:
    """Whether an end with ``reason`` is the task's own failure (it counts toward back-off)."""
    if reason in SYSTEM_REASONS or reason in ON_PURPOSE or reason in MOVED:
        return False
    return not (batch and reason == states.NORMAL)


@dataclass(frozen=True)
class Backoff:
    """Crash-loop back-off: delays for an index that keeps failing soon after it starts."""

    base_sec: float = 1.0
    max_sec: float = 300.0
    reset_sec: float = 600.0

    def delay_sec(self, failures: int) -> float:
        """Seconds to wait before restarting an index after ``failures`` quick failures in a
        row: ``base * 2^(failures-1)``, at most ``max`` (0 with no failures or no base)."""
        if failures <= 0 or self.base_sec <= 0:
            return 0.0
        return min(self.max_sec, self.base_sec * 2.0 ** min(failures - 1, 40))

    def system_delay_sec(self, reason: str, system_resubmits: int) -> float:
        """Seconds before a system resubmit of an index that has had ``system_resubmits``
        (1 for the first): ``base * 2^(n-1)`` at most :data:`SYSTEM_BACKOFF_MAX_SEC` for a
        ``transientSystemError``, 0 for other reasons or with no base."""
        if reason != states.TRANSIENT_SYSTEM_ERROR or system_resubmits <= 0 or self.base_sec <= 0:
            return 0.0
        return min(SYSTEM_BACKOFF_MAX_SEC, self.max_sec,
                   self.base_sec * 2.0 ** min(system_resubmits - 1, 40))

    def failures_after(self, failures: int, *, reason: str, batch: bool,
                       healthy_sec: float) -> int:
        """The index's count of quick failures in a row once a task with ``failures`` before
        it ended with ``reason`` after running healthily for ``healthy_sec``."""
        if healthy_sec >= self.reset_sec:
            return 0  # it ran well: whatever ended it, the loop is broken
        if is_crash(reason, batch):
            return failures + 1
        return failures  # not its fault: neither a new failure nor a fresh start
