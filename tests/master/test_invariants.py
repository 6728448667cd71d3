"""Random operation sequences against one master, with restarts from the store in between.

After every step the master must agree with itself and with its store: state counts match
the tasks, the engine holds exactly the tasks on hosts, no task is launched twice, and a master
restarted from the store carries on from there.
"""
import random
from collections import Counter

import pytest

from titus.protocol import TaskStatusMsg
from titus import states as S
from titus.master.model import CapacityUpdate
from titus.master.store import Store
from titus.master.validation import parse_job

from tests.master.conftest import ScriptedAgent, make_master


def batch(size, retries):
    return parse_job({"applicationName": "b", "container": {"image": {"name": "x"},
                                                            "resources": {"cpu": 1}},
                      "batch": {"size": size, "retryPolicy": {"immediate": {"retries": retries}}}})


def service(desired):
    return parse_job({"applicationName": "s", "container": {"image": {"name": "x"},
                                                            "resources": {"cpu": 1}},
                      "service": {"capacity": {"min": 0, "desired": desired, "max": 10}}})


def check(master, launches: Counter):
    counts = Counter(t.state for t in master.tasks.values())
    assert {k: v for k, v in master.state_counts.items() if v} == dict(counts)
    for job in master.jobs.values():
        assert job.live_count == sum(1 for t in job.tasks.values() if t.state != S.FINISHED)
    held = set(master.scheduler.held_tasks())
    in_engine = {t.id for t in master.tasks.values() if t.in_engine}
    assert held == in_engine
    for t in master.tasks.values():
        if t.in_engine:
            assert t.state in S.ON_HOST
        if t.state in S.ON_HOST and master.registry.get(t.agent_id) is not None \
                and master.registry.get(t.agent_id).registered:
            assert t.in_engine, (t.id, t.state)
    assert all(n == 1 for n in launches.values()), launches.most_common(3)


def same_as_store(master):
    """Memory and store hold the same live jobs and the same task states (write-ahead)."""
    stored = {r["id"]: (r["state"], r["reason_code"], r["host_id"])
              for r in master.store.load_tasks()}
    mine = {t.id: (t.state, t.reason_code, t.host_id) for t in master.tasks.values()}
    assert stored == mine
    assert {r["id"] for r in master.store.load_jobs()} == set(master.jobs)


@pytest.mark.parametrize("seed", range(4))
def test_random_operations_keep_master_and_store_consistent(seed, store_url, settings, clock):
    rng = random.Random(seed)
    settings = settings.model_copy(update={"store_url": store_url})
    master = make_master(settings, clock)
    agents = [ScriptedAgent(master, f"a{i}", hosts=2, cpus=4) for i in range(2)]
    for a in agents:
        a.register()
    launches: Counter = Counter()

    def take(agent):
        statuses = []
        for o in master.registry.take(agent.id):
            if o.type == "launch":
                launches[o.task_id] += 1
                agent.running[o.task_id] = o.host_id
                statuses.append(TaskStatusMsg(task_id=o.task_id, state="Started",
                                              host_id=o.host_id))
            elif o.type == "kill" and o.task_id in agent.running:
                host = agent.running.pop(o.task_id)
                statuses.append(TaskStatusMsg(task_id=o.task_id, state="Finished",
                                              reason="killed", host_id=host))
        if master.heartbeat(agent.id, statuses, list(agent.running)) is False:
            agent.master = master
            agent.register([TaskStatusMsg(task_id=t, state="Started", host_id=h)
                            for t, h in agent.running.items()])

    for step in range(120):
        op = rng.random()
        if op < 0.15:
            master.submit_job(batch(rng.randint(1, 5), rng.randint(0, 2)))
        elif op < 0.2:
            master.submit_job(service(rng.randint(1, 4)))
        elif op < 0.45:
            master.scheduling.run_round(force=True)
            for a in agents:
                take(a)
        elif op < 0.6:
            a = rng.choice(agents)
            if a.running:
                tid = rng.choice(sorted(a.running))
                host = a.running.pop(tid)
                master.heartbeat(a.id, [TaskStatusMsg(task_id=tid, state="Finished",
                                                      exit_code=rng.choice([0, 0, 1]),
                                                      host_id=host)], list(a.running))
        elif op < 0.67 and master.jobs:
            master.kill_job(rng.choice(sorted(master.jobs)))
        elif op < 0.72:
            live = [j for j in master.jobs.values() if not j.batch and j.state == S.ACCEPTED]
            if live:
                master.resize_job(rng.choice(live).id, CapacityUpdate(desired=rng.randint(0, 5)))
        elif op < 0.77:
            clock.advance(rng.choice([1, 5, 12]))
            for a in agents:
                if rng.random() < 0.7:
                    take(a)
            master.reconciler.reconcile()
        elif op < 0.82:
            # kill -9 and restart on the same store; agents keep their tasks
            master.store.close()
            master = make_master(settings, clock, Store(settings.store_url))
            for a in agents:
                a.master = master
        else:
            a = rng.choice(agents)
            a.master = master
            if master.registry.get(a.id) is None or not master.registry.get(a.id).registered:
                a.register([TaskStatusMsg(task_id=t, state="Started", host_id=h)
                            for t, h in a.running.items()])
        check(master, launches)
        same_as_store(master)
    master.store.close()
