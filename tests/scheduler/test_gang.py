"""Gangs: ``Task(gang=...)`` and ``TaskClass(gang=True)`` are placed whole or not at all in one
call (docs/semantics.md, "Gangs"), in the engine and the twin alike."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titus.constraints import UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass

from tests.conftest import SCHEDULER_CLASSES
from tests.scheduler import strategies as gen
from tests.scheduler.helpers import snapshot, summary

pytestmark = pytest.mark.timeout(900)


def test_a_gang_that_fits_is_placed_whole(make_scheduler):
    s = make_scheduler([Host("a", cpus=4), Host("b", cpus=4)], fitness="cpu_binpack")
    r = s.schedule([Task(f"t{i}", cpus=2, gang="g1") for i in range(4)])
    assert sorted(r.assignments) == ["t0", "t1", "t2", "t3"] and not r.failures


def test_a_gang_that_does_not_fit_holds_nothing_and_names_the_member(make_scheduler):
    s = make_scheduler([Host("a", cpus=4), Host("b", cpus=2)], fitness="cpu_binpack")
    before = snapshot(s)
    r = s.schedule([Task("t0", cpus=2, gang="g1"), Task("t1", cpus=3, gang="g1"), Task("t2", cpus=3, gang="g1")])
    assert r.assignments == {}
    assert snapshot(s) == before
    for tid in ("t0", "t1", "t2"):
        f = r.failures[tid]
        assert f.counts == {"gang": 2}
        assert f.message == "gang g1: member t2 fits no host (0/2 hosts: 2 cpus)"


def test_undo_restores_usage_bit_for_bit(make_scheduler):
    # 0.1 + 0.2 - 0.2 != 0.1 in floating point: the undo restores, it does not subtract.
    s = make_scheduler([Host("a", cpus=1, memory_mb=1)], fitness="cpu_binpack")
    s.schedule([Task("x", cpus=0.1, group="g", job="j", hard=[])])
    usage = s.host_usage("a")
    r = s.schedule([Task("y", cpus=0.2, group="g", job="j", gang="G"), Task("z", cpus=5, gang="G")])
    assert r.assignments == {}
    assert s.host_usage("a") == usage
    # the group usage too: a limit at exactly 0.1 + 0.9 still admits 0.9
    s.set_group_limits({"g": {"cpus": 1.0}})
    assert s.schedule([Task("w", cpus=0.9, group="g")]).assignments == {"w": "a"}


def test_members_apart_in_the_call_are_tried_at_the_first(make_scheduler):
    # The gang is tried when t0 comes, with t2: t2 is placed before t1.
    s = make_scheduler([Host("a", cpus=2)], fitness="cpu_binpack")
    r = s.schedule([Task("t0", cpus=1, gang="g"), Task("t1", cpus=1), Task("t2", cpus=1, gang="g")])
    assert r.assignments == {"t0": "a", "t2": "a"}
    assert r.failures["t1"].counts == {"cpus": 1}


def test_a_failed_gang_frees_the_way_for_the_tasks_after_it(make_scheduler):
    s = make_scheduler([Host("a", cpus=2)], fitness="cpu_binpack")
    r = s.schedule([Task("t0", cpus=1, gang="g"), Task("t1", cpus=5, gang="g"), Task("t2", cpus=2)])
    assert r.assignments == {"t2": "a"}


def test_gang_co_task_counts_are_undone(make_scheduler):
    hosts = [Host("a", cpus=4), Host("b", cpus=4)]
    s = make_scheduler(hosts, fitness="cpu_binpack")
    r = s.schedule([Task("t0", cpus=1, job="j", hard=[UniqueHostAttr()], gang="g"),
                    Task("t1", cpus=1, job="j", hard=[UniqueHostAttr()], gang="g"),
                    Task("t2", cpus=1, job="j", hard=[UniqueHostAttr()], gang="g")])
    assert r.assignments == {}
    assert r.failures["t0"].message.startswith("gang g: member t2 fits no host (0/2 hosts: 2 constraint:UniqueHostAttr")
    r = s.schedule([Task("u0", cpus=1, job="j", hard=[UniqueHostAttr()]),
                    Task("u1", cpus=1, job="j", hard=[UniqueHostAttr()])])
    assert sorted(r.assignments.values()) == ["a", "b"]


def test_array_gang_class_and_explain(make_scheduler):
    s = make_scheduler([Host("a", cpus=2)], fitness="cpu_binpack")
    classes = [TaskClass(), TaskClass(gang=True)]
    demand = np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    out, failures = s.schedule_arrays(demand, np.array([1, 0, 1, 1], dtype=np.int32), classes, explain=True)
    # the gang (rows 0, 2, 3) is tried first, fails at row 3, and row 1 then fits
    assert out.tolist() == [-1, 0, -1, -1]
    assert sorted(failures) == [0, 2, 3]
    assert failures[0].message == "gang classes[1]: member row 3 fits no host (0/1 hosts: 1 cpus)"
    out, failures = s.schedule_arrays(demand[:1], np.array([1], dtype=np.int32), classes, task_ids=["x"],
                                      explain=True)
    assert out.tolist() == [0] and failures == {}


@pytest.mark.parametrize("bad, where", [
    (Task("t", gang=""), "tasks[1].gang: must be a non-empty string"),
    (Task("t", gang="g\ud800"), "tasks[1].gang: 'g\\ud800' is not encodable"),
    (Task("t", gang=3), "tasks[1].gang: must be a non-empty string"),
    (Task("t", gang=["g"]), "tasks[1].gang: must be a non-empty string"),
    (Task("t", gang="g", priority=1), "tasks[1].priority: gang 'g' members must share one priority"),
])
def test_bad_gangs_are_refused_and_change_nothing(make_scheduler, bad, where):
    s = make_scheduler([Host("a", cpus=2)])
    before = snapshot(s)
    with pytest.raises(ValueError) as err:
        s.schedule([Task("ok", cpus=1, gang="g"), bad])
    assert str(err.value).startswith(where)
    assert snapshot(s) == before


@pytest.mark.parametrize("gang", [1, "yes", None, 0.0])
def test_bad_class_gang_is_refused(make_scheduler, gang):
    s = make_scheduler([Host("a", cpus=2)])
    with pytest.raises(ValueError, match=r"classes\[0\].gang: must be True or False"):
        s.schedule_arrays(np.array([[1.0, 0, 0, 0]]), np.array([0], dtype=np.int32), [TaskClass(gang=gang)])
    assert s.held_tasks() == {}


@settings(max_examples=150, deadline=None)
@given(data=st.data(), impl=st.sampled_from(sorted(SCHEDULER_CLASSES)))
def test_a_gang_is_never_partly_held_and_a_failed_one_leaves_no_trace(data, impl):
    cls = SCHEDULER_CLASSES[impl]()
    options = {**data.draw(gen.scheduler_options(), label="options"), "task_order": "given"}
    hosts = data.draw(gen.hosts(max_size=6), label="hosts")
    tried, control = cls(**options), cls(**options)
    tried.add_hosts(hosts)
    control.add_hosts(hosts)
    first = data.draw(gen.some_tasks([f"p{i}" for i in range(data.draw(st.integers(0, 6)))]), label="first")
    tried.schedule(first)
    control.schedule(first)
    tasks = data.draw(gen.gang_tasks([f"t{i}" for i in range(data.draw(st.integers(1, 12)))]), label="tasks")
    r = tried.schedule(tasks)
    for g in ("ga", "gb"):
        members = [t.id for t in tasks if t.gang == g]
        placed = [m for m in members if m in r.assignments]
        assert placed in ([], members)
        assert all(m in tried.held_tasks() for m in placed)
        assert all((m in r.failures) == (not placed) for m in members)
    # The same call without the gangs that failed, in the order the gangs were tried: the same
    # placements and exactly the same state.
    anchor = {}
    for pos, t in enumerate(tasks):
        anchor.setdefault(t.gang, pos)
    ordered = sorted(range(len(tasks)), key=lambda p: (anchor[tasks[p].gang] if tasks[p].gang else p, p))
    failed_gangs = {t.gang for t in tasks if t.gang and t.id in r.failures}
    rest = [tasks[p] for p in ordered if tasks[p].gang not in failed_gangs]
    c = control.schedule(rest)
    want = summary(c)
    got = summary(r)
    got["failures"] = {t: f for t, f in got["failures"].items() if f[0] != {"gang": len(hosts)}}
    assert got == want
    # Scalar names of the failed members are noted (as for any task asked for); else the same.
    a, b = snapshot(tried), snapshot(control)
    names = set(b["resources"])
    for key in ("usage", "free"):
        a[key] = {h: {r: x for r, x in row.items() if r in names} for h, row in a[key].items()}
    assert set(a.pop("resources")) >= names
    b.pop("resources")
    assert a == b


@settings(max_examples=100, deadline=None)
@given(data=st.data(), impl=st.sampled_from(sorted(SCHEDULER_CLASSES)))
def test_array_gangs_place_as_object_gangs(data, impl):
    # A gang class k on the array path is the gang named "classes[k]" on the object path: the
    # same placements, failures (messages included) and state.
    cls = SCHEDULER_CLASSES[impl]()
    options = {**data.draw(gen.scheduler_options(), label="options"), "task_order": "given"}
    hosts = data.draw(gen.hosts(max_size=6), label="hosts")
    objs, arrs = cls(**options), cls(**options)
    objs.add_hosts(hosts)
    arrs.add_hosts(hosts)
    n_classes = data.draw(st.integers(1, 4), label="classes")
    shapes = [data.draw(gen.task_shapes()) for _ in range(n_classes)]
    gang = [data.draw(st.booleans()) for _ in range(n_classes)]
    prio = [data.draw(st.sampled_from(gen.PRIORITIES)) for _ in range(n_classes)]
    known = set(objs.resources)
    rows = data.draw(st.lists(st.integers(0, n_classes - 1), min_size=1, max_size=12), label="rows")
    tasks = []
    for i, k in enumerate(rows):
        d = data.draw(gen.demands())
        d["scalars"] = {s: q for s, q in d["scalars"].items() if s in known}
        tasks.append(Task(f"t{i}", **d, **shapes[k], priority=prio[k],
                          gang=f"classes[{k}]" if gang[k] else None))
    r = objs.schedule(tasks)
    resources = arrs.resources
    demand = np.array([[t.cpus, t.memory_mb, t.disk_mb, t.network_mbps,
                        *[t.scalars.get(s, 0) for s in resources[4:]]] for t in tasks], dtype=np.float64)
    classes = [gen.gang_class_of(Task("x", **shapes[k], priority=prio[k]), gang[k]) for k in range(n_classes)]
    ids = [t.id for t in tasks]
    out, failures = arrs.schedule_arrays(demand, np.array(rows, dtype=np.int32), classes, task_ids=ids,
                                         explain=True)
    host_ids = arrs.host_ids
    assert {ids[i]: host_ids[h] for i, h in enumerate(out.tolist()) if h >= 0} == r.assignments
    assert {ids[i]: f for i, f in failures.items()} == r.failures
    assert snapshot(objs) == snapshot(arrs)
