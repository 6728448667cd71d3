"""The one commit path: validate -> store -> memory -> orders and events, or nothing at all."""
import json

import pytest

from titus import states as S
from titus.master.capacity import CapacityGroup
from titus.master.store import Txn
from titus.master.validation import parse_job
from titus.master.work import Work
from titus.protocol import kill_order

from tests.master.conftest import make_master


def batch(size=2, group=None):
    spec = {"applicationName": "app", "container": {"image": {"name": "busybox"}},
            "batch": {"size": size}}
    if group:
        spec["capacityGroup"] = group
    return parse_job(spec)


def snapshot(master):
    """What memory and the store hold, for 'nothing changed' checks."""
    tasks = {t.id: (t.state, t.reason_code, t.host_id, t.in_engine, t.scheduling_failure)
             for t in master.tasks.values()}
    stored = {r["id"]: (r["state"], r["reason_code"], r["host_id"])
              for r in master.store.load_tasks()}
    return (tasks, stored, dict(master.state_counts), len(master.state.queue),
            {g: dict(u) for g, u in master.group_usage.items()}, set(master.jobs),
            {a: len(r.orders) for a, r in master.registry.agents.items()})


def placed(master, agent, n=2):
    job = master.submit_job(batch(n))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    return job


def test_an_illegal_task_move_is_refused_whole(master, agent):
    job = placed(master, agent)
    first, second = sorted(job.tasks.values(), key=lambda t: t.seq)
    master.kill_task(first.id)
    agent.start_launched()
    assert master.tasks[first.id].state == S.FINISHED
    before = snapshot(master)
    work = Work()
    work.update(second, state=S.KILL_INITIATED, kill_reason=S.KILLED)  # legal on its own
    work.order(agent.id, kill_order(second.id, 1.0))
    work.update(first, state=S.STARTED)  # Finished -> Started: never
    with pytest.raises(S.IllegalTransition):
        master.ledger.commit(work)
    assert snapshot(master) == before


def test_a_backward_move_and_a_late_job_move_are_refused(master, agent):
    job = placed(master, agent)
    task = next(iter(job.tasks.values()))
    work = Work()
    work.update(task, state=S.LAUNCHED)  # Started -> Launched
    with pytest.raises(S.IllegalTransition):
        master.ledger.commit(work)
    work = Work()
    work.update_job(job, state=S.ACCEPTED)  # no move at all is allowed; Accepted again is a no-op
    master.ledger.commit(work)
    master.kill_job(job.id)
    work = Work()
    work.update_job(master.jobs[job.id], state=S.ACCEPTED)  # KillInitiated -> Accepted
    with pytest.raises(S.IllegalTransition):
        master.ledger.commit(work)


def test_a_new_task_starts_accepted_and_only_finished_jobs_are_archived(master):
    job = master.submit_job(batch(1))
    work = Work()
    ghost = master.state.new_task(job, 5, master.now())
    ghost.state = S.STARTED
    work.new_tasks.append(ghost)
    with pytest.raises(S.IllegalTransition):
        master.ledger.commit(work)
    work = Work()
    work.archives.append(job)
    with pytest.raises(S.IllegalTransition, match="only a finished job"):
        master.ledger.commit(work)
    assert job.id in master.jobs and ghost.id not in master.tasks


def test_a_failed_store_write_applies_nothing(master, agent, monkeypatch):
    job = master.submit_job(batch(3))
    before = snapshot(master)

    def broken(self, rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Txn, "update_tasks", broken)
    assert master.scheduling.run_round(force=True) == 0  # the round gives its hosts back
    assert snapshot(master) == before
    assert all(master.scheduler.host_usage(h.host_id)["cpus"] == 0 for h in agent.hosts)
    with pytest.raises(RuntimeError):
        master.kill_job(job.id)
    assert snapshot(master) == before and master.jobs[job.id].state == S.ACCEPTED
    monkeypatch.undo()
    assert master.scheduling.run_round(force=True) == 3


def test_observers_hear_only_committed_changes(master, agent, monkeypatch):
    heard = []
    monkeypatch.setattr(master.events, "publish", lambda kind, job_id, render: heard.append(kind))
    monkeypatch.setattr(type(master.events), "active", property(lambda self: True))
    master.submit_job(batch(1))
    assert heard == ["taskUpdate", "jobUpdate"]
    heard.clear()
    monkeypatch.setattr(Txn, "update_tasks", lambda self, rows: 1 / 0)
    master.scheduling.run_round(force=True)
    assert heard == []


