"""Disruption budgets: the quota arithmetic of every policy and rate, time windows on an
injected clock, defaults, and hostile budget bodies (``titus.master.budget``)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from titus.boundary import SpecError
from titus.master.budget import (check_budget, default_budget, in_windows, quota, rate_of,
                                 policy_of)
from titus.master.model import DisruptionBudget
from titus.master.validation import parse_job


def budget(**data) -> DisruptionBudget:
    return DisruptionBudget.model_validate(data)


def at(text: str) -> float:
    """Epoch seconds of an ISO time in UTC ("2026-12-07T10:30")."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


MONDAY_NOON = at("2026-12-07T12:00")  # a Monday


def q(b, *, desired=10, healthy=10, live=10, recent=(), now=MONDAY_NOON, movable=None,
      in_flight=None):
    return quota(b, desired=desired, healthy=healthy, live=live, recent=recent, now=now,
                 movable=movable, in_flight=in_flight)


# ---------------------------------------------------------------------------- policies
def test_availability_percentage_keeps_the_healthy_floor():
    b = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 80},
               rateUnlimited={})
    assert q(b).count == 2  # 8 of 10 must stay
    assert q(b, healthy=9).count == 1
    assert q(b, healthy=8).count == 0
    assert q(b, healthy=7).count == 0  # never negative
    assert "availabilityPercentageLimit 80%" in q(b, healthy=8).reason
    # the floor rounds up: 95% of 6 is 5.7, so 6 must stay
    b95 = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 95})
    assert q(b95, desired=6, healthy=6, live=6).count == 0
    assert q(b95, desired=100, healthy=100, live=100).count == 5
    # exact percentages do not lose a task to floating point (70% of 10 is 7, not 7.000001)
    b70 = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 70})
    assert q(b70).count == 3


def test_unhealthy_tasks_limit_counts_what_is_not_healthy():
    b = budget(unhealthyTasksLimit={"limitOfUnhealthyContainers": 3})
    assert q(b).count == 3
    assert q(b, healthy=8).count == 1
    assert q(b, healthy=7).count == 0
    assert q(b, healthy=5).count == 0


def test_relocation_limit_counts_the_movable_tasks():
    b = budget(relocationLimit={"limit": 1}, rateUnlimited={})
    assert q(b, movable=4).count == 4
    assert q(b, movable=0).count == 0


def test_self_managed_is_only_bounded_by_the_rate_and_the_tasks_there_are():
    b = budget(selfManaged={"relocationTimeMs": "60000"})
    assert q(b, live=7).count == 7
    b = budget(selfManaged={"relocationTimeMs": 0}, ratePerInterval={"intervalMs": 1000,
                                                                      "limitPerInterval": 2})
    assert q(b, live=7).count == 2


def test_no_more_than_the_tasks_on_hosts():
    b = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 0})
    assert q(b, live=3, healthy=3).count == 3


# ---------------------------------------------------------------------------- rates
def test_rate_per_interval_counts_the_trailing_window():
    b = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 0},
               ratePerInterval={"intervalMs": "60000", "limitPerInterval": 3})
    now = MONDAY_NOON
    assert q(b, now=now).count == 3
    assert q(b, recent=[now - 10, now - 20], now=now).count == 1
    assert q(b, recent=[now - 10, now - 20, now - 30], now=now).count == 0
    assert "rate 3 per 60s" in q(b, recent=[now - 1] * 3, now=now).reason
    # disruptions older than the window no longer count
    assert q(b, recent=[now - 61, now - 120, now - 5], now=now).count == 2


def test_rate_percentage_per_hour():
    b = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 0},
               ratePercentagePerHour={"maxPercentageOfContainersRelocatedInHour": 20})
    now = MONDAY_NOON
    assert q(b, now=now).count == 2  # 20% of 10
    assert q(b, recent=[now - 3599], now=now).count == 1
    assert q(b, recent=[now - 3601, now - 7200], now=now).count == 2
    # a small job may still move one an hour (rounding down would forbid it forever)
    assert q(b, desired=3, healthy=3, live=3, now=now).count == 1
    b0 = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 0},
                ratePercentagePerHour={"maxPercentageOfContainersRelocatedInHour": 0})
    assert q(b0).count == 0


