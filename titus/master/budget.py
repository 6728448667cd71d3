"""Disruption budgets: how many tasks of a job the platform may disrupt now, and why not more.

The budget is Titus's ``JobDisruptionBudget`` (``titus.master.model.DisruptionBudget``): one
**policy**, one **rate** and optional **time windows**. The quota of a job is the smaller of
what the policy and the rate allow, and 0 outside the time windows. Every eviction
(``DELETE /api/v3/eviction/tasks/{id}``) and every relocation off a drained host spends one.

Policies (Titus's semantics; the arithmetic is ours):

- ``availabilityPercentageLimit {percentageOfHealthyContainers: p}``: at least
  ``ceil(desired * p / 100)`` tasks stay healthy; quota = healthy - that;
- ``unhealthyTasksLimit {limitOfUnhealthyContainers: n}``: at most ``n`` of the desired
  tasks are not healthy (unhealthy, starting, or being moved); quota = n - (desired - healthy);
- ``relocationLimit {limit: n}``: each task index is moved at most ``n`` times; quota = the
  live tasks whose index has been moved fewer than ``n`` times;
- ``selfManaged {relocationTimeMs}``: the owner moves its tasks itself (the eviction API
  allows every eviction); a drain waits ``relocationTimeMs`` for it, then moves what is left
  under the default budget of the job type.

*Healthy*: Started, and passing its health check if the job has one (``health`` reported
``healthy``); without a health check, Started and not reported unhealthy. A task being moved
(its relocation begun, or KillInitiated) is not counted healthy. *Desired*: a service job's
desired count; a batch job's live tasks.

A budget without a rate is unlimited in rate (Titus's clients send such budgets). Rates count
the disruptions (evictions and relocations begun) of the job in a trailing window, read from the ``disruptions`` table, so they hold across a master restart:

- ``rateUnlimited``: no limit;
- ``ratePercentagePerHour {maxPercentageOfContainersRelocatedInHour: x}``: ``x`` percent of
  desired per hour;
- ``ratePerInterval {intervalMs, limitPerInterval}``: a fixed count per interval;
- ``ratePercentagePerInterval {intervalMs, percentageLimitPerInterval}``: a percentage of
  desired per interval.

A percentage rate allows ``floor(desired * pct / 100)`` per window, but at least 1 when the
percentage is above 0: rounding down would forbid a small job from ever being moved.

Time windows: ``[{days: [Monday..Sunday], hourlyTimeWindows: [{startHour, endHour}],
timeZone}]``; the budget allows disruptions when ``now`` falls in any window (none given:
always). No days means every day, no hours the whole day; ``startHour`` is included,
``endHour`` excluded; the time zone is an IANA name (``America/Los_Angeles``) or one of the
abbreviations Titus clients send (``UTC``, ``PST`` ...), UTC if none.

Defaults (a job submitted without a budget gets its type's; a job stored before budgets
existed gets it when read back), documented in docs/budgets.md:

- service: ``availabilityPercentageLimit 95%`` with ``ratePercentagePerInterval 5% per
  10 minutes`` (a service keeps nearly all of its capacity and is moved gradually, as the
  default Titus clients such as Spinnaker propose);
- batch: ``relocationLimit 1`` with ``rateUnlimited`` (a batch task has a finite runtime: it
  may be moved once, then it is left to finish rather than lose its work again and again).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Iterable, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from titus.boundary import Problem
from titus.master.model import DisruptionBudget

POLICIES = ("selfManaged", "availabilityPercentageLimit", "unhealthyTasksLimit",
            "relocationLimit")
RATES = ("rateUnlimited", "ratePercentagePerHour", "ratePerInterval",
         "ratePercentagePerInterval")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# time zone abbreviations Titus clients send, and the zone each stands for
ZONE_ALIASES = {"UTC": "UTC", "GMT": "UTC", "Z": "UTC", "PST": "America/Los_Angeles",
                "PDT": "America/Los_Angeles", "PT": "America/Los_Angeles",
                "EST": "America/New_York", "EDT": "America/New_York",
                "CET": "Europe/Berlin", "CEST": "Europe/Berlin"}
MAX_INTERVAL_MS = 24 * 3600 * 1000  # a rate window longer than a day is a mistake
MAX_RELOCATION_TIME_MS = 7 * 24 * 3600 * 1000  # the maximum Titus's doc says is enforced
MAX_COUNT = 4_294_967_295  # uint32, as Titus
HOUR_MS = 3600 * 1000

SERVICE_DEFAULT = {"availabilityPercentageLimit": {"percentageOfHealthyContainers": 95.0},
                   "ratePercentagePerInterval": {"intervalMs": 600_000,
                                                 "percentageLimitPerInterval": 5.0}}
BATCH_DEFAULT = {"relocationLimit": {"limit": 1}, "rateUnlimited": {}}


def default_budget(batch: bool) -> DisruptionBudget:
    """The budget a job of this type gets when it gives none (a fresh copy)."""
    return DisruptionBudget.model_validate(BATCH_DEFAULT if batch else SERVICE_DEFAULT)


def policy_of(budget: DisruptionBudget) -> Optional[str]:
    """The name of the budget's policy (None if it has none: refused by validation)."""
    return next((p for p in POLICIES if getattr(budget, p) is not None), None)


