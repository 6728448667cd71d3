"""Drains, relocation and default spread on a real platform: a ``titus master`` process and
sim agent processes over HTTP.

The availability of a service job is sampled while its hosts drain: it never falls below what
its budget keeps. A drain is stored: a master killed mid-drain goes on after its restart.
"""
from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.integration.conftest import FAST_MASTER_ENV
from tests.integration.platform import Platform, batch_job, reason, service_job, state


@pytest.fixture
def sqlite_platform(tmp_path):
    """A running master on SQLite with no agents yet (the store-specific paths are covered by
    the restart test, on both stores)."""
    with Platform(tmp_path / "cluster", master_env=FAST_MASTER_ENV) as plat:
        plat.start_master()
        yield plat
        dead = plat.crashed()
        assert not dead, f"processes died during the test: {dead}\n{plat.log_tail('master.log')}"


def hosts_by_id(plat) -> dict:
    return {h["id"]: h for h in plat.api.get("/api/v3/hosts").json()["items"]}


def wait_hosts(plat, count: int) -> None:
    plat.wait_for(lambda: len(hosts_by_id(plat)) == count, 30, f"{count} hosts registered")


def live(plat, job_id) -> list[dict]:
    return [t for t in plat.tasks(job_id) if state(t) != "Finished"]


