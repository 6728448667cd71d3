"""Crash-loop back-off: an index whose tasks keep failing soon after they start is restarted
after a growing delay (fake clock, scripted agent)."""
import json

import pytest
from fastapi.testclient import TestClient

from titus import states as S
from titus.master.app import create_app
from titus.master.config import MasterSettings
from titus.master.retry import Backoff, is_crash
from titus.master.store import Store
from titus.master.validation import parse_job
from titus.master.views import job_view, ms, task_view
from titus.protocol import TaskStatusMsg

from tests.master.conftest import ScriptedAgent, make_master

BASE, CAP, RESET = 1.0, 8.0, 60.0


def service_job(desired=1, retry=None, **container):
    spec = {"applicationName": "svc", "container": {"image": {"name": "nginx"}, **container},
            "service": {"capacity": {"min": 0, "desired": desired, "max": 100}}}
    if retry:
        spec["service"]["retryPolicy"] = retry
    return parse_job(spec)


def batch_job(retry):
    return parse_job({"applicationName": "b", "container": {"image": {"name": "busybox"}},
                      "batch": {"size": 1, "retryPolicy": retry}})


def backoff_settings(settings, **update):
    return settings.model_copy(update={"crash_backoff_base_sec": BASE,
                                       "crash_backoff_max_sec": CAP,
                                       "crash_backoff_reset_sec": RESET, **update})


@pytest.fixture
def master(settings, clock, tmp_path):
    m = make_master(backoff_settings(settings, store_url=f"sqlite:///{tmp_path / 'm.db'}"),
                    clock)
    yield m
    m.store.close()


def run(master, agent):
    """One scheduling round; the agent starts what it was sent. Returns the launched ids."""
    master.scheduling.run_round(force=True)
    return agent.start_launched()


def waiting(job):
    """The job's one task waiting for placement."""
    (task,) = [t for t in job.tasks.values() if t.state == S.ACCEPTED]
    return task


def crash(master, agent, clock, exit_code=1):
    """Start the job's one task and let it fail at once; returns the seconds its replacement
    waits (after checking it is not placed a moment earlier)."""
    (tid,) = run(master, agent)
    agent.finish(tid, exit_code=exit_code)
    task = master.tasks[tid]
    job = master.jobs[task.job_id]
    delay = waiting(job).retry_at - clock.now if waiting(job).retry_at else 0.0
    if delay > 0:
        clock.advance(delay - 0.01)
        assert run(master, agent) == []  # not before its time
        clock.advance(0.01)
    return delay


def test_backoff_rule():
    b = Backoff(BASE, CAP, RESET)
    assert [b.delay_sec(n) for n in range(7)] == [0, 1, 2, 4, 8, 8, 8]
    assert Backoff(0, CAP, RESET).delay_sec(5) == 0  # base 0: off
    assert b.failures_after(3, reason=S.FAILED, batch=False, healthy_sec=1) == 4
    assert b.failures_after(3, reason=S.FAILED, batch=False, healthy_sec=RESET) == 0
    assert b.failures_after(3, reason=S.LOST, batch=False, healthy_sec=1) == 3
    assert b.failures_after(3, reason=S.KILLED, batch=False, healthy_sec=1) == 3
    assert [r for r in S.REASONS if is_crash(r, batch=False)] == [
        S.NORMAL, S.FAILED, S.RUNTIME_LIMIT_EXCEEDED, S.INVALID_REQUEST, S.OOM, S.UNHEALTHY]
    assert not is_crash(S.NORMAL, batch=True)


def test_settings_defaults_and_environment():
    d = MasterSettings()
    assert (d.crash_backoff_base_sec, d.crash_backoff_max_sec, d.crash_backoff_reset_sec) == \
        (1.0, 300.0, 600.0)
    s = MasterSettings.from_env({"TITUS_CRASH_BACKOFF_BASE_SEC": "10",
                                 "TITUS_CRASH_BACKOFF_MAX_SEC": "60",
                                 "TITUS_CRASH_BACKOFF_RESET_SEC": "120"})
    assert (s.crash_backoff_base_sec, s.crash_backoff_max_sec, s.crash_backoff_reset_sec) == \
        (10.0, 60.0, 120.0)


def test_a_task_failing_at_start_waits_base_doubling_up_to_the_cap(master, agent, clock):
    job = master.submit_job(service_job())
    delays = [crash(master, agent, clock) for _ in range(6)]
    assert delays == pytest.approx([1, 2, 4, 8, 8, 8])
    assert waiting(job).consecutive_failures == 6
    assert len(run(master, agent)) == 1  # and it runs once its time has come