def test_recovery_replays_to_the_same_memory(master, agent, settings, clock, tmp_path):
    master.put_capacity_group(CapacityGroup("small", "Flex", {}, limit={"cpus": 2.0}))
    done = placed(master, agent, 2)
    for tid in list(agent.running):
        agent.finish(tid)
    assert done.id not in master.jobs  # settled and archived
    placed(master, agent, 3)
    master.submit_job(batch(2, group="small"))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    url = f"sqlite:///{tmp_path / 'm.db'}"
    again = make_master(settings.model_copy(update={"store_url": url}), clock)
    agent.master = again
    agent.register([])  # nothing reported: everything it ran is lost
    agent.master = master
    assert set(again.jobs) == set(master.jobs)
    assert {t.id for t in again.tasks.values() if t.state != S.FINISHED} >= {
        t.id for t in master.tasks.values() if t.state == S.ACCEPTED}
    assert again.state.capacity.groups.keys() == master.state.capacity.groups.keys()
    assert again.state.job_seq == master.state.job_seq
    again.store.close()


def test_capacity_limited_tasks_need_no_new_host(master, agent):
    master.put_capacity_group(CapacityGroup("small", "Flex", {}, limit={"cpus": 1.0}))
    limited = master.submit_job(batch(3, group="small"))
    big = master.submit_job(parse_job({"applicationName": "big",
                                       "container": {"image": {"name": "x"},
                                                     "resources": {"cpu": 64}},
                                       "batch": {"size": 1}}))
    master.scheduling.run_round(force=True)
    waiting = {t.id for t in master.waiting_for_hosts()}
    held = [t for t in limited.tasks.values() if t.state == S.ACCEPTED]
    assert len(held) == 2 and all(t.capacity_limited for t in held)
    assert waiting == {t.id for t in big.tasks.values()}


@pytest.mark.parametrize("bad", [{"ports": [(70000, 70010)]}, {"ports": [(31010, 31000)]},
                                 {"cpus": float("inf")}, {"host_id": ""}])
def test_a_registration_the_engine_refuses_changes_nothing(master, agent, bad):
    from titus.master.engine_adapter import HostRejected
    from titus.protocol import HostInfo

    placed(master, agent)
    before = snapshot(master), sorted(master.engine.hosts), master.store.load_agents()
    good = agent.hosts
    # built unchecked: the protocol refuses these too; the ledger must hold on its own
    agent.hosts = [good[0], HostInfo.model_construct(**{**good[1].model_dump(), **bad})]
    with pytest.raises(HostRejected):
        agent.register([])
    assert (snapshot(master), sorted(master.engine.hosts), master.store.load_agents()) == before
    agent.hosts = good
    agent.register([])  # a clean retry is taken
    assert sorted(master.engine.hosts) == sorted(h.host_id for h in good)


def test_a_host_that_moves_to_a_new_agent_stays_with_it(master, agent, clock):
    from tests.master.conftest import ScriptedAgent
    from titus.protocol import TaskStatusMsg

    job = placed(master, agent, 4)
    moved = agent.hosts[0]
    on_moved = [t.id for t in job.tasks.values() if t.host_id == moved.host_id]
    assert on_moved
    # the same machine comes back under a new agent id and reports what it runs
    other = ScriptedAgent(master, "agent-2", hosts=0)
    other.hosts = [moved]
    other.register([TaskStatusMsg(task_id=t, state="Started", host_id=moved.host_id)
                    for t in on_moved])
    other.running = {t: moved.host_id for t in on_moved}
    clock.advance(master.settings.heartbeat_timeout_sec + 1)
    other.heartbeat()
    master.reconciler.reconcile()  # agent-1 is silent: lost, with its remaining host only
    assert master.registry.get(agent.id) is None
    assert all(master.tasks[t].state == S.STARTED and master.tasks[t].agent_id == "agent-2"
               for t in on_moved)
    assert moved.host_id in master.engine.hosts
    assert master.scheduler.host_usage(moved.host_id)["cpus"] == len(on_moved)
    assert not [o for o in other.heartbeat() if o.type == "kill"]


def test_a_retried_shrinking_kill_shrinks_once(master, agent):
    job = master.submit_job(parse_job({
        "applicationName": "svc", "container": {"image": {"name": "nginx"}},
        "service": {"capacity": {"min": 0, "desired": 3, "max": 10}}}))
    master.scheduling.run_round(force=True)
    agent.heartbeat()
    task = next(iter(job.tasks.values()))
    master.kill_task(task.id, shrink=True)
    master.kill_task(task.id, shrink=True)  # the client retried a timed-out DELETE
    assert master.jobs[job.id].descriptor.service.capacity.desired == 2


