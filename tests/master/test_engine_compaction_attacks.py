"""Attacks on the engine rebuild (``EngineAdapter.compact``): whatever the master does after a
rebuild must go as it would have gone without it. Each scenario runs twice, on two masters, once
with a rebuild at the critical point and once without, and compares what happened."""
import pytest

from titus import states as S
from titus.master.capacity import CapacityGroup
from titus.master.model import CapacityGroupSpec
from titus.master.validation import parse_job

from tests.master.conftest import ScriptedAgent, make_master
from tests.master.test_lifecycle import tasks_of


def job(size, group=None, cpu=1, app="app", gpu=0):
    res = {"cpu": cpu, "memoryMB": 128, **({"gpu": gpu} if gpu else {})}
    spec = {"applicationName": app, "container": {"image": {"name": "busybox"}, "resources": res},
            "batch": {"size": size}}
    if group:
        spec["capacityGroup"] = group
    return parse_job(spec)


def group(master, name, tier):
    spec = {"name": name, "tier": tier, "resources": {"cpu": 8, "memoryMB": 4096}}
    master.put_capacity_group(CapacityGroup.from_spec(CapacityGroupSpec.model_validate(spec)))


def engine_view(m):
    s = m.scheduler
    hosts = sorted(m.engine.hosts)
    return (list(s.held_tasks().items()), {t: s.task_priority(t) for t in s.held_tasks()},
            {h: s.host_usage(h) for h in hosts}, {h: s.is_enabled(h) for h in hosts})


def twin_masters(settings, clock, tmp_path, **changes):
    """Two masters on their own stores: the second is the one that will be rebuilt."""
    out = []
    for name in ("kept", "rebuilt"):
        s = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / name}.db", **changes})
        out.append(make_master(s, clock))
    return out


def preempted(m, *jobs):
    return sorted((jobs.index(j), t.idx) for j in jobs for t in tasks_of(m, j.id)
                  if t.kill_reason == S.PREEMPTED)


def test_victims_are_the_same_after_a_rebuild(settings, clock, tmp_path):
    """The reprieve spares the oldest holds first, so the rebuilt engine must hold its tasks in
    the old engine's hold order, not by launch time and id.

    Reproducer: task_order=interleave_jobs, one 4-cpu host; job a (3 x 1 cpu) then job b
    (1 x 1 cpu) placed in one round (held a0 a1 b0 a2); compact(); a Critical 1-cpu task evicts
    a2 without the rebuild but b0 after it (the rebuild held a0 a1 a2 b0)."""
    got = []
    for rebuild, m in enumerate(twin_masters(settings, clock, tmp_path, task_order="interleave_jobs")):
        agent = ScriptedAgent(m, hosts=1, cpus=4)
        agent.register()
        a, b = m.submit_job(job(3, app="a")), m.submit_job(job(1, app="b"))
        m.scheduling.run_round(force=True)
        agent.start_launched()
        before = engine_view(m)
        if rebuild:
            assert m.engine.compact() and engine_view(m) == before
        group(m, "crit", "Critical")
        m.submit_job(job(1, group="crit"))
        m.scheduling.run_round(force=True)
        got.append(preempted(m, a, b))
        m.store.close()
    assert got[0] == got[1] and len(got[0]) == 1


def test_a_held_task_keeps_the_priority_it_was_held_with(settings, clock, tmp_path):
    """A held task keeps the priority it was placed with (docs/semantics.md); the rebuild must
    not give it its group's priority of today.

    Reproducer: a job of Critical group g fills a 4-cpu host (held at priority 1); g becomes
    Flex (its tasks now get an eviction quota); compact(); a task of Critical group c cannot
    evict priority-1 tasks without the rebuild, but evicted one after it (held again at 0)."""
    got = []
    for rebuild, m in enumerate(twin_masters(settings, clock, tmp_path)):
        agent = ScriptedAgent(m, hosts=1, cpus=4)
        agent.register()
        group(m, "g", "Critical")
        first = m.submit_job(job(4, group="g"))
        m.scheduling.run_round(force=True)
        agent.start_launched()
        group(m, "g", "Flex")
        if rebuild:
            assert m.engine.compact()
        group(m, "c", "Critical")
        m.submit_job(job(1, group="c"))
        m.scheduling.run_round(force=True)
        agent.start_launched()
        got.append(preempted(m, first))
        m.store.close()
    assert got[0] == got[1] == []


def test_a_rebuild_is_not_refused_while_a_victims_kill_is_unconfirmed(master):
    """A preemption victim stays ``in_engine`` in the records until its kill is confirmed, but
    the engine has already evicted it: that is no disagreement.

    Reproducer: a Flex job fills a 4-cpu host; a Critical task evicts one of its tasks
    (KillInitiated, not yet confirmed by the agent); compact() returned False (and the back-off
    then kept the old engine for another floor's worth of growth)."""
    agent = ScriptedAgent(master, hosts=1, cpus=4)
    agent.register()
    flex = master.submit_job(job(4))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    group(master, "crit", "Critical")
    master.submit_job(job(1, group="crit"))
    master.scheduling.run_round(force=True)  # the kill order is not yet taken by the agent
    dying = [t for t in tasks_of(master, flex.id) if t.state == S.KILL_INITIATED]
    assert len(dying) == 1 and dying[0].in_engine
    before = engine_view(master)
    assert master.engine.compact() is True
    assert engine_view(master) == before
    agent.start_launched()  # the kill is confirmed: the victim ends, nothing else changes
    assert dying[0].state == S.FINISHED and engine_view(master)[2] == before[2]