def test_rate_percentage_per_interval_follows_the_desired_size():
    b = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 0},
               ratePercentagePerInterval={"intervalMs": 600000, "percentageLimitPerInterval": 5})
    assert q(b, desired=100, healthy=100, live=100).count == 5  # Titus's own example
    assert q(b, desired=200, healthy=200, live=200).count == 10


def test_policy_and_rate_combine_to_the_smaller():
    b = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 50},
               ratePerInterval={"intervalMs": 60000, "limitPerInterval": 2})
    assert q(b).count == 2  # the rate binds (the policy would allow 5)
    assert "rate" in q(b).reason
    assert q(b, healthy=6).count == 1  # the policy binds
    assert "availabilityPercentageLimit" in q(b, healthy=6).reason


def test_no_rate_is_unlimited():
    b = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 50})
    assert rate_of(b) == "rateUnlimited" and policy_of(b) == "availabilityPercentageLimit"
    assert q(b, recent=[MONDAY_NOON] * 100).count == 5


# ---------------------------------------------------------------------------- time windows
def test_time_windows_on_an_injected_clock():
    b = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 0},
               timeWindows=[{"days": ["Monday", "Tuesday"],
                             "hourlyTimeWindows": [{"startHour": 10, "endHour": 16}],
                             "timeZone": "UTC"}])
    assert q(b, now=at("2026-12-07T10:00")).count == 10  # Monday 10:00, start included
    assert q(b, now=at("2026-12-07T15:59")).count == 10
    assert q(b, now=at("2026-12-07T16:00")).count == 0  # end excluded
    assert q(b, now=at("2026-12-07T09:59")).count == 0
    assert q(b, now=at("2026-12-09T12:00")).count == 0  # Wednesday
    assert q(b, now=at("2026-12-09T12:00")).reason == "outside the budget's time windows"


def test_time_windows_in_another_time_zone():
    b = budget(selfManaged={}, timeWindows=[
        {"days": ["Monday"], "hourlyTimeWindows": [{"startHour": 9, "endHour": 17}],
         "timeZone": "PST"}])
    # Monday 18:00 UTC is Monday 10:00 in Los Angeles; Monday 10:00 UTC is Monday 02:00 there
    assert in_windows(b, at("2026-12-07T18:00"))
    assert not in_windows(b, at("2026-12-07T10:00"))
    # Tuesday 03:00 UTC is still Monday 19:00 there: outside the hours
    assert not in_windows(b, at("2026-12-08T03:00"))


def test_windows_without_days_or_hours_and_several_windows():
    every_day = budget(selfManaged={}, timeWindows=[{"hourlyTimeWindows": [
        {"startHour": 0, "endHour": 1}]}])
    assert in_windows(every_day, at("2026-12-10T00:30"))
    assert not in_windows(every_day, at("2026-12-10T01:30"))
    whole_day = budget(selfManaged={}, timeWindows=[{"days": ["Saturday"]},
                                                   {"days": ["Sunday"]}])
    assert in_windows(whole_day, at("2026-12-12T23:00"))  # Saturday
    assert in_windows(whole_day, at("2026-12-13T01:00"))  # Sunday
    assert not in_windows(whole_day, at("2026-12-14T01:00"))  # Monday
    assert in_windows(budget(selfManaged={}, timeWindows=[]), MONDAY_NOON)


# ---------------------------------------------------------------------------- defaults
def _job(kind: str, **extra) -> dict:
    spec = {"batch": {"size": 2}} if kind == "batch" else {
        "service": {"capacity": {"min": 0, "desired": 2, "max": 4}}}
    return {"applicationName": "a", "container": {"image": {"name": "busybox"}}, **spec, **extra}


def test_defaults_per_job_type_are_stored_and_echoed():
    service = parse_job(_job("service"))
    assert service.wire()["disruptionBudget"] == {
        "availabilityPercentageLimit": {"percentageOfHealthyContainers": 95.0},
        "ratePercentagePerInterval": {"intervalMs": "600000", "percentageLimitPerInterval": 5.0}}
    batch = parse_job(_job("batch"))
    assert batch.wire()["disruptionBudget"] == {"relocationLimit": {"limit": 1},
                                                "rateUnlimited": {}}
    assert not check_budget(default_budget(True), True)
    assert not check_budget(default_budget(False), False)


