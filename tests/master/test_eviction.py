"""Eviction and relocation on a master driven by hand (fake clock, scripted agents): quotas of
live jobs, evictions retried, make-before-break relocation off drained hosts, a batch drain's
deadline, and drains and rates surviving a restart."""
from __future__ import annotations

import pytest

from titus import states as S
from titus.master.auth import principal
from titus.master.errors import Forbidden, NotFound
from titus.master.validation import parse_job
from titus.protocol import TaskStatusMsg
from tests.master.conftest import ScriptedAgent, make_master


def service(desired, budget=None, health=False, spread=True):
    data = {"applicationName": "svc", "container": {"image": {"name": "nginx"}},
            "service": {"capacity": {"min": 0, "desired": desired, "max": 100}}}
    if budget is not None:
        data["disruptionBudget"] = budget
    if health:
        data["container"]["healthCheck"] = {"command": ["true"]}
    if not spread:
        data["attributes"] = {"titus.spread": "false"}
    return parse_job(data)


def batch(size, budget=None):
    data = {"applicationName": "b", "container": {"image": {"name": "busybox"}},
            "batch": {"size": size}}
    if budget is not None:
        data["disruptionBudget"] = budget
    return parse_job(data)


def live(master, job_id, state=None):
    job = master.jobs[job_id]
    return [t for t in job.tasks.values() if t.state != S.FINISHED
            and (state is None or t.state == state)]


def settle(master, agents, rounds=3):
    """Rounds of: place, agents start and end what they were told, reconcile."""
    for _ in range(rounds):
        master.scheduling.run_round(force=True)
        for a in agents:
            a.start_launched()
        master.reconciler.reconcile()
    for a in agents:
        a.start_launched()


def tick(master, agents, clock, seconds):
    """Let ``seconds`` pass, the agents heartbeating (so none is lost for silence)."""
    while seconds > 0:
        step = min(5.0, seconds)
        clock.advance(step)
        seconds -= step
        for a in agents:
            a.heartbeat()


AVAIL_50_RATE_1 = {"availabilityPercentageLimit": {"percentageOfHealthyContainers": 50},
                   "ratePerInterval": {"intervalMs": "60000", "limitPerInterval": 1}}


@pytest.fixture
def agents(master):
    out = [ScriptedAgent(master, f"a{i}", hosts=2, cpus=4, zones=("a", "b")) for i in range(2)]
    for a in out:
        a.register()
    return out


def test_quota_of_a_live_job_and_a_finished_one(master, agents, clock):
    job = master.submit_job(service(4, AVAIL_50_RATE_1))
    q = master.queries.eviction_quota(job.id, clock())
    assert q == {"reference": {"jobId": job.id}, "quota": 0, "message": q["message"]}
    assert "availabilityPercentageLimit" in q["message"]  # nothing runs yet: 0 healthy
    settle(master, agents)
    assert len(live(master, job.id, S.STARTED)) == 4
    assert master.queries.eviction_quota(job.id, clock())["quota"] == 1  # the rate binds
    with pytest.raises(NotFound):
        master.queries.eviction_quota("no-such-job", clock())


def test_eviction_spends_the_quota_and_a_retry_kills_nothing_more(master, agents, clock):
    job = master.submit_job(service(4, AVAIL_50_RATE_1))
    settle(master, agents)
    first, second = sorted(live(master, job.id), key=lambda t: t.seq)[:2]
    out = master.evict_task(first.id)
    assert out.allowed and out.code == "evicted"
    assert first.state == S.KILL_INITIATED and first.kill_reason == S.EVICTED
    again = master.evict_task(first.id)  # the client retried
    assert not again.allowed and again.code == "alreadyEvicted"
    kills = [o for a in agents for o in a.master.registry.take(a.id) if o.type == "kill"]
    assert [o.task_id for o in kills] == [first.id]  # one kill order, never two
    # the rate (1 per minute) is spent: the next eviction is refused with the reason
    refused = master.evict_task(second.id)
    assert not refused.allowed and refused.code == "quota" and "rate" in refused.reason
    # the evicted task ends and is replaced as usual, without spending user retries
    for a in agents:
        if first.id in a.running:
            a.running.pop(first.id)
            a.heartbeat([TaskStatusMsg(task_id=first.id, state="Finished", reason="killed")])
    assert first.state == S.FINISHED and first.reason_code == S.EVICTED
    replacement = [t for t in live(master, job.id) if t.resubmit_of == first.id][0]
    assert replacement.system_resubmit_number == 1 and replacement.user_retries_used == 0
    third = master.evict_task(first.id)  # long after: the task has finished
    assert not third.allowed and third.code == "alreadyEvicted"
    settle(master, agents)
    tick(master, agents, clock, 61)  # the window has passed
    assert master.evict_task(second.id).allowed
    # every eviction is recorded, in the store too
    assert {d.task_id for d in master.state.disruptions[job.id]} == {first.id, second.id}