def test_held_tasks_on_held_off_and_drained_hosts_survive_a_rebuild(master):
    """Held tasks on disabled hosts are held again (``add_running`` ignores ``disabled``), and
    the hosts stay disabled, also across a later re-registration."""
    agent = ScriptedAgent(master, hosts=3, cpus=4)
    agent.register()
    master.submit_job(job(12))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    master.hold_off_hosts([agent.hosts[0].host_id])
    master.drain_hosts([agent.hosts[1].host_id])
    before = engine_view(master)
    assert sum(not on for on in before[3].values()) == 2
    assert master.engine.compact() is True
    assert engine_view(master) == before
    agent.register(tasks=[_started(tid, h) for tid, h in agent.running.items()])
    assert engine_view(master)[3] == before[3]


def _started(task_id, host_id):
    from titus.protocol import TaskStatusMsg
    return TaskStatusMsg(task_id=task_id, state="Started", host_id=host_id)


def test_a_host_moved_to_another_agent_then_a_rebuild(master):
    """A host another agent takes over is in the engine once, with its tasks; the rebuild
    agrees and holds the same."""
    one = ScriptedAgent(master, agent_id="a1", hosts=2, cpus=4)
    one.register()
    master.submit_job(job(6))
    master.scheduling.run_round(force=True)
    one.start_launched()
    two = ScriptedAgent(master, agent_id="a2", hosts=0)
    two.hosts = [one.hosts[1]]
    two.register(tasks=[_started(t, h) for t, h in one.running.items() if h == one.hosts[1].host_id])
    before = engine_view(master)
    assert master.engine.compact() is True
    assert engine_view(master) == before
    master.submit_job(job(2))
    assert master.scheduling.run_round(force=True) == 2


def test_a_refused_round_after_a_rebuild_gives_back_to_the_new_engine(master, monkeypatch):
    """A round that compacts, preempts and then cannot be stored leaves the rebuilt engine as
    it was after the rebuild (victims held again, placements released)."""
    import titus.master.engine_adapter as ea
    from titus.master.errors import StoreUnavailable

    agent = ScriptedAgent(master, hosts=1, cpus=4)
    agent.register()
    master.submit_job(job(4))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    group(master, "crit", "Critical")
    master.submit_job(job(1, group="crit"))
    monkeypatch.setattr(ea.EngineAdapter, "compact_due", lambda self: True)
    old = master.scheduler
    view = engine_view(master)

    def refuse(work):
        raise StoreUnavailable("down")

    monkeypatch.setattr(master.scheduling.ledger, "commit", refuse)
    with pytest.raises(StoreUnavailable):
        master.scheduling.run_round(force=True)
    assert master.scheduler is not old
    got = engine_view(master)
    assert dict(got[0]) == dict(view[0]) and got[1:] == view[1:]


def test_no_rebuild_every_round_when_nothing_churns(master, monkeypatch):
    """Floors crossed once: one rebuild, then none while the tables do not grow."""
    import titus.master.engine_adapter as ea

    monkeypatch.setattr(ea, "COMPACT_JOB_FLOOR", 0)
    monkeypatch.setattr(ea, "COMPACT_HOST_FLOOR", 0)
    agent = ScriptedAgent(master, hosts=4, cpus=1)
    agent.register()
    master.submit_job(job(4))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    master.submit_job(job(3))  # never fits: offered every round
    rebuilt = []
    real = ea.EngineAdapter.compact
    monkeypatch.setattr(ea.EngineAdapter, "compact", lambda self: rebuilt.append(1) or real(self))
    for _ in range(5):
        master.scheduling.run_round(force=True)
    assert len(rebuilt) <= 1


@pytest.mark.parametrize("engine", ["native", "reference"])
def test_held_tasks_come_in_hold_order_with_their_priority(engine):
    """What a rebuild reads off the old engine: ``held_tasks()`` oldest hold first (not the
    order of the call's rows: interleaving places b0 before a2) and ``task_priority``."""
    from titus import Host, Task
    from titus.workloads.runner import make_scheduler
    s = make_scheduler(engine, task_order="interleave_jobs")
    s.add_hosts([Host("h", cpus=8)])
    s.add_running(Task("old", cpus=1, job="z", priority=3), "h")
    s.schedule([Task(f"a{i}", cpus=1, job="a") for i in range(3)] + [Task("b0", cpus=1, job="b")])
    assert list(s.held_tasks()) == ["old", "a0", "a1", "b0", "a2"]
    assert s.task_priority("old") == 3 and s.task_priority("a0") == 0 and s.task_priority("x") is None