def test_a_given_budget_is_kept_as_given():
    data = _job("service", disruptionBudget={
        "availabilityPercentageLimit": {"percentageOfHealthyContainers": 80},
        "ratePerInterval": {"intervalMs": "3600000", "limitPerInterval": "4"},
        "timeWindows": [{"days": ["Friday"], "hourlyTimeWindows": [
            {"startHour": 1, "endHour": 2}], "timeZone": "America/New_York"}],
        "containerHealthProviders": [{"name": "eureka"}]})
    wire = parse_job(data).wire()["disruptionBudget"]
    assert wire["ratePerInterval"] == {"intervalMs": "3600000", "limitPerInterval": 4}
    assert wire["containerHealthProviders"] == [{"name": "eureka"}]
    assert wire["timeWindows"][0]["timeZone"] == "America/New_York"


# ---------------------------------------------------------------------------- hostile bodies
HOSTILE = [
    ({"availabilityPercentageLimit": {"percentageOfHealthyContainers": 101}},
     "disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers"),
    ({"availabilityPercentageLimit": {"percentageOfHealthyContainers": -1}},
     "disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers"),
    ({"availabilityPercentageLimit": {"percentageOfHealthyContainers": "NaN"}},
     "disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers"),
    ({"availabilityPercentageLimit": {"percentageOfHealthyContainers": "1e999"}},
     "disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers"),
    ({"availabilityPercentageLimit": {"percentageOfHealthyContainers": "Infinity"}},
     "disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers"),
    ({"availabilityPercentageLimit": {"percentageOfHealthyContainers": [1]}},
     "disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers"),
    ({"unhealthyTasksLimit": {"limitOfUnhealthyContainers": -3}},
     "disruptionBudget.unhealthyTasksLimit.limitOfUnhealthyContainers"),
    ({"unhealthyTasksLimit": {"limitOfUnhealthyContainers": 2 ** 40}},
     "disruptionBudget.unhealthyTasksLimit.limitOfUnhealthyContainers"),
    ({"unhealthyTasksLimit": {"limitOfUnhealthyContainers": 1.5}},
     "disruptionBudget.unhealthyTasksLimit.limitOfUnhealthyContainers"),
    ({"selfManaged": {"relocationTimeMs": "-1"}},
     "disruptionBudget.selfManaged.relocationTimeMs"),
    ({"selfManaged": {"relocationTimeMs": "99999999999999999999999"}},
     "disruptionBudget.selfManaged.relocationTimeMs"),
    ({}, "disruptionBudget"),  # no policy
    ({"selfManaged": {}, "availabilityPercentageLimit": {"percentageOfHealthyContainers": 5}},
     "disruptionBudget"),  # two policies
    ({"selfManaged": {}, "rateUnlimited": {}, "ratePerInterval": {
        "intervalMs": 1, "limitPerInterval": 1}}, "disruptionBudget"),  # two rates
    ({"selfManaged": {}, "ratePerInterval": {"intervalMs": 0, "limitPerInterval": 1}},
     "disruptionBudget.ratePerInterval.intervalMs"),
    ({"selfManaged": {}, "ratePerInterval": {"intervalMs": "1e3", "limitPerInterval": 1}},
     "disruptionBudget.ratePerInterval.intervalMs"),
    ({"selfManaged": {}, "ratePercentagePerInterval": {"intervalMs": 10,
                                                       "percentageLimitPerInterval": 100.5}},
     "disruptionBudget.ratePercentagePerInterval.percentageLimitPerInterval"),
    ({"selfManaged": {}, "ratePercentagePerHour": {
        "maxPercentageOfContainersRelocatedInHour": -0.1}},
     "disruptionBudget.ratePercentagePerHour.maxPercentageOfContainersRelocatedInHour"),
    # a rate of 0 (also by leaving the field out) never lets a task move: no drain of its
    # hosts could ever end, and the autoscaler could never remove them
    ({"selfManaged": {}, "ratePerInterval": {"intervalMs": 60000}},
     "disruptionBudget.ratePerInterval.limitPerInterval"),
    ({"selfManaged": {}, "ratePerInterval": {"intervalMs": 60000, "limitPerInterval": 0}},
     "disruptionBudget.ratePerInterval.limitPerInterval"),
    ({"selfManaged": {}, "ratePercentagePerHour": {}},
     "disruptionBudget.ratePercentagePerHour.maxPercentageOfContainersRelocatedInHour"),
    ({"selfManaged": {}, "ratePercentagePerInterval": {"intervalMs": 60000,
                                                       "percentageLimitPerInterval": 0}},
     "disruptionBudget.ratePercentagePerInterval.percentageLimitPerInterval"),
    # the machine's own zone (two masters could disagree), files of the zone database
    ({"selfManaged": {}, "timeWindows": [{"timeZone": "localtime"}]},
     "disruptionBudget.timeWindows[0].timeZone"),
    ({"selfManaged": {}, "timeWindows": [{"timeZone": "right/UTC"}]},
     "disruptionBudget.timeWindows[0].timeZone"),
    ({"selfManaged": {}, "timeWindows": [{"timeZone": "posixrules"}]},
     "disruptionBudget.timeWindows[0].timeZone"),
    ({"selfManaged": {}, "timeWindows": [{"days": ["Monday"] * 100_000}]},
     "disruptionBudget.timeWindows[0].days"),
    ({"selfManaged": {}, "timeWindows": [{"timeZone": "Mars/Olympus"}]},
     "disruptionBudget.timeWindows[0].timeZone"),
    ({"selfManaged": {}, "timeWindows": [{"timeZone": "../../etc/passwd"}]},
     "disruptionBudget.timeWindows[0].timeZone"),
    ({"selfManaged": {}, "timeWindows": [{"timeZone": "x" * 5000}]},
     "disruptionBudget.timeWindows[0].timeZone"),
    ({"selfManaged": {}, "timeWindows": [{"days": ["Funday"]}]},
     "disruptionBudget.timeWindows[0].days[0]"),
    ({"selfManaged": {}, "timeWindows": [{"hourlyTimeWindows": [
        {"startHour": 16, "endHour": 10}]}]}, "disruptionBudget.timeWindows[0].hourlyTimeWindows[0]"),
    ({"selfManaged": {}, "timeWindows": [{"hourlyTimeWindows": [
        {"startHour": -1, "endHour": 25}]}]},
     "disruptionBudget.timeWindows[0].hourlyTimeWindows[0].startHour"),
    ({"selfManaged": {}, "timeWindows": "Monday"}, "disruptionBudget.timeWindows"),
    ({"relocationLimit": {"limit": 1}}, "disruptionBudget.relocationLimit"),  # a service job
    ("all of it", "disruptionBudget"),
]