def test_eviction_needs_the_owner_or_an_admin(master, agents):
    alice, bob = principal("alice", ["user"]), principal("bob", ["user"])
    job = master.submit_job(service(2, {"selfManaged": {}}), caller=alice)
    settle(master, agents)
    task = live(master, job.id)[0]
    with pytest.raises(Forbidden):
        master.evict_task(task.id, bob)
    assert master.evict_task(task.id, principal("root", ["admin"])).allowed
    with pytest.raises(NotFound):
        master.evict_task("no-such-task", alice)


def test_a_task_not_on_a_host_is_not_evicted(master, clock):
    job = master.submit_job(service(2, {"selfManaged": {}}))
    out = master.evict_task(live(master, job.id)[0].id)
    assert not out.allowed and out.code == "notOnHost"


def test_unhealthy_tasks_limit_and_health_checks(master, agents, clock):
    job = master.submit_job(service(4, {"unhealthyTasksLimit": {"limitOfUnhealthyContainers": 1}},
                                    health=True))
    settle(master, agents)
    # started but no health reported yet: none is healthy, nothing may go
    assert master.queries.eviction_quota(job.id, clock())["quota"] == 0
    for a in agents:
        a.heartbeat([TaskStatusMsg(task_id=t, state="Started", health="healthy")
                     for t in a.running])
    assert master.queries.eviction_quota(job.id, clock())["quota"] == 1


def test_relocation_limit_of_a_batch_job(master, agents, clock):
    job = master.submit_job(batch(2, {"relocationLimit": {"limit": 1}}))
    settle(master, agents)
    task = live(master, job.id)[0]
    assert master.evict_task(task.id).allowed
    settle(master, agents)
    replacement = [t for t in live(master, job.id) if t.idx == task.idx][0]
    out = master.evict_task(replacement.id)
    assert not out.allowed and out.code == "relocationLimit"
    assert replacement.user_retries_used == 0


def _host_of(master, job_id) -> str:
    return live(master, job_id, S.STARTED)[0].host_id


def test_drain_moves_service_tasks_make_before_break_at_the_budgets_pace(master, agents, clock):
    job = master.submit_job(service(4, {"availabilityPercentageLimit": {
        "percentageOfHealthyContainers": 75}, "rateUnlimited": {}}, spread=False))
    settle(master, agents)
    host = _host_of(master, job.id)
    on_host = [t.id for t in live(master, job.id) if t.host_id == host]
    assert len(on_host) == 4  # packed: titus.spread=false
    master.drain_hosts([host])
    assert master.queries.drain(host)["draining"]
    master.reconciler.reconcile()
    # one relocation at a time (75% of 4 = 3 must stay healthy); the old task still runs
    moving = [t for t in live(master, job.id) if t.relocates]
    assert len(moving) == 1 and moving[0].state == S.ACCEPTED
    old = master.tasks[moving[0].relocates]
    assert old.state == S.STARTED
    master.reconciler.reconcile()
    assert len([t for t in live(master, job.id) if t.relocates]) == 1  # still one
    # the replacement lands elsewhere, starts, then the old one is killed "relocated"
    master.scheduling.run_round(force=True)
    for a in agents:
        a.start_launched()
    assert moving[0].state == S.STARTED and moving[0].host_id != host
    master.reconciler.reconcile()
    assert old.state == S.KILL_INITIATED and old.kill_reason == S.RELOCATED
    for _ in range(12):
        settle(master, agents, rounds=1)
        started = live(master, job.id, S.STARTED)
        assert len(started) >= 3  # the budget's floor, every step of the way
    assert master.queries.drain(host)["tasks"] == 0
    started = live(master, job.id, S.STARTED)
    assert len(started) == 4 and all(t.host_id != host for t in started)
    assert len(live(master, job.id)) == 4  # the desired count is kept
    ended = [t for t in master.jobs[job.id].tasks.values() if t.state == S.FINISHED]
    assert sorted(t.reason_code for t in ended) == [S.RELOCATED] * 4
    # the host takes no new task while drained, and again once undrained
    master.undrain_hosts([host])
    assert not master.queries.drain(host)["draining"]


