"""Every launch attempt is recorded: a Launched task whose agent came back before it reported
starting gets its order again as a new attempt, counted on the task and in the event log."""
from __future__ import annotations

import json

from titus import states

from tests.master.conftest import ScriptedAgent, make_master

BATCH = {"applicationName": "b", "container": {"image": {"name": "busybox"}},
         "batch": {"size": 2}}


def submit(master):
    from titus.master.validation import parse_job

    return master.submit_job(parse_job(BATCH))


def launches(orders) -> dict:
    return {o.task_id: o.attempt for o in orders if o.type == "launch"}


def resent_events(master, task_id) -> list[int]:
    return [json.loads(e["data"])["attempt"] for e in master.store.events(limit=10_000)
            if e["kind"] == "taskLaunchResent" and e["entity_id"] == task_id]


def test_a_resent_launch_is_a_new_attempt(master, agent):
    job = submit(master)
    master.scheduling.run_round(force=True)
    first = launches(agent.heartbeat())
    assert sorted(first.values()) == [1, 1]
    # the agent was killed before any task started, and comes back with nothing
    agent.register([])
    again = launches(agent.heartbeat())
    assert again == {tid: 2 for tid in first}
    for tid in first:
        task = master.tasks[tid]
        assert task.state == states.LAUNCHED and task.launch_attempts == 2
        assert master.queries.task_views([task])[0]["launchAttempts"] == 2
        assert resent_events(master, tid) == [2]
    assert job.id in master.jobs


def test_attempts_survive_a_restart_of_the_master(settings, clock, tmp_path):
    s = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'm.db'}"})
    master = make_master(s, clock)
    agent = ScriptedAgent(master)
    agent.register()
    submit(master)
    master.scheduling.run_round(force=True)
    first = launches(agent.heartbeat())
    agent.register([])
    master.store.close()
    again = make_master(s, clock)
    agent.master = again
    agent.register([])
    third = launches(agent.heartbeat())
    assert third == {tid: 3 for tid in first}
    assert all(resent_events(again, tid) == [2, 3] for tid in first)
    again.store.close()


def test_registrations_repeated_before_a_heartbeat_send_one_order(master, agent):
    submit(master)
    master.scheduling.run_round(force=True)
    first = launches(agent.heartbeat())
    for _ in range(10):
        agent.register([])
    orders = [o for o in agent.heartbeat() if o.type == "launch"]
    assert len(orders) == len(first) and launches(orders) == {tid: 2 for tid in first}
    assert all(master.tasks[tid].launch_attempts == 2 for tid in first)