@pytest.mark.parametrize("given,field", HOSTILE, ids=[json.dumps(h[0])[:60] for h in HOSTILE])
def test_hostile_budgets_are_refused_naming_the_field(given, field):
    with pytest.raises(SpecError) as err:
        parse_job(_job("service", disruptionBudget=given))
    fields = [p.field for p in err.value.problems]
    assert field in fields, fields
    json.dumps(err.value.problems[0].value)  # the value is plain data


def test_a_negative_relocation_limit_on_a_batch_job():
    with pytest.raises(SpecError) as err:
        parse_job(_job("batch", disruptionBudget={"relocationLimit": {"limit": -1}}))
    assert "disruptionBudget.relocationLimit.limit" in [p.field for p in err.value.problems]


def test_a_fully_healthy_job_may_always_begin_one_relocation():
    b95 = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 95})
    # an eviction (break-before-make) of a 2-task job is never allowed under 95% ...
    assert q(b95, desired=2, healthy=2, live=2).count == 0
    # ... a relocation (make-before-break) may begin one at a time, while all are healthy
    assert q(b95, desired=2, healthy=2, live=2, in_flight=0).count == 1
    assert q(b95, desired=2, healthy=1, live=1, in_flight=1).count == 0
    assert q(b95, desired=2, healthy=1, live=2, in_flight=0).count == 0  # one is unhealthy
    # not past the relocation limit, the rate or the time windows
    limit = budget(relocationLimit={"limit": 1})
    assert q(limit, movable=0, in_flight=0).count == 0
    rated = budget(availabilityPercentageLimit={"percentageOfHealthyContainers": 95},
                   ratePerInterval={"intervalMs": 1000, "limitPerInterval": 1})
    assert q(rated, recent=[MONDAY_NOON], in_flight=0).count == 0