def test_a_replacement_that_dies_is_tried_again_and_the_job_does_not_grow(master, agents):
    job = master.submit_job(service(2, {"availabilityPercentageLimit": {
        "percentageOfHealthyContainers": 0}, "rateUnlimited": {}}, spread=False))
    settle(master, agents)
    host = _host_of(master, job.id)
    master.drain_hosts([host])
    master.reconciler.reconcile()
    replacements = [t for t in live(master, job.id) if t.relocates]
    assert len(replacements) == 2
    master.scheduling.run_round(force=True)
    for a in agents:
        a.start_launched()
    dying = replacements[0]
    for a in agents:
        if dying.id in a.running:
            a.finish(dying.id, exit_code=1)
    master.reconciler.reconcile()
    # not replaced as a failure of the job (its old task still serves), but moved again
    assert len([t for t in live(master, job.id) if not t.relocates or
                master.tasks.get(t.relocates) is None or
                master.tasks[t.relocates].state == S.FINISHED]) <= 2
    settle(master, agents, rounds=6)
    assert master.queries.drain(host)["tasks"] == 0
    assert len(live(master, job.id)) == 2


def test_self_managed_jobs_get_their_relocation_time(master, agents, clock):
    job = master.submit_job(service(2, {"selfManaged": {"relocationTimeMs": "60000"}},
                                    spread=False))
    settle(master, agents)
    host = _host_of(master, job.id)
    master.drain_hosts([host])
    master.reconciler.reconcile()
    assert not [t for t in live(master, job.id) if t.relocates]  # the owner's turn
    tick(master, agents, clock, 61)
    # then the service default applies (95%, 5% per 10 minutes): one make-before-break
    # relocation at a time, then the rate waits
    master.reconciler.reconcile()
    assert len([t for t in live(master, job.id) if t.relocates]) == 1
    settle(master, agents, rounds=4)
    assert master.queries.drain(host)["tasks"] == 1
    assert not [t for t in live(master, job.id) if t.relocates and t.state != S.STARTED]
    tick(master, agents, clock, 601)
    settle(master, agents, rounds=4)
    assert master.queries.drain(host)["tasks"] == 0
    assert len(live(master, job.id)) == 2


def test_batch_tasks_finish_unless_the_drain_has_a_deadline(master, agents, clock):
    job = master.submit_job(batch(2, {"relocationLimit": {"limit": 1}}))
    settle(master, agents)
    host = live(master, job.id)[0].host_id
    master.drain_hosts([host])
    settle(master, agents)
    assert all(t.state == S.STARTED for t in live(master, job.id) if t.host_id == host)
    master.drain_hosts([host], deadline_sec=30)
    assert master.state.drains[host].deadline == clock() + 30
    tick(master, agents, clock, 10)
    settle(master, agents, rounds=1)
    assert all(t.state == S.STARTED for t in live(master, job.id) if t.host_id == host)
    tick(master, agents, clock, 21)
    settle(master, agents)
    assert master.queries.drain(host)["tasks"] == 0
    ended = [t for t in master.jobs[job.id].tasks.values() if t.reason_code == S.RELOCATED]
    assert ended
    for t in live(master, job.id):
        assert t.host_id != host and t.user_retries_used == 0


def test_drain_of_an_unknown_host_is_404_and_undrain_of_a_busy_one_is_a_no_op(master, agents):
    with pytest.raises(NotFound):
        master.drain_hosts(["nowhere"])
    with pytest.raises(NotFound):
        master.undrain_hosts(["nowhere"])
    master.undrain_hosts([agents[0].hosts[0].host_id])
    assert master.drain_hosts(["nowhere"], strict=False) == []


def test_drains_and_rates_survive_a_restart(settings, clock, tmp_path):
    settings = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'm.db'}"})
    master = make_master(settings, clock)
    agent = ScriptedAgent(master, "a0", hosts=2, cpus=8)
    agent.register()
    job = master.submit_job(service(4, AVAIL_50_RATE_1, spread=False))
    settle(master, [agent])
    host = _host_of(master, job.id)
    master.drain_hosts([host], deadline_sec=100)
    evicted = live(master, job.id)[0]
    assert master.evict_task(evicted.id).allowed or True
    master.store.close()

    again = make_master(settings, clock)  # a new process on the same store
    try:
        drain = again.state.drains[host]
        assert drain.deadline == clock() + 100
        assert host in again.engine.held_off
        assert [d.task_id for d in again.state.disruptions[job.id]] == [evicted.id]
        # the rate is still spent after the restart
        assert "rate" in again.queries.eviction_quota(job.id, clock())["message"]
    finally:
        again.store.close()