def rate_of(budget: DisruptionBudget) -> str:
    """The name of the budget's rate (``rateUnlimited`` when it gives none)."""
    return next((r for r in RATES if getattr(budget, r) is not None), "rateUnlimited")


def zone_of(name: Optional[str]) -> ZoneInfo:
    """The time zone a window names (UTC for none); ValueError for an unknown one."""
    if not name:
        return ZoneInfo("UTC")
    key = ZONE_ALIASES.get(name.upper(), name)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        raise ValueError("unknown time zone") from None


@lru_cache(maxsize=1)
def _iana_names() -> frozenset:
    # "localtime" names this machine's own zone: two masters could read one budget apart
    return frozenset(available_timezones()) - {"localtime"}


def _iana_name(name: str) -> bool:
    """Whether a window's zone is an alias or an IANA name the same on every machine (not
    ``localtime``, nor a file of the zone database such as ``right/UTC``)."""
    return name.upper() in ZONE_ALIASES or name in _iana_names()


# ---------------------------------------------------------------------------- validation
def _bound(problems: list, path: str, value, low, high) -> None:
    if not (low <= value <= high):  # also false for NaN
        problems.append(Problem(path, f"must be between {low} and {high}", value))


def _some(problems: list, path: str, value, high) -> None:
    # a rate of 0 lets no task move, ever: no drain of the job's hosts could end and the
    # autoscaler could never remove them (a time window is the way to pause disruptions)
    if value == 0:
        problems.append(Problem(path, "must be above 0: a rate of 0 would never let a task "
                                "move (use timeWindows to allow disruptions only at times)",
                                value))
    else:
        _bound(problems, path, value, 0, high)


def _one_of(problems: list, budget: DisruptionBudget, names: tuple, path: str,
            what: str) -> None:
    given = [n for n in names if getattr(budget, n) is not None]
    if len(given) != 1:
        problems.append(Problem(path, f"give exactly one {what}: one of {', '.join(names)}",
                                given))