def test_terminated_hosts_are_forgotten_not_enabled(master, agent):
    gone = agent.hosts[0].host_id
    master.hold_off_hosts([gone])
    master.forget_hosts([gone])  # the agent keeps its other host, so it stays
    assert not master.scheduler.is_enabled(gone) and gone not in master.engine.held_off


@pytest.mark.parametrize("bad", [{"host_id": "h\ud800"}, {"attributes": {"zone\udc00": "a"}},
                                 {"attributes": {"zone": "a\ud800"}}, {"gpu": 10 ** 400}])
def test_text_or_numbers_no_store_can_hold_are_refused_before_the_write(master, agent, bad):
    from titus.master.engine_adapter import HostRejected
    from titus.protocol import HostInfo

    placed(master, agent)
    before = snapshot(master), sorted(master.engine.hosts), master.store.load_agents()
    good = agent.hosts
    agent.hosts = [good[0], HostInfo.model_construct(**{**good[1].model_dump(), **bad})]
    with pytest.raises(HostRejected):
        agent.register([])
    assert (snapshot(master), sorted(master.engine.hosts), master.store.load_agents()) == before
    agent.hosts = good
    agent.register([])
    assert sorted(master.engine.hosts) == sorted(h.host_id for h in good)


def test_a_moved_host_takes_its_launches_along_and_the_old_copy_is_killed(master, agent):
    from tests.master.conftest import ScriptedAgent
    from titus.protocol import TaskStatusMsg

    job = master.submit_job(batch(6))  # 4 fill the first host, 2 go to the second
    master.scheduling.run_round(force=True)  # launches queued for agent-1, not yet taken
    moved = agent.hosts[0]
    on_moved = [t.id for t in job.tasks.values() if t.host_id == moved.host_id]
    other = ScriptedAgent(master, "agent-2", hosts=0)
    other.hosts = [moved]
    other.register([TaskStatusMsg(task_id=t, state="Started", host_id=moved.host_id)
                    for t in on_moved])
    left = [o for o in master.registry.take(agent.id) if o.type == "launch"]
    assert on_moved and left and not [o for o in left if o.host_id == moved.host_id]
    # the old agent runs a copy anyway (it took the order before the move): it is told to stop
    agent.running = {on_moved[0]: moved.host_id}
    kills = [o.task_id for o in agent.heartbeat() if o.type == "kill"]
    assert kills == [on_moved[0]] and master.tasks[on_moved[0]].state == S.STARTED


def test_a_restart_gives_a_host_listed_by_two_agents_to_the_latest(master, agent, settings,
                                                                   clock, tmp_path):
    import json

    placed(master, agent, 2)
    row = next(r for r in master.store.load_agents() if r["id"] == agent.id)
    stale = {**row, "id": "agent-old", "registered_at": row["registered_at"] - 100}
    with master.ledger.transaction() as tx:  # as an older release could leave it
        tx.upsert_agent(stale)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    again = make_master(settings.model_copy(update={"store_url": url}), clock)
    assert again.registry.get("agent-old").hosts == {}
    assert {again.registry.agent_of_host(h.host_id) for h in agent.hosts} == {agent.id}
    assert json.loads(row["hosts"])  # the latest kept its hosts
    again.store.close()


def test_an_order_that_cannot_be_written_does_not_take_the_others_down(master, client=None):
    from fastapi.testclient import TestClient

    from titus.master.app import create_app

    with TestClient(create_app(master=master, start_loop=False)) as http:
        reg = {"agent_id": "a1", "hosts": [{"host_id": "h1", "cpus": 2, "memory_mb": 4096}],
               "tasks": [{"task_id": "t\ud800", "state": "Started"}]}
        body = json.dumps(reg)  # escapes the lone surrogate as \ud800, as a client would
        r = http.post("/api/v3/agents/register", content=body,
                      headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["problems"][0]["field"] == "tasks[0].task_id"
        assert not master.registry.agents  # refused whole
        # an order that cannot be written anyway (built unchecked, as an older store may hold)
        reg["tasks"] = []
        assert http.post("/api/v3/agents/register", json=reg).status_code == 200
        master.registry.send("a1", kill_order("t\ud800", 0.0))
        master.submit_job(batch(1))
        master.scheduling.run_round(force=True)
        r = http.post("/api/v3/agents/a1/heartbeat", json={})
        assert r.status_code == 200
        assert [o["type"] for o in r.json()["orders"]] == ["launch"]
