"""The engine keeps a slot per host ever added and a name per job ever seen; the master rebuilds
it from what it holds once those run far ahead (``EngineAdapter.compact_if_due``), without
changing what is held, where, on which ports, or which hosts take new tasks."""
import pytest

import titus.master.engine_adapter as ea
from titus.master.validation import parse_job

from tests.master.conftest import ScriptedAgent


def job(size, cpu=1.0, app="a"):
    c = {"image": {"name": "x"}, "resources": {"cpu": cpu}}
    return parse_job({"applicationName": app, "container": c, "batch": {"size": size}})


def engine_view(m):
    s = m.scheduler
    return (s.held_tasks(), {h: s.host_usage(h) for h in sorted(m.engine.hosts)},
            {h: s.is_enabled(h) for h in sorted(m.engine.hosts)})


def _churn(m, agent, rounds=6, size=3):
    """Jobs that run and end: names the engine keeps after their tasks are gone."""
    for _ in range(rounds):
        j = m.submit_job(job(size))
        m.scheduling.run_round(force=True)
        for tid in agent.start_launched():
            if m.tasks[tid].job_id == j.id:
                agent.finish(tid)


def test_compact_keeps_what_is_held_and_drops_history(master, clock):
    agent = ScriptedAgent(master, hosts=3, cpus=8)
    agent.register()
    _churn(master, agent)
    keep = master.submit_job(job(4))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    master.hold_off_hosts([agent.hosts[2].host_id])
    before = engine_view(master)
    seen = master.scheduler.footprint["jobs_seen"]
    assert seen >= 7 and len(before[0]) == 4
    old = master.scheduler
    assert master.engine.compact() is True
    assert master.scheduler is not old
    assert engine_view(master) == before  # same tasks, hosts, usage, held-off host still off
    assert master.scheduler.footprint["jobs_seen"] == 1  # only the job still holding tasks
    # and it keeps working: more of the kept job's app lands where it fits, not on the held-off host
    more = master.submit_job(job(6))
    master.scheduling.run_round(force=True)
    placed = [t for t in master.jobs[more.id].tasks.values() if t.host_id]
    assert placed and all(t.host_id != agent.hosts[2].host_id for t in placed)
    assert all(master.scheduler.host_usage(h.host_id)["cpus"] <= 8 for h in agent.hosts)
    assert keep.id in master.jobs


def test_compact_refuses_when_records_and_engine_disagree(master):
    agent = ScriptedAgent(master, hosts=2, cpus=4)
    agent.register()
    j = master.submit_job(job(2))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    old = master.scheduler
    before = engine_view(master)
    t = next(iter(master.jobs[j.id].tasks.values()))
    master.scheduler.release(t.id)  # the engine no longer holds what the records say it holds
    assert master.engine.compact() is False
    assert master.scheduler is old
    old.add_running(master.engine.task_for(t), t.host_id)
    assert engine_view(master) == before


def test_a_task_that_no_longer_fits_keeps_the_old_engine(master, monkeypatch):
    agent = ScriptedAgent(master, hosts=1, cpus=4)
    agent.register()
    master.submit_job(job(2))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    old = master.scheduler
    real = ea.engine_host

    def smaller(info, keep=None):  # the host as the rebuild sees it cannot hold both
        h = real(info, keep)
        return type(h)(**{**h.__dict__, "cpus": 1.0})

    monkeypatch.setattr(ea, "engine_host", smaller)
    assert master.engine.compact() is False
    assert master.scheduler is old and len(old.held_tasks()) == 2


def test_the_round_compacts_when_due(master, monkeypatch):
    monkeypatch.setattr(ea, "COMPACT_JOB_FLOOR", 3)
    monkeypatch.setattr(ea, "COMPACT_HOST_FLOOR", 0)
    agent = ScriptedAgent(master, hosts=2, cpus=8)
    agent.register()
    first = master.scheduler
    _churn(master, agent, rounds=5, size=1)
    assert master.scheduler is not first  # rebuilt by a round, and still placing
    assert master.scheduler.footprint["jobs_seen"] <= 2 * master.scheduler.footprint["held_tasks"] + 3 + 1
    j = master.submit_job(job(2))
    master.scheduling.run_round(force=True)
    assert all(t.host_id for t in master.jobs[j.id].tasks.values())


@pytest.mark.parametrize("engine", ["native", "reference"])
def test_footprint_counts_history(engine):
    from titus import Host, Task
    from titus.workloads.runner import make_scheduler
    s = make_scheduler(engine)
    s.add_hosts([Host(f"h{i}", cpus=4) for i in range(3)])
    s.remove_host("h0")
    s.schedule([Task(f"t{i}", cpus=1, job=f"j{i}") for i in range(3)])
    s.release("t0")
    f = s.footprint
    assert f["host_slots"] == 3 and f["live_hosts"] == 2 and f["held_tasks"] == 2 and f["jobs_seen"] == 3


def test_a_refused_rebuild_is_not_tried_every_round(master, monkeypatch):
    monkeypatch.setattr(ea, "COMPACT_JOB_FLOOR", 3)
    monkeypatch.setattr(ea, "COMPACT_HOST_FLOOR", 100)
    agent = ScriptedAgent(master, hosts=2, cpus=8)
    agent.register()
    tries = []
    monkeypatch.setattr(ea.EngineAdapter, "compact", lambda self: tries.append(1) or False)
    _churn(master, agent, rounds=5, size=1)  # due from the 4th job name on, refused each time
    first = len(tries)
    assert first >= 1
    _churn(master, agent, rounds=2, size=1)  # rounds that place, two names more (< the floor of 3)
    assert len(tries) == first  # not again until the tables grow by another floor
    _churn(master, agent, rounds=4, size=1)
    assert len(tries) > first