def test_a_healthy_run_longer_than_the_reset_clears_the_count(master, agent, clock):
    job = master.submit_job(service_job())
    for _ in range(3):
        crash(master, agent, clock)
    # a run shorter than the reset time is still a quick failure
    (tid,) = run(master, agent)
    clock.advance(RESET / 2)
    agent.finish(tid, exit_code=1)
    assert waiting(job).consecutive_failures == 4
    assert waiting(job).retry_at - clock.now == pytest.approx(CAP)
    clock.advance(CAP)
    # a run as long as the reset time: the loop is over, the replacement starts at once
    (tid,) = run(master, agent)
    clock.advance(RESET)
    agent.finish(tid, exit_code=1)
    assert (waiting(job).consecutive_failures, waiting(job).retry_at) == (0, 0.0)
    # counting from the start again
    assert [crash(master, agent, clock) for _ in range(2)] == pytest.approx([BASE, 2 * BASE])


def test_time_unhealthy_is_not_a_healthy_run(master, agent, clock):
    check = {"healthCheck": {"command": ["true"], "intervalSec": 1, "timeoutSec": 1,
                             "retries": 1}}
    job = master.submit_job(service_job(**check))
    (tid,) = run(master, agent)
    agent.heartbeat([TaskStatusMsg(task_id=tid, state="Started", health="unhealthy",
                                   host_id=agent.running[tid])])
    clock.advance(RESET * 2)  # running, but unhealthy all along
    agent.finish(tid, exit_code=1)
    assert waiting(job).consecutive_failures == 1
    assert waiting(job).retry_at - clock.now == pytest.approx(BASE)


def test_the_longer_of_policy_delay_and_backoff_wins(master, agent, clock):
    delayed = {"delayed": {"initialDelayMs": "5000", "delayMs": "5000", "retries": 10}}
    master.submit_job(service_job(retry=delayed))
    # back-off 1, 2, 4, 8, 8 against the policy's 5 s
    assert [crash(master, agent, clock) for _ in range(5)] == pytest.approx([5, 5, 5, 8, 8])


def test_batch_retries_back_off_too(master, agent, clock):
    policy = {"exponentialBackOff": {"initialDelayMs": "3000", "maxDelayIntervalMs": "3000",
                                     "retries": 4}}
    job = master.submit_job(batch_job(policy))
    # back-off 1, 2, 4, 8 against the policy's 3 s; the fifth failure spends the retries
    assert [crash(master, agent, clock) for _ in range(4)] == pytest.approx([3, 3, 4, 8])
    (tid,) = run(master, agent)
    agent.finish(tid, exit_code=1)
    done, archived = master.get_job(job.id)
    assert archived and done.reason_code == "failed"


def test_a_batch_task_that_succeeds_ends_its_index(master, agent, clock):
    job = master.submit_job(batch_job({"immediate": {"retries": 3}}))
    crash(master, agent, clock)
    (tid,) = run(master, agent)
    agent.finish(tid, exit_code=0)
    done, archived = master.get_job(job.id)
    assert archived and done.reason_code == "normal"


def test_a_lost_host_is_not_a_crash_and_is_replaced_at_once(master, agent, clock):
    job = master.submit_job(service_job())
    for _ in range(3):
        crash(master, agent, clock)
    (tid,) = run(master, agent)
    master.deregister_agent(agent.id)  # its host is gone: lost
    assert master.tasks[tid].reason_code == S.LOST
    replacement = waiting(job)
    assert replacement.retry_at == 0.0 and replacement.system_resubmit_number == 1
    assert replacement.consecutive_failures == 3  # kept: a loss says nothing either way
    agent.running.clear()
    agent.register()
    assert len(run(master, agent)) == 1  # at once


def test_a_kill_on_purpose_restarts_at_once(master, agent, clock):
    job = master.submit_job(service_job())
    crash(master, agent, clock)
    (tid,) = run(master, agent)
    master.kill_task(tid)
    agent.start_launched()  # takes the kill order, reports it Finished
    assert master.tasks[tid].reason_code == S.KILLED
    assert (waiting(job).retry_at, waiting(job).consecutive_failures) == (0.0, 1)


def test_backoff_is_shown_in_views_and_the_event_log(master, agent, clock):
    job = master.submit_job(service_job(2))
    first, _ = run(master, agent)
    agent.finish(first, exit_code=1)
    task = waiting(job)
    view = task_view(task, job)
    assert (view["backingOff"], view["consecutiveFailures"]) == (True, 1)
    assert view["retryAt"] == ms(clock.now + BASE)
    jv = job_view(job)
    assert (jv["backingOff"], jv["tasksBackingOff"], jv["consecutiveFailures"]) == (True, 1, 1)
    assert jv["retryAt"] == ms(clock.now + BASE)
    assert master.queries.backing_off() == 1
    (event,) = [e for e in master.store.events() if e["kind"] == "taskBackingOff"]
    assert event["entity_id"] == job.id
    assert json.loads(event["data"]) == {
        "taskId": first, "replacementId": task.id, "index": task.idx, "reason": S.FAILED,
        "consecutiveFailures": 1, "delaySec": BASE}
    clock.advance(BASE)
    run(master, agent)
    view = task_view(task, job)
    assert (view["backingOff"], view["consecutiveFailures"]) == (False, 1)
    assert "retryAt" not in view
    assert job_view(job)["backingOff"] is False and master.queries.backing_off() == 0