def check_budget(budget: DisruptionBudget, batch: bool,
                 path: str = "disruptionBudget") -> list[Problem]:
    """Every problem with a budget, each naming its field: exactly one policy and one rate,
    numbers in bounds (percentages 0..100, counts 0..2^32-1, intervals 1 ms..1 day; a rate
    above 0), days
    and time zones known, hours 0..24 with start before end. ``relocationLimit`` is for
    batch jobs only, as in Titus."""
    problems: list[Problem] = []
    _one_of(problems, budget, POLICIES, path, "policy")
    rates = [n for n in RATES if getattr(budget, n) is not None]
    if len(rates) > 1:  # none is rateUnlimited (clients of Titus send budgets without one)
        problems.append(Problem(path, f"give at most one rate: one of {', '.join(RATES)}",
                                rates))
    b = budget
    if b.selfManaged is not None:
        _bound(problems, f"{path}.selfManaged.relocationTimeMs", b.selfManaged.relocationTimeMs,
               0, MAX_RELOCATION_TIME_MS)
    if b.availabilityPercentageLimit is not None:
        _bound(problems, f"{path}.availabilityPercentageLimit.percentageOfHealthyContainers",
               b.availabilityPercentageLimit.percentageOfHealthyContainers, 0, 100)
    if b.unhealthyTasksLimit is not None:
        _bound(problems, f"{path}.unhealthyTasksLimit.limitOfUnhealthyContainers",
               b.unhealthyTasksLimit.limitOfUnhealthyContainers, 0, MAX_COUNT)
    if b.relocationLimit is not None:
        _bound(problems, f"{path}.relocationLimit.limit", b.relocationLimit.limit, 0, MAX_COUNT)
        if not batch:
            problems.append(Problem(f"{path}.relocationLimit",
                                    "is for batch jobs (a service task has no end)"))
    if b.ratePercentagePerHour is not None:
        _some(problems, f"{path}.ratePercentagePerHour.maxPercentageOfContainersRelocatedInHour",
              b.ratePercentagePerHour.maxPercentageOfContainersRelocatedInHour, 100)
    if b.ratePerInterval is not None:
        _bound(problems, f"{path}.ratePerInterval.intervalMs", b.ratePerInterval.intervalMs,
               1, MAX_INTERVAL_MS)
        _some(problems, f"{path}.ratePerInterval.limitPerInterval",
              b.ratePerInterval.limitPerInterval, MAX_COUNT)
    if b.ratePercentagePerInterval is not None:
        r = b.ratePercentagePerInterval
        _bound(problems, f"{path}.ratePercentagePerInterval.intervalMs", r.intervalMs, 1,
               MAX_INTERVAL_MS)
        _some(problems, f"{path}.ratePercentagePerInterval.percentageLimitPerInterval",
              r.percentageLimitPerInterval, 100)
    windows = b.timeWindows or []
    if len(windows) > 64:
        problems.append(Problem(f"{path}.timeWindows", "at most 64 windows", len(windows)))
    for i, window in enumerate(windows[:64]):
        where = f"{path}.timeWindows[{i}]"
        if len(window.days) > len(DAYS):
            problems.append(Problem(f"{where}.days", f"at most {len(DAYS)} days",
                                    len(window.days)))
        for j, day in enumerate(window.days[:len(DAYS)]):
            if day.capitalize() not in DAYS:
                problems.append(Problem(f"{where}.days[{j}]", "must be a day of the week, "
                                        "Monday to Sunday", day))
        if len(window.hourlyTimeWindows) > 24:
            problems.append(Problem(f"{where}.hourlyTimeWindows", "at most 24 windows"))
        for j, hours in enumerate(window.hourlyTimeWindows[:24]):
            at = f"{where}.hourlyTimeWindows[{j}]"
            _bound(problems, f"{at}.startHour", hours.startHour, 0, 23)
            _bound(problems, f"{at}.endHour", hours.endHour, 1, 24)
            if hours.startHour >= hours.endHour:
                problems.append(Problem(at, "startHour must be before endHour",
                                        {"startHour": hours.startHour,
                                         "endHour": hours.endHour}))
        if window.timeZone is not None:
            if len(window.timeZone) > 64:
                problems.append(Problem(f"{where}.timeZone", "unknown time zone (too long)"))
            else:
                try:
                    zone_of(window.timeZone)
                    known = _iana_name(window.timeZone)
                except ValueError:
                    known = False
                if not known:
                    problems.append(Problem(f"{where}.timeZone", "unknown time zone (an IANA "
                                            "name such as Europe/Berlin, or UTC, PST ...)",
                                            window.timeZone))
    return problems


# ---------------------------------------------------------------------------- quotas
@dataclass(frozen=True)
class Quota:
    """How many tasks may be disrupted now (``count``), and what limits it (``reason``)."""

    count: int
    reason: str


def in_windows(budget: DisruptionBudget, now: float) -> bool:
    """Whether ``now`` (epoch seconds) falls in one of the budget's time windows (True when
    it has none)."""
    if not budget.timeWindows:  # None or []
        return True
    for window in budget.timeWindows:
        local = datetime.fromtimestamp(now, timezone.utc).astimezone(zone_of(window.timeZone))
        days = {d.capitalize() for d in window.days}
        if days and DAYS[local.weekday()] not in days:
            continue
        hours = window.hourlyTimeWindows
        if not hours or any(h.startHour <= local.hour < h.endHour for h in hours):
            return True
    return False