def drain(plat, host: str, **params) -> dict:
    r = plat.api.put(f"/api/v3/hosts/{host}/drain", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_drain_keeps_the_budgets_availability_and_empties_the_hosts(sqlite_platform):
    plat = sqlite_platform
    for i, zone in enumerate(("a", "b")):
        plat.start_agent(f"ag{i}", hosts=3, cpus=8, zones=(zone,))
    wait_hosts(plat, 6)
    desired = 10
    spec = service_job(desired, name="drained")
    spec["disruptionBudget"] = {"availabilityPercentageLimit": {
        "percentageOfHealthyContainers": 80}, "rateUnlimited": {}}
    job_id = plat.submit(spec)
    plat.wait_for(lambda: len(plat.running(job_id)) == desired, 30, "10 tasks started")
    before = {t["id"]: t["hostId"] for t in plat.running(job_id)}
    busiest = [h for h, _ in Counter(before.values()).most_common(2)]
    moved = {tid for tid, h in before.items() if h in busiest}
    assert len(moved) >= 2
    for host in busiest:
        drain(plat, host)
    lowest, deadline = desired, time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = plat.tasks(job_id)
        serving = [t for t in tasks if state(t) == "Started"]
        lowest = min(lowest, len(serving))
        left = sum(1 for t in tasks if t.get("hostId") in busiest and state(t) != "Finished")
        if left == 0:
            break
        time.sleep(0.05)
    assert lowest >= 8, f"availability fell to {lowest} of {desired}"
    hosts = hosts_by_id(plat)
    for host in busiest:
        assert hosts[host]["tasks"] == 0 and hosts[host]["drain"] is not None
    final = live(plat, job_id)
    assert len(final) == desired  # the desired count is kept: no extra, none missing
    assert all(t["hostId"] not in busiest for t in final)
    ended = [t for t in plat.tasks(job_id) if t["id"] in moved]
    assert all(state(t) == "Finished" and reason(t) == "relocated" for t in ended)
    # the host takes tasks again once undrained
    r = plat.api.delete(f"/api/v3/hosts/{busiest[0]}/drain")
    assert r.status_code == 200 and r.json()["draining"] is False


def test_a_drain_deadline_moves_batch_tasks_without_spending_retries(sqlite_platform):
    plat = sqlite_platform
    plat.start_agent("ag0", hosts=2, cpus=8, zones=("a",))
    wait_hosts(plat, 2)
    job_id = plat.submit(batch_job(3, duration=3600, retries=0, name="long-batch"))
    plat.wait_for(lambda: len(plat.running(job_id)) == 3, 30, "3 batch tasks started")
    host = plat.running(job_id)[0]["hostId"]
    on_host = {t["id"] for t in plat.running(job_id) if t["hostId"] == host}
    drain(plat, host)
    time.sleep(1.0)  # no deadline: they are left to finish
    assert {t["id"] for t in plat.running(job_id) if t["hostId"] == host} == on_host
    drain(plat, host, deadlineSec=1)
    plat.wait_for(lambda: hosts_by_id(plat)[host]["tasks"] == 0, 30, "the host emptied")
    plat.wait_for(lambda: len(plat.running(job_id)) == 3, 30, "3 batch tasks running again")
    for t in plat.running(job_id):
        assert t["hostId"] != host
    ended = [t for t in plat.tasks(job_id) if t["id"] in on_host]
    assert all(reason(t) == "relocated" for t in ended)
    assert state(plat.job(job_id)) == "Accepted"  # no retries were spent: the job goes on


def test_a_drain_survives_a_master_restart(platform):
    plat = platform
    plat.start_agent("ag0", hosts=2, cpus=8, zones=("a",))
    wait_hosts(plat, 2)
    spec = service_job(4, name="restarted", cpu=1.0)
    spec["attributes"] = {"titus.spread": "false"}  # all on one host
    spec["disruptionBudget"] = {"availabilityPercentageLimit": {
        "percentageOfHealthyContainers": 75}, "ratePerInterval": {"intervalMs": "600000",
                                                                  "limitPerInterval": 1}}
    job_id = plat.submit(spec)
    plat.wait_for(lambda: len(plat.running(job_id)) == 4, 30, "4 tasks started")
    host = plat.running(job_id)[0]["hostId"]
    drain(plat, host)
    # one relocation begins, then the rate (1 per 10 minutes) holds the rest
    plat.wait_for(lambda: sum(reason(t) == "relocated" for t in plat.tasks(job_id)) == 1, 30,
                  "one task relocated")
    plat.kill_master()
    plat.start_master()
    plat._api = None
    hosts = plat.wait_for(lambda: (h := hosts_by_id(plat)) and host in h and h, 30,
                          "the host back after the restart")
    assert hosts[host]["drain"] is not None  # still draining
    quota = plat.api.get(f"/api/v3/eviction/quotas/jobs/{job_id}").json()
    assert quota["quota"] == 0 and "rate" in quota["message"]  # the rate survived too
    time.sleep(1.0)
    assert sum(reason(t) == "relocated" for t in plat.tasks(job_id)) == 1  # still one
    assert len(live(plat, job_id)) == 4
    r = plat.api.post("/api/v3/jobs", json=service_job(1, name="later", cpu=7.0))
    later = r.json()["id"]
    plat.wait_for(lambda: len(plat.running(later)) == 1, 30, "a later job placed")
    assert plat.running(later)[0]["hostId"] != host  # the drained host takes nothing new


def test_service_replicas_spread_over_hosts_and_zones_unless_asked_not_to(sqlite_platform):
    plat = sqlite_platform
    for i, zone in enumerate(("a", "b", "c")):
        plat.start_agent(f"ag{i}", hosts=2, cpus=16, zones=(zone,))
    wait_hosts(plat, 6)
    zone_of = {h: x["attributes"].get("zone") for h, x in hosts_by_id(plat).items()}
    spread = plat.submit(service_job(6, name="spread"))
    plat.wait_for(lambda: len(plat.running(spread)) == 6, 30, "6 spread tasks started")
    on = [t["hostId"] for t in plat.running(spread)]
    assert len(set(on)) == 6, on
    assert Counter(zone_of[h] for h in on) == {"a": 2, "b": 2, "c": 2}
    spec = service_job(6, name="packed")
    spec["attributes"] = {"titus.spread": "false"}
    packed = plat.submit(spec)
    plat.wait_for(lambda: len(plat.running(packed)) == 6, 30, "6 packed tasks started")
    assert len({t["hostId"] for t in plat.running(packed)}) == 1
