"""A master rebuilt from its store (as after kill -9): nothing lost, nothing launched twice."""
from titus.protocol import TaskStatusMsg
from titus import states as S
from titus.master.store import Store
from titus.master.validation import parse_job

from tests.master.conftest import ScriptedAgent, make_master


def job(size, cpu=1.0):
    return parse_job({"applicationName": "a", "container": {"image": {"name": "x"},
                                                            "resources": {"cpu": cpu}},
                      "batch": {"size": size}})


def test_restart_rebuilds_everything(store_url, settings, clock):
    settings = settings.model_copy(update={"store_url": store_url})
    m1 = make_master(settings, clock)
    a1 = ScriptedAgent(m1, hosts=2, cpus=4)
    a1.register()
    j = m1.submit_job(job(12))  # 8 fit
    m1.scheduling.run_round(force=True)
    orders = a1.heartbeat()
    # the agent starts only 5 of its 8 launches before the master dies; the other 3 orders
    # were taken but the agent "crashed" before running them
    started = [o for o in orders if o.type == "launch"][:5]
    a1.heartbeat([TaskStatusMsg(task_id=o.task_id, state="Started", host_id=o.host_id)
                  for o in started])
    for o in started:
        a1.running[o.task_id] = o.host_id
    # kill -9: no clean shutdown, a new master on the same store
    m2 = make_master(settings, clock, Store(store_url))
    assert set(m2.jobs) == {j.id}
    assert len(m2.tasks) == 12 and len(m2.state.queue) == 4
    # the agent's next heartbeat is asked to register again
    a2 = ScriptedAgent(m2, hosts=2, cpus=4)
    a2.running = dict(a1.running)
    assert a2.heartbeat() == ["reregister"]
    a2.register([TaskStatusMsg(task_id=t, state="Started", host_id=h)
                 for t, h in a2.running.items()])
    relaunch = [o for o in m2.registry.take(a2.id) if o.type == "launch"]
    assert len(relaunch) == 3  # only the launches the agent never ran
    assert not {o.task_id for o in relaunch} & {o.task_id for o in started}
    # running tasks are back on their hosts in the engine: nothing more fits
    assert sum(m2.scheduler.host_usage(h.host_id)["cpus"] for h in a2.hosts) == 8
    assert m2.scheduling.run_round(force=True) == 0
    # finish everything: the job completes, every task ended exactly once
    for o in relaunch:
        a2.running[o.task_id] = o.host_id
    for tid in list(a2.running):
        a2.finish(tid)
    for _ in range(2):
        m2.scheduling.run_round(force=True)
        for tid in a2.start_launched():
            a2.finish(tid)
    done, archived = m2.get_job(j.id)
    assert archived and done.reason_code == "normal"
    rows = m2.store.archived_tasks(j.id)
    assert len(rows) == 12 and all(r["reason_code"] == "normal" for r in rows)
    m2.store.close()
    m1.store.close()


def test_agent_that_never_returns_loses_its_tasks(master, agent, clock, settings):
    j = master.submit_job(job(2))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    m2 = make_master(master.settings, clock, Store(master.settings.store_url))
    assert all(t.state == S.STARTED for t in m2.tasks.values())
    clock.advance(5)
    m2.reconciler.reconcile()
    assert all(t.state == S.STARTED for t in m2.tasks.values() if t.resubmit_number == 0)
    clock.advance(6)
    m2.reconciler.reconcile()
    tasks = m2.jobs[j.id].tasks.values()
    assert sum(1 for t in tasks if t.reason_code == S.LOST) == 2
    assert sum(1 for t in tasks if t.state == S.ACCEPTED) == 2
    m2.store.close()


def test_agent_restart_reports_nothing_tasks_are_lost_and_replaced(master, agent):
    j = master.submit_job(job(2))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    agent.running.clear()
    agent.register([])  # the agent process restarted with an empty runtime
    tasks = list(master.jobs[j.id].tasks.values())
    assert sum(1 for t in tasks if t.reason_code == S.LOST) == 2
    assert master.scheduling.run_round(force=True) == 2
    assert len(agent.start_launched()) == 2


def test_unknown_reported_tasks_are_killed_or_removed(master, agent):
    agent.register([TaskStatusMsg(task_id="stray", state="Started", host_id=agent.hosts[0].host_id),
                    TaskStatusMsg(task_id="old", state="Finished", host_id=agent.hosts[0].host_id)])
    orders = {(o.type, o.task_id) for o in master.registry.take(agent.id)}
    assert orders == {("kill", "stray"), ("remove", "old")}
