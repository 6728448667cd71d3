"""The one commit path: validate -> store -> memory -> orders and events, or nothing at all."""
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
