"""schedule_arrays places exactly as schedule would for the same tasks in the same order."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from titus.constraints import UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass

from tests.scheduler import strategies as gen
from tests.scheduler.helpers import held_ids, snapshot, summary

# A failing random case may shrink for minutes before it reports the minimal case.
pytestmark = pytest.mark.timeout(900)


def demand_matrix(tasks, resources):
    """Rows of task demand in ``resources`` column order."""
    return np.array([[t.cpus, t.memory_mb, t.disk_mb, t.network_mbps,
                      *[t.scalars.get(name, 0) for name in resources[4:]]] for t in tasks],
                     dtype=np.float64).reshape(len(tasks), len(resources))


def cpu_rows(n):
    """``n`` rows asking for one cpu and nothing else."""
    return np.array([[1.0, 0, 0, 0]] * n)


def test_returns_host_indices_and_minus_one(make_scheduler):
    s = make_scheduler([Host("a", cpus=2), Host("b", cpus=1)], fitness="cpu_binpack")
    out = s.schedule_arrays(np.array([[1.0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]),
                            np.zeros(4, dtype=np.int32), [TaskClass()])
    assert isinstance(out, np.ndarray) and out.dtype == np.int32 and out.shape == (4,)
    assert sorted(out.tolist()) == [-1, 0, 0, 1]


def test_rows_share_the_class_job_and_constraints(make_scheduler):
    s = make_scheduler([Host(f"h{i}", cpus=8) for i in range(3)], fitness="cpu_binpack")
    classes = [TaskClass(job="j", hard=[UniqueHostAttr()]), TaskClass(job="k")]
    out = s.schedule_arrays(cpu_rows(5), np.array([0, 0, 0, 0, 1], dtype=np.int32), classes)
    assert len(set(out[:3].tolist())) == 3 and out[3] == -1 and out[4] >= 0


def test_array_tasks_hold_capacity_even_without_ids(make_scheduler):
    s = make_scheduler([Host("h", cpus=2)])
    assert s.schedule_arrays(cpu_rows(2), np.zeros(2, dtype=np.int32), [TaskClass()]).tolist() == [0, 0]
    assert s.schedule([Task("t", cpus=1)]).failures["t"].counts == {"cpus": 1}


def test_array_tasks_with_ids_can_be_released(make_scheduler):
    s = make_scheduler([Host("h", cpus=2, ports=[(7, 8)])])
    out = s.schedule_arrays(cpu_rows(2), np.zeros(2, dtype=np.int32), [TaskClass(ports=1)],
                            task_ids=["a", "b"])
    assert out.tolist() == [0, 0]
    assert held_ids(s) == ["a", "b"] and s.task_host("a") == "h"
    s.release("a")
    r = s.schedule([Task("c", cpus=1, ports=1)])
    assert r.ports == {"c": [7]}


def test_any_float_convertible_layout_is_accepted(make_scheduler):
    hosts = [Host(f"h{i}", cpus=4 + i, memory_mb=1000) for i in range(4)]
    rows = [[1, 100, 0, 0], [2, 300, 0, 0], [1, 50, 0, 0], [3, 10, 0, 0]]
    expected = make_scheduler(hosts).schedule_arrays(np.array(rows, dtype=np.float64),
                                                     np.zeros(4, np.int32), [TaskClass()])
    for demand, task_class in [
        (rows, [0, 0, 0, 0]),                                       # lists of ints
        (np.array(rows, dtype=np.int64), np.zeros(4, np.int64)),    # other integer widths
        (np.asfortranarray(np.array(rows, dtype=np.float64)), np.zeros(4, np.int32)),
        (np.array(rows, dtype=np.float64)[:, :], np.zeros(8, np.int32)[::2]),  # strided view
    ]:
        out = make_scheduler(hosts).schedule_arrays(demand, task_class, [TaskClass()])
        assert out.tolist() == expected.tolist()


@pytest.mark.parametrize("with_ids", [True, False])
def test_fixed_case_matches_objects(make_scheduler, with_ids):
    hosts = [Host(f"h{i}", cpus=4, memory_mb=4096, ports=[(100, 101)], attributes={"zone": "ab"[i % 2]})
             for i in range(4)]
    tasks = [Task(f"t{i}", cpus=1 + i % 2, memory_mb=512, ports=i % 2, job="j",
                  soft=[UniqueHostAttr("zone")]) for i in range(10)]
    by_objects = make_scheduler(hosts).schedule(tasks)
    s = make_scheduler(hosts)
    classes = [gen.task_class_of(t) for t in tasks]
    out = s.schedule_arrays(demand_matrix(tasks, s.resources), np.arange(10, dtype=np.int32), classes,
                            task_ids=[t.id for t in tasks] if with_ids else None)
    placed = {t.id: s.host_ids[i] for t, i in zip(tasks, out.tolist()) if i >= 0}
    assert placed == by_objects.assignments


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arrays_and_objects_agree_on_random_cases(scheduler_cls, data):
    options = data.draw(gen.scheduler_options(), label="options")
    cluster = data.draw(gen.hosts(max_size=10), label="hosts")
    by_objects, by_arrays = scheduler_cls(**options), scheduler_cls(**options)
    for s in (by_objects, by_arrays):
        s.add_hosts(cluster)
    # Some tasks already held, the same on both.
    earlier = data.draw(gen.tasks([f"e{i}" for i in range(data.draw(st.integers(0, 5)))]))
    assert summary(by_objects.schedule(earlier)) == summary(by_arrays.schedule(earlier))
    # A few shared classes, as rows of one job usually share them.
    shapes = data.draw(st.lists(gen.task_shapes(), min_size=1, max_size=3), label="classes")
    rows = data.draw(st.lists(st.tuples(gen.demands(), st.integers(0, len(shapes) - 1)),
                              min_size=1, max_size=15), label="rows")
    # A demand row has a column only for resources already known.
    known = set(by_arrays.resources)
    rows = [({**d, "scalars": {k: q for k, q in d["scalars"].items() if k in known}}, c) for d, c in rows]
    tasks = [Task(f"t{i}", **d, **shapes[c]) for i, (d, c) in enumerate(rows)]
    classes = [TaskClass(**shape) for shape in shapes]
    result = by_objects.schedule(tasks)
    out, failures = by_arrays.schedule_arrays(demand_matrix(tasks, by_arrays.resources),
                                              np.array([c for _, c in rows], dtype=np.int32), classes,
                                              task_ids=[t.id for t in tasks], explain=True)
    placed = {t.id: by_arrays.host_ids[i] for t, i in zip(tasks, out.tolist()) if i >= 0}
    assert placed == result.assignments
    # explain=True: the very Failure objects schedule gives, keyed by row.
    assert {tasks[row].id: f for row, f in failures.items()} == result.failures
    assert sorted(failures) == [i for i, h in enumerate(out.tolist()) if h < 0]
    assert snapshot(by_arrays) == snapshot(by_objects)
    later = data.draw(gen.tasks([f"l{i}" for i in range(5)]), label="later")
    assert summary(by_arrays.schedule(later)) == summary(by_objects.schedule(later))
