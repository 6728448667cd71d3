"""Preemption: ``schedule(..., preempt=True)`` lets a task that fits nowhere evict held tasks of
strictly lower priority from one host, within per-job quotas (docs/semantics.md, "Preemption"),
in the engine and the twin alike."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.validation import EPS

from tests.conftest import SCHEDULER_CLASSES
from tests.scheduler import strategies as gen
from tests.scheduler.helpers import snapshot, summary

pytestmark = pytest.mark.timeout(900)


def low(tid, cpus, prio=0, job="low"):
    return Task(tid, cpus=cpus, job=job, priority=prio)


def test_without_preempt_nothing_is_evicted(make_scheduler):
    s = make_scheduler([Host("a", cpus=4)])
    s.add_running(low("v", 4), "a")
    s.set_eviction_quota("low", 5)
    r = s.schedule([Task("p", cpus=2, priority=9)])
    assert r.assignments == {} and r.preemptions == {}
    assert s.task_host("v") == "a"


def test_evicts_the_cheapest_set_on_the_best_host(make_scheduler):
    s = make_scheduler([Host("a", cpus=4), Host("b", cpus=4)], fitness="cpu_binpack")
    s.set_eviction_quota("low", 10)
    s.add_running(low("a1", 2, prio=1), "a")
    s.add_running(low("a2", 2, prio=1), "a")
    s.add_running(low("b1", 2, prio=0), "b")
    s.add_running(low("b2", 2, prio=3), "b")
    r = s.schedule([Task("p", cpus=2, priority=5)], preempt=True)
    # host a's highest victim has priority 1, host b's cheapest set (b1) has 0: b wins
    assert r.assignments == {"p": "b"} and r.preemptions == {"p": ["b1"]}
    assert s.task_host("b1") is None and s.task_host("b2") == "b"


def test_never_equal_or_higher_priority(make_scheduler):
    s = make_scheduler([Host("a", cpus=4)])
    s.set_eviction_quota("low", 10)
    s.add_running(low("v", 4, prio=5), "a")
    r = s.schedule([Task("p", cpus=1, priority=5)], preempt=True)
    assert r.assignments == {} and r.preemptions == {} and "p" in r.failures


def test_no_quota_no_eviction_and_quota_caps_victims(make_scheduler):
    s = make_scheduler([Host("a", cpus=4)])
    for i in range(4):
        s.add_running(low(f"v{i}", 1), "a")
    assert s.schedule([Task("p", cpus=2, priority=1)], preempt=True).assignments == {}
    s.set_eviction_quota("low", 1)
    assert s.schedule([Task("q", cpus=2, priority=1)], preempt=True).assignments == {}
    s.set_eviction_quota("low", 2)
    r = s.schedule([Task("q", cpus=2, priority=1), Task("r", cpus=1, priority=1)], preempt=True)
    # the newest go first (older is more important); the quota is then spent
    assert r.assignments == {"q": "a"} and r.preemptions == {"q": ["v2", "v3"]}
    assert "r" in r.failures


def test_tasks_placed_by_the_same_call_are_not_victims(make_scheduler):
    s = make_scheduler([Host("a", cpus=2)])
    s.set_eviction_quota("low", 5)
    r = s.schedule([Task("v", cpus=2, job="low"), Task("p", cpus=2, priority=3)], preempt=True)
    assert r.assignments == {"v": "a"} and r.preemptions == {}


def test_a_gang_preempts_whole_or_not_at_all(make_scheduler):
    s = make_scheduler([Host("a", cpus=2), Host("b", cpus=2)])
    s.set_eviction_quota("low", 5)
    s.add_running(low("va", 2), "a")
    s.add_running(low("vb", 2, prio=7), "b")
    before = snapshot(s)
    r = s.schedule([Task("g0", cpus=2, gang="g", priority=5), Task("g1", cpus=2, gang="g", priority=5)],
                   preempt=True)
    assert r.assignments == {} and r.preemptions == {}
    assert snapshot(s) == before
    assert r.failures["g0"].message.startswith("gang g: member g1 fits no host")
    s.set_eviction_quota("low", 5)
    r = s.schedule([Task("g0", cpus=2, gang="g", priority=9), Task("g1", cpus=2, gang="g", priority=9)],
                   preempt=True)
    assert sorted(r.assignments.values()) == ["a", "b"]
    assert r.preemptions == {"g0": ["va"], "g1": ["vb"]}


def test_arrays_return_preemptions_by_row(make_scheduler):
    s = make_scheduler([Host("a", cpus=2)])
    s.set_eviction_quota("low", 5)
    s.schedule_arrays(np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0]]), np.zeros(2, dtype=np.int32),
                      [TaskClass(job="low")])  # held without ids
    s.add_running(Task("x", cpus=0, job="low"), "a")
    out, pre = s.schedule_arrays(np.array([[0.5, 0, 0, 0], [2.0, 0, 0, 0]]), np.array([0, 1], dtype=np.int32),
                                 [TaskClass(), TaskClass(priority=4)], preempt=True)
    assert out.tolist() == [-1, 0]
    assert pre == {1: [None, None]}  # x takes no cpu: it is spared
    assert s.task_host("x") == "a"


@pytest.mark.parametrize("prio", [2**31, -2**31 - 1, 1.5, "1", None, True])
def test_bad_priority_is_refused(make_scheduler, prio):
    s = make_scheduler([Host("a", cpus=2)])
    with pytest.raises(ValueError, match=r"tasks\[0\].priority: must be an integer"):
        s.schedule([Task("t", priority=prio)])
    with pytest.raises(ValueError, match=r"classes\[0\].priority: must be an integer"):
        s.schedule_arrays(np.array([[1.0, 0, 0, 0]]), np.array([0], dtype=np.int32), [TaskClass(priority=prio)])
    assert s.held_tasks() == {}


@pytest.mark.parametrize("args, where", [
    (("", 1), "job: must be a non-empty string"), (("j\ud800", 1), "job: 'j\\ud800' is not encodable"),
    ((3, 1), "job: must be a non-empty string"), (("j", -1), "n: must be an integer in 0..2147483647"),
    (("j", 2**31), "n: must be an integer in"), (("j", 1.0), "n: must be an integer"),
    (("j", True), "n: must be an integer"),
])
def test_bad_quota_is_refused(make_scheduler, args, where):
    s = make_scheduler([Host("a", cpus=2)])
    with pytest.raises(ValueError) as err:
        s.set_eviction_quota(*args)
    assert str(err.value).startswith(where)


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_bad_preempt_flag_is_refused(make_scheduler, flag):
    s = make_scheduler([Host("a", cpus=2)])
    with pytest.raises(ValueError, match="preempt"):
        s.schedule([Task("t", cpus=1)], preempt=flag)
    assert s.held_tasks() == {}


def _states(data, schedulers):
    """The same random state in every scheduler: hosts, running tasks with priorities, quotas."""
    hosts = data.draw(gen.hosts(max_size=6), label="hosts")
    running = data.draw(gen.gang_tasks([f"r{i}" for i in range(data.draw(st.integers(0, 12)))]), label="running")
    where = [data.draw(st.sampled_from([h.id for h in hosts])) for _ in running]
    quota = data.draw(gen.quota_specs, label="quota")
    for s in schedulers:
        s.add_hosts(hosts)
        for t, h in zip(running, where):
            try:
                s.add_running(t, h)
            except ValueError:
                pass
        for job, n in quota.items():
            s.set_eviction_quota(job, n)
    return running, quota, hosts


def _options(data):
    return {**data.draw(gen.scheduler_options(), label="options"), "task_order": "given"}


@settings(max_examples=150, deadline=None)
@given(data=st.data(), impl=st.sampled_from(sorted(SCHEDULER_CLASSES)))
def test_preemption_invariants(data, impl):
    s = SCHEDULER_CLASSES[impl]()(**_options(data))
    running, quota, hosts = _states(data, [s])
    prio = {t.id: t.priority for t in running}
    job = {t.id: t.job for t in running}
    held_before = set(s.held_tasks())
    tasks = data.draw(gen.gang_tasks([f"t{i}" for i in range(data.draw(st.integers(1, 10)))]), label="tasks")
    r = s.schedule(tasks, preempt=True)
    by_id = {t.id: t for t in tasks}
    per_job: dict = {}
    for p, victims in r.preemptions.items():
        assert p in r.assignments
        for vid in victims:
            assert vid in held_before and s.task_host(vid) is None
            assert prio[vid] < by_id[p].priority
            per_job[job[vid]] = per_job.get(job[vid], 0) + 1
    for j, n in per_job.items():
        assert n <= quota.get(j, 0)
    gone = held_before - set(s.held_tasks())
    assert gone == {v for vs in r.preemptions.values() for v in vs}
    for h in hosts:
        free = s.host_free(h.id)
        assert all(x >= -EPS * 10 for x in free.values()), free


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_engine_and_twin_preempt_alike(data):
    options = _options(data)
    pair = [SCHEDULER_CLASSES["engine"]()(**options), SCHEDULER_CLASSES["reference"]()(**options)]
    _states(data, pair)
    for round_no in range(2):
        tasks = data.draw(gen.gang_tasks([f"t{round_no}-{i}" for i in range(data.draw(st.integers(1, 10)))]))
        got = [summary(s.schedule(tasks, preempt=True)) for s in pair]
        assert got[0] == got[1]
        assert snapshot(pair[0]) == snapshot(pair[1])


@settings(max_examples=100, deadline=None)
@given(data=st.data(), impl=st.sampled_from(sorted(SCHEDULER_CLASSES)))
def test_arrays_and_objects_preempt_alike(data, impl):
    options = _options(data)
    objs, arrs = SCHEDULER_CLASSES[impl]()(**options), SCHEDULER_CLASSES[impl]()(**options)
    _states(data, [objs, arrs])
    tasks = data.draw(gen.gang_tasks([f"t{i}" for i in range(data.draw(st.integers(1, 8)))]), label="tasks")
    known = set(objs.resources)  # a demand matrix has columns only for known resources
    tasks = [Task(**{**t.__dict__, "gang": None, "scalars": {k: q for k, q in t.scalars.items() if k in known}})
             for t in tasks]
    r = objs.schedule(tasks, preempt=True)
    resources = arrs.resources
    demand = np.array([[t.cpus, t.memory_mb, t.disk_mb, t.network_mbps,
                        *[t.scalars.get(n, 0) for n in resources[4:]]] for t in tasks], dtype=np.float64)
    ids = [t.id for t in tasks]
    out, failures, pre = arrs.schedule_arrays(demand, np.arange(len(tasks), dtype=np.int32),
                                              [gen.gang_class_of(t) for t in tasks], task_ids=ids,
                                              explain=True, preempt=True)
    host_ids = arrs.host_ids
    assert {ids[i]: host_ids[h] for i, h in enumerate(out.tolist()) if h >= 0} == r.assignments
    assert {ids[i]: v for i, v in pre.items()} == r.preemptions
    assert {ids[i]: f for i, f in failures.items()} == r.failures
    assert snapshot(objs) == snapshot(arrs)
