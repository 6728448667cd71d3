"""Integer fields (``ports``, ``priority``, ``BalancedHostAttr.expected_values``) are read by
their value on the engine and the twin alike, whatever an int or numpy integer subclass's
``__int__``, ``__index__`` or ``item`` says; tasks with equal fields share a task class, so a
field read through such an override would place a task by its class-mate's number on one side
and by its own on the other. Any other ``numbers.Integral`` type is refused, naming the field."""
from __future__ import annotations

import numpy as np
import pytest

from titus import Host, Task, TaskClass
from titus.constraints import BalancedHostAttr
from titus.readers import int_value
from titus.scheduler.validation import InputTypeError
from titus.workloads.runner import make_scheduler

from tests.scheduler.helpers import IntSaysFive, NpSaysFive, OtherIntegral

LIARS = [IntSaysFive, NpSaysFive]


def _hosts(n=6, ports=((1000, 1004),)):
    return [Host(id=f"h{i}", cpus=8, memory_mb=1000, ports=ports, attributes={"zone": f"z{i % 3}"})
            for i in range(n)]


def _both(fn):
    """fn(scheduler) on the engine and on the twin; both outcomes."""
    out = []
    for kind in ("native", "reference"):
        s = make_scheduler(kind, fitness="cpu_mem_binpack", seed=0)
        out.append(fn(s))
    return out


def _tasks_of(classes, n):
    return [Task(id=f"t{i}", cpus=1, memory_mb=1, job=c.job, hard=c.hard, ports=c.ports, priority=c.priority)
            for i, c in ((i, classes[i % len(classes)]) for i in range(n))]


def _agree(classes, n, hosts):
    def arrays(s):
        s.add_hosts(hosts)
        placed, failures = s.schedule_arrays(np.ones((n, 4)) * [1, 1, 0, 0],
                                             np.arange(n, dtype=np.int32) % len(classes), classes, explain=True)
        return placed.tolist(), {r: f.message for r, f in failures.items()}

    def objects(s):
        s.add_hosts(hosts)
        r = s.schedule(_tasks_of(classes, n))
        return r.assignments, {t: f.message for t, f in r.failures.items()}

    for fn in (arrays, objects):
        engine, twin = _both(fn)
        assert engine == twin


def test_int_value_reads_the_value_not_the_overrides():
    assert int_value(IntSaysFive(2)) == 2 and type(int_value(IntSaysFive(2))) is int
    assert int_value(NpSaysFive(2)) == 2 and type(int_value(NpSaysFive(2))) is int
    assert int_value(np.int8(-3)) == -3
    for bad in (True, 2.0, "2", OtherIntegral(2), None):
        with pytest.raises(TypeError):
            int_value(bad)


@pytest.mark.parametrize("liar", LIARS)
@pytest.mark.parametrize("first", [True, False])
def test_balanced_count_read_by_value(liar, first):
    lying = TaskClass(job="a", hard=(BalancedHostAttr("zone", liar(2)),))
    plain = TaskClass(job="a", hard=(BalancedHostAttr("zone", 2),))
    # Read as 5 on one side only, the limit ceil(n / k) differs and so do the placements.
    _agree([lying, plain] if first else [plain, lying], 8, _hosts())


@pytest.mark.parametrize("liar", LIARS)
@pytest.mark.parametrize("first", [True, False])
def test_ports_read_by_value(liar, first):
    lying, plain = TaskClass(job="a", ports=liar(2)), TaskClass(job="a", ports=2)
    # Two hosts with five ports each: two tasks of two ports fit a host, one of five does.
    _agree([lying, plain] if first else [plain, lying], 5, _hosts(2))


@pytest.mark.parametrize("liar", LIARS)
def test_priority_read_by_value(liar):
    def run(s):
        s.add_hosts([Host(id="h0", cpus=2, memory_mb=100)])
        s.set_eviction_quota("low", 1)
        low = s.schedule_arrays(np.array([[2.0, 1, 0, 0]]), np.zeros(1, np.int32),
                                [TaskClass(job="low", priority=liar(3))], task_ids=["low0"])
        high, evicted = s.schedule_arrays(np.array([[2.0, 1, 0, 0]]), np.zeros(1, np.int32),
                                          [TaskClass(job="high", priority=4)], preempt=True)
        return low.tolist(), high.tolist(), evicted

    engine, twin = _both(run)
    assert engine == twin
    assert engine[2] == {0: ["low0"]}  # 3 < 4: evicted (read as 5, it would not be)


@pytest.mark.parametrize("field", ["ports", "priority", "expected_values"])
def test_other_integral_types_refused_naming_the_field(field):
    def run(s):
        s.add_hosts(_hosts(1))
        if field == "expected_values":
            c = TaskClass(job="a", hard=(BalancedHostAttr("zone", OtherIntegral(2)),))
        else:
            c = TaskClass(job="a", **{field: OtherIntegral(2)})
        with pytest.raises(InputTypeError, match=rf"classes\[0\].*{field}: must be an integer \(an int or a numpy"):
            s.schedule_arrays(np.ones((1, 4)), np.zeros(1, np.int32), [c])
        return True

    assert _both(run) == [True, True]