def _percent_of(desired: int, pct: float) -> int:
    if pct <= 0:
        return 0
    return max(1, math.floor(desired * pct / 100.0 + 1e-9))


def rate_limit(budget: DisruptionBudget, desired: int) -> tuple[Optional[int], float, str]:
    """(disruptions allowed per window or None for no limit, window seconds, its name)."""
    if budget.ratePercentagePerHour is not None:
        pct = budget.ratePercentagePerHour.maxPercentageOfContainersRelocatedInHour
        return _percent_of(desired, pct), HOUR_MS / 1000.0, f"{pct:g}% per hour"
    if budget.ratePerInterval is not None:
        r = budget.ratePerInterval
        return (r.limitPerInterval, r.intervalMs / 1000.0,
                f"{r.limitPerInterval} per {r.intervalMs / 1000.0:g}s")
    if budget.ratePercentagePerInterval is not None:
        r = budget.ratePercentagePerInterval
        return (_percent_of(desired, r.percentageLimitPerInterval), r.intervalMs / 1000.0,
                f"{r.percentageLimitPerInterval:g}% per {r.intervalMs / 1000.0:g}s")
    return None, 0.0, "unlimited"


def quota(budget: DisruptionBudget, *, desired: int, healthy: int, live: int,
          recent: Iterable[float], now: float, movable: Optional[int] = None,
          in_flight: Optional[int] = None) -> Quota:
    """The quota of a job with this ``budget``.

    ``desired``: the tasks the job should have; ``healthy``: of its tasks, those healthy and
    not being moved; ``live``: its tasks on hosts (the most that could be disrupted);
    ``recent``: when its disruptions happened (epoch seconds, any order); ``movable``: for
    ``relocationLimit``, its live tasks whose index may still be moved; ``now``: epoch
    seconds. ``in_flight``: for a make-before-break relocation, the job's relocations under
    way (None: an eviction, which kills first). Returns a count >= 0 and the reason of the
    binding limit.

    A relocation starts its replacement before the old task goes, so it never takes the job
    below its desired count: when every desired task is healthy and none is being moved, one
    relocation may begin even where the policy allows none (95% of a 2-task job), so a drain
    always ends. The rate and the time windows still apply.
    """
    if not in_windows(budget, now):
        return Quota(0, "outside the budget's time windows")
    limits: list[tuple[int, str]] = [(max(0, live), f"{max(0, live)} tasks on hosts")]
    if budget.availabilityPercentageLimit is not None:
        pct = budget.availabilityPercentageLimit.percentageOfHealthyContainers
        floor_healthy = math.ceil(desired * pct / 100.0 - 1e-9)
        limits.append((healthy - floor_healthy,
                       f"availabilityPercentageLimit {pct:g}%: {healthy} of {desired} healthy, "
                       f"{floor_healthy} must stay"))
    elif budget.unhealthyTasksLimit is not None:
        n = budget.unhealthyTasksLimit.limitOfUnhealthyContainers
        unhealthy = max(0, desired - healthy)
        limits.append((n - unhealthy, f"unhealthyTasksLimit {n}: {unhealthy} of {desired} "
                                      "not healthy"))
    elif budget.relocationLimit is not None:
        n = budget.relocationLimit.limit
        limits.append((live if movable is None else movable,
                       f"relocationLimit {n}: tasks moved {n} times already stay"))
    health_policy = (budget.availabilityPercentageLimit is not None
                     or budget.unhealthyTasksLimit is not None)
    if health_policy and in_flight == 0 and healthy >= desired and limits[-1][0] < 1:
        limits[-1] = (1, limits[-1][1] + "; one make-before-break relocation at a time")
    allowed, window, name = rate_limit(budget, desired)
    if allowed is not None:
        used = sum(1 for t in recent if t > now - window)
        limits.append((allowed - used, f"rate {name}: {used} disruptions in the last "
                                       f"{window:g}s"))
    count, reason = min(limits, key=lambda item: item[0])
    return Quota(max(0, count), reason if count <= 0 else f"{max(0, count)} allowed ({reason})")