def test_the_count_survives_a_restart_of_the_master(store_url, settings, clock):
    settings = backoff_settings(settings, store_url=store_url)
    m1 = make_master(settings, clock)
    a1 = ScriptedAgent(m1)
    a1.register()
    job = m1.submit_job(service_job())
    for _ in range(2):
        crash(m1, a1, clock)
    (tid,) = run(m1, a1)
    a1.finish(tid, exit_code=1)  # the third quick failure: its replacement waits 4 s
    retry_at = waiting(job).retry_at
    # kill -9: a new master on the same store
    m2 = make_master(settings, clock, Store(store_url))
    job2 = m2.jobs[job.id]
    assert (waiting(job2).consecutive_failures, waiting(job2).retry_at) == (3, retry_at)
    a2 = ScriptedAgent(m2)
    a2.register()
    assert run(m2, a2) == []  # still waiting out its delay
    clock.advance(retry_at - clock.now)
    assert crash(m2, a2, clock) == pytest.approx(8.0)  # the fourth in a row
    assert waiting(job2).consecutive_failures == 4
    m1.store.close()
    m2.store.close()


def restarts_in(seconds, backoff_base, settings, clock, tmp_path, step=0.1):
    """How often a service whose task exits at once is started in ``seconds``."""
    settings = settings.model_copy(update={
        "store_url": f"sqlite:///{tmp_path / f'loop{backoff_base}.db'}",
        "crash_backoff_base_sec": backoff_base})
    master = make_master(settings, clock)
    agent = ScriptedAgent(master)
    agent.register()
    master.submit_job(service_job())
    started = 0
    end = clock.now + seconds
    while clock.now < end:
        for tid in run(master, agent):
            started += 1
            agent.finish(tid, exit_code=0)  # exits at once, even "successfully"
        clock.advance(step)
    master.store.close()
    return started


def test_an_at_once_exiting_service_restarts_a_few_times_not_thousands(settings, clock,
                                                                         tmp_path):
    defaults = MasterSettings()
    settings = settings.model_copy(update={
        "crash_backoff_max_sec": defaults.crash_backoff_max_sec,
        "crash_backoff_reset_sec": defaults.crash_backoff_reset_sec})
    # base 1 s: started at 0, 1, 3, 7, 15 and 31 s
    assert 5 <= restarts_in(40, defaults.crash_backoff_base_sec, settings, clock, tmp_path) <= 10
    # without back-off: once per round
    assert restarts_in(40, 0.0, settings, clock, tmp_path) >= 300


def test_rest_views_and_metrics_show_backoff(master, clock):
    with TestClient(create_app(master=master, start_loop=False)) as client:
        spec = {"applicationName": "svc", "container": {"image": {"name": "nginx"}},
                "service": {"capacity": {"min": 0, "desired": 1, "max": 1}}}
        r = client.post("/api/v3/jobs", json=spec)
        assert r.status_code == 202
        job_id = r.json()["id"]
        agent = ScriptedAgent(master)
        agent.register()
        (tid,) = run(master, agent)
        agent.finish(tid, exit_code=1)
        tasks = client.get("/api/v3/tasks", params={"jobId": job_id}).json()["items"]
        (replacement,) = [t for t in tasks if t["status"]["state"] == "Accepted"]
        assert replacement["backingOff"] is True and replacement["consecutiveFailures"] == 1
        assert replacement["retryAt"] == ms(clock.now + BASE)
        (ended,) = [t for t in tasks if t["id"] == tid]
        assert ended["backingOff"] is False and ended["consecutiveFailures"] == 0
        job = client.get(f"/api/v3/jobs/{job_id}").json()
        assert (job["backingOff"], job["tasksBackingOff"], job["consecutiveFailures"]) == \
            (True, 1, 1)
        assert job["retryAt"] == replacement["retryAt"]
        assert "titus_tasks_backing_off 1.0" in client.get("/metrics").text


def test_transient_system_errors_back_off_without_spending_user_retries(master, agent, clock):
    job = master.submit_job(batch_job({"immediate": {"retries": 0}}))
    delays = []
    for _ in range(4):  # the engine fails the launch again and again
        (tid,) = run(master, agent)
        agent.finish(tid, exit_code=None, reason=S.TRANSIENT_SYSTEM_ERROR)
        replacement = waiting(job)
        assert replacement.user_retries_used == 0  # 0 retries allowed, and none spent
        delays.append(replacement.retry_at - clock.now)
        clock.advance(delays[-1] - 0.01)
        assert run(master, agent) == []  # held back: the engine gets a moment
        clock.advance(0.01)
    assert delays == [1.0, 2.0, 4.0, 8.0]  # base 1 s, doubling (capped by the max)
    assert replacement.system_resubmit_number == 4 and replacement.consecutive_failures == 0
    (tid,) = run(master, agent)
    agent.finish(tid, exit_code=0)  # the engine is back: the job ends normal
    done, archived = master.get_job(job.id)
    assert archived and done.reason_code == S.NORMAL
