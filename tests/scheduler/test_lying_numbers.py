"""A number that says one thing to the check and another to the engine: a ``float``, ``int`` or
numpy subclass whose ``__float__``, ``__index__`` or ``item`` changes between calls. The check,
the encoder and the twin read a quantity as the value it holds (``titus.readers.quantity``), so
such an object is placed by that value on both sides; and the engine refuses any demand or
capacity that is not finite and >= 0 whatever reaches it (once, a NaN got into a host's usage
this way and the next call corrupted the heap)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from titus import Host, Task, TaskClass
from titus.readers import quantity
from titus.scheduler.validation import InputTypeError
from titus.workloads.runner import make_scheduler


def _flipping(base):
    """A subclass of ``base`` whose overrides answer the value once, then NaN (or -7)."""

    class Flipping(base):
        calls = 0

        def _next(self, first, later):
            type(self).calls += 1
            return first if type(self).calls == 1 else later

        def __float__(self):
            return self._next(1.0, float("nan"))

        def __index__(self):
            return self._next(1, -7)

        __int__ = __index__

        def item(self, *args):
            return self._next(1.0, float("nan"))

    return Flipping


FLIPPING = [_flipping(float), _flipping(int), _flipping(np.float64), _flipping(np.int64)]
ids = ["float", "int", "np.float64", "np.int64"]


def test_quantity_reads_the_value_held():
    for cls in FLIPPING:
        assert quantity(cls(3)) == 3.0
        assert quantity(cls(3)) == 3.0  # and again: no override is called
    assert quantity(10**400) == float("inf")
    assert quantity(np.float32(0.5)) == 0.5
    for bad in (True, "1", Fraction(1, 2), None):
        with pytest.raises(TypeError):
            quantity(bad)


def _hosts(cls):
    return [Host(id="h0", cpus=cls(2), memory_mb=100, scalars={"gpus": cls(1)}),
            Host(id="h1", cpus=2, memory_mb=cls(100))]


@pytest.mark.parametrize("cls", FLIPPING, ids=ids)
def test_task_and_host_quantities_placed_by_their_value(cls):
    outcomes = []
    for kind in ("native", "reference"):
        s = make_scheduler(kind, fitness="cpu_mem_binpack", seed=0)
        s.add_hosts(_hosts(cls))
        first = s.schedule([Task(id="t0", cpus=cls(1), memory_mb=1), Task(id="t1", cpus=1, memory_mb=cls(1)),
                            Task(id="t2", cpus=1, memory_mb=1, scalars={"gpus": cls(1)})])
        second = s.schedule([Task(id="t3", cpus=1, memory_mb=1), Task(id="t4", cpus=1, memory_mb=1)])
        outcomes.append((first.assignments, second.assignments, {t: f.message for t, f in second.failures.items()},
                         s.largest_free("cpus"), s.largest_free("memory_mb")))
    engine, twin = outcomes
    assert engine == twin
    assert engine[3] == 0.0  # 4 cpus, 4 tasks of one: all placed, none over
    assert len(engine[0]) + len(engine[1]) == 4  # the fifth finds no cpu left


@pytest.mark.parametrize("cls", FLIPPING, ids=ids)
def test_array_path_limits_and_running_tasks_read_by_value(cls):
    outcomes = []
    for kind in ("native", "reference"):
        s = make_scheduler(kind, fitness="cpu_mem_binpack", seed=0)
        s.add_hosts([Host(id="h0", cpus=4, memory_mb=100)])
        s.set_group_limits({"g": {"cpus": cls(2)}})
        s.add_running(Task(id="r0", cpus=cls(1), memory_mb=1), "h0")
        placed = s.schedule_arrays(np.array([[1.0, 1, 0, 0]] * 3), np.zeros(3, np.int32), [TaskClass(job="a", group="g")])
        outcomes.append((placed.tolist(), s.largest_free("cpus")))
    assert outcomes[0] == outcomes[1] == ([0, 0, -1], 1.0)


@pytest.mark.parametrize("field", ["cpus", "memory_mb", "disk_mb", "network_mbps"])
def test_other_number_types_refused_naming_the_field(field):
    for kind in ("native", "reference"):
        s = make_scheduler(kind, seed=0)
        with pytest.raises(InputTypeError, match=rf"hosts\[0\]\.{field}: must be a number \(a float, an int"):
            s.add_hosts([Host(id="h0", **{"cpus": 1, "memory_mb": 1, field: Fraction(1, 2)})])
        s.add_hosts([Host(id="h0", cpus=1, memory_mb=1)])
        with pytest.raises(InputTypeError, match=rf"tasks\[0\]\.{field}: must be a number \(a float, an int"):
            s.schedule([Task(id="t0", **{field: Fraction(1, 2)})])
        assert s.largest_free("cpus") == 1.0  # nothing held


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_the_engine_refuses_a_bad_demand_whatever_reaches_it(bad):
    s = make_scheduler("native", seed=0)
    s.add_hosts([Host(id="h0", cpus=4, memory_mb=100)])
    engine = s._engine
    cls, cons, vals, rs = s._codec.encode_classes([s._codec.class_key(TaskClass(job="a"))])
    groups, limits = s._codec.group_limits({})
    demand = np.array([[1.0, 1, 0, 0], [bad, 1, 0, 0]])
    none = np.empty(0, np.int32)
    with pytest.raises(ValueError, match="demand: every value must be finite and >= 0"):
        engine.schedule(demand, np.zeros(2, np.int32), cls, cons, vals, rs, groups, limits, False, False,
                        none, none, False, none, none)
    with pytest.raises(ValueError, match="demand: every value must be finite and >= 0"):
        engine.hold(0, np.array([bad, 1, 0, 0]), 0, -1, False, 0, None, np.empty((0, 2), np.int32), 0)
    caps = np.array([[bad, 1.0, 0, 0]])
    with pytest.raises(ValueError, match="caps: every value must be finite and >= 0"):
        engine.add_hosts(caps, np.zeros(1, np.uint64), np.empty((0, 3), np.int32), np.empty((0, 3), np.int32),
                         np.empty((0, 4), np.int32))
    assert engine.n_held == 0 and s.largest_free("cpus") == 4.0  # nothing changed
    assert s.schedule([Task(id="t", cpus=4, memory_mb=1)]).assignments == {"t": "h0"}
