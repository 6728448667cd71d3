"""Attacks on how the schedulers read the values of their input: quantities and integer fields
read by the value they hold (``titus.readers``), equality-redefining subclasses refused, a
constraint subclass keyed as its plain kind, each input object read once, and the score bound's
capacity extremes renewed as hosts come and go. Each test runs the compiled engine and the
pure-Python twin and asks that they agree, that nothing over-commits, that a refused call names
its field with a ValueError and changes nothing. A test whose docstring says "once" names the
fault it was written against.
"""
from __future__ import annotations

import random
import re
from collections.abc import Mapping

import numpy as np
import pytest

from titus import Host, Task, TaskClass
from titus.constraints import BalancedHostAttr, HostAttrValue
from titus.scheduler.validation import InputTypeError
from titus.workloads.runner import make_scheduler

from tests.scheduler.helpers import OtherIntegral, scheduler_state

ENGINES = ("native", "reference")


def _both(**options):
    return {e: make_scheduler(e, **options) for e in ENGINES}


def _outcome(call):
    """("ok", value) or (exception type name, message)."""
    try:
        return ("ok", call())
    except Exception as e:  # noqa: BLE001 -- the type is what is compared
        return (type(e).__name__, str(e))


# --------------------------------------------------------------------------- claims that hold
class _LyingFloat(float):
    def __float__(self):
        return float("nan")


class _LyingInt(int):
    def __int__(self):
        return 9

    __index__ = __int__


class _LyingNpFloat(np.float64):
    def __float__(self):
        return float("nan")

    def item(self, *args):
        return float("nan")


@pytest.mark.parametrize("cls", [_LyingFloat, _LyingInt, _LyingNpFloat])
def test_lying_quantities_are_placed_by_their_value_on_both(cls):
    out = {}
    for e, s in _both().items():
        s.add_hosts([Host("h0", cpus=cls(2), memory_mb=cls(4), scalars={"gpu": cls(1)}),
                     Host("h1", cpus=cls(3), memory_mb=cls(4))])
        s.set_group_limits({"g": {"cpus": cls(4)}})
        s.add_running(Task("r", cpus=cls(1), scalars={"gpu": cls(1)}), "h0")
        r = s.schedule([Task(f"t{i}", cpus=cls(1), group="g") for i in range(6)])
        out[e] = (r.assignments, {k: f.message for k, f in r.failures.items()}, scheduler_state(s))
        for h in ("h0", "h1"):
            free = s.host_free(h)
            assert all(v >= -1e-9 for v in free.values()), (e, h, free)
    assert out["native"] == out["reference"]
    assert len(out["native"][0]) == 4  # the group limit of 4 cpus, read as 4


def test_lying_integer_fields_are_read_by_value_on_both():
    out = {}
    for e, s in _both().items():
        s.add_hosts([Host("h", cpus=8, ports=[(1, 20)], attributes={"z": "a"})])
        s.add_running(Task("r", ports=_LyingInt(2)), "h", ports=[_LyingInt(3), 4])
        r = s.schedule([Task("t", cpus=1, ports=_LyingInt(2), priority=_LyingInt(1), job="j",
                             hard=[BalancedHostAttr("z", _LyingInt(1))])])
        out[e] = (r.assignments, r.ports, scheduler_state(s))
    assert out["native"] == out["reference"]
    assert out["native"][1] == {"t": [1, 2]}


class _EqStr(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


class _HashInt(int):
    def __hash__(self):
        return 1


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("call, where", [
    (lambda s: s.add_hosts([Host(_EqStr("h"), cpus=1)]), "hosts[0].id"),
    (lambda s: s.add_hosts([Host("h", cpus=1, attributes={"z": _EqStr("a")})]), "hosts[0].attributes['z']"),
    (lambda s: s.add_hosts([Host("h", cpus=1, attributes={"z": _HashInt(3)})]), "hosts[0].attributes['z']"),
    (lambda s: s.schedule([Task("t", ports=_HashInt(1))]), "tasks[0].ports"),
    (lambda s: s.schedule([Task("t", hard=[HostAttrValue("z", _EqStr("a"))])]), "tasks[0].hard[0]"),
    (lambda s: s.set_eviction_quota(_EqStr("j"), 1), "job"),
    (lambda s: s.set_group_limits({"g": {_EqStr("cpus"): 1}}), "group_limits['g'] key"),
])
def test_equality_redefining_subclasses_are_refused_naming_the_field(engine, call, where):
    s = make_scheduler(engine)
    before = scheduler_state(s)
    with pytest.raises(InputTypeError, match=re.escape(where)):
        call(s)
    assert scheduler_state(s) == before


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("call, where", [
    (lambda s: s.add_hosts([Host("h", cpus=np.bool_(True))]), "hosts[0].cpus"),
    (lambda s: s.add_hosts([Host(True, cpus=1)]), "hosts[0].id"),
    (lambda s: s.add_hosts([Host("h", cpus=10**400)]), "hosts[0].cpus"),
    (lambda s: s.schedule([Task("t", cpus=-1e-300)]), "tasks[0].cpus"),
    (lambda s: s.set_group_limits({"g": {"cpus": float("inf")}}), "group_limits['g']['cpus']"),
    (lambda s: s.schedule([Task("t", priority=2**31)]), "tasks[0].priority"),
])
def test_odd_numbers_are_refused_naming_the_field(engine, call, where):
    s = make_scheduler(engine)
    with pytest.raises(ValueError, match=re.escape(where)):
        call(s)
    assert scheduler_state(s) == (("cpus", "memory_mb", "disk_mb", "network_mbps"), [], {}, {})


def test_odd_but_valid_numbers_agree():
    out = {}
    for e, s in _both().items():
        s.add_hosts([Host("h", cpus=np.float16(2.5), memory_mb=-0.0, disk_mb=5e-324,
                          network_mbps=np.uint64(2**64 - 1))])
        r = s.schedule([Task("a", cpus=np.float16(2.5), disk_mb=5e-324, network_mbps=np.float32(1e19)),
                        Task("b", cpus=1e-7)])
        out[e] = (r.assignments, {k: f.message for k, f in r.failures.items()}, scheduler_state(s))
    assert out["native"] == out["reference"]


def _lying_eq_kinds():
    """Fresh constraint subclasses whose == says every other instance is equal (fresh per test:
    the schedulers keep verdicts on constraints seen, module-wide)."""

    class AnyValue(HostAttrValue):
        def __eq__(self, other):
            return isinstance(other, AnyValue)

        def __hash__(self):
            return 7

    class AnyBalanced(BalancedHostAttr):
        def __eq__(self, other):
            return isinstance(other, AnyBalanced)

        def __hash__(self):
            return 7

    return AnyValue, AnyBalanced


def test_constraint_subclass_with_lying_equality_is_keyed_as_its_kind():
    out = {}
    for e, s in _both().items():
        AnyValue, _ = _lying_eq_kinds()
        s.add_hosts([Host(f"h{i}", cpus=4, attributes={"z": "ab"[i % 2]}) for i in range(4)])
        r = s.schedule([Task("ta", cpus=1, hard=[AnyValue("z", "a")]), Task("tb", cpus=1, hard=[AnyValue("z", "b")])])
        d = np.ones((2, 4))
        p = s.schedule_arrays(d, [0, 1], [TaskClass(hard=[AnyValue("z", "b")]), TaskClass(hard=[AnyValue("z", "a")])])
        out[e] = (r.assignments, p.tolist())
    assert out["native"] == out["reference"]
    a = out["native"][0]
    assert a["ta"] in ("h0", "h2") and a["tb"] in ("h1", "h3")


def test_capacity_extremes_follow_host_churn():
    """The score bound's extremes (CapExtremes) across calls while the biggest and smallest
    hosts come and go: the engine places as the twin does under the cpu binpackers."""
    for fit in ("cpu_binpack", "cpu_mem_binpack", "cpu_mem_fewest_hosts"):
        for seed in range(4):
            rng = random.Random(seed)
            ss = _both(fitness=fit, seed=seed)
            caps, n, t = {}, 0, 0

            def add(k):
                nonlocal n
                hs = []
                for _ in range(k):
                    c = rng.choice([1e-3, 0.5, 1, 2, 4, 8, 16, 96])
                    hs.append(Host(f"h{n}", cpus=c, memory_mb=rng.choice([1e-6, 1, 64, 1024]),
                                   network_mbps=rng.choice([1e-6, 1, 100])))
                    caps[f"h{n}"] = c
                    n += 1
                for s in ss.values():
                    s.add_hosts(hs)

            add(30)
            for step in range(8):
                if rng.random() < 0.4:
                    h = (max if rng.random() < 0.5 else min)(caps, key=caps.get)
                    del caps[h]
                    for s in ss.values():
                        s.remove_host(h)
                else:
                    add(1)
                if step == 4:
                    for s in ss.values():  # a resource added between calls
                        s.add_hosts([Host(f"g{seed}", cpus=0.25, scalars={"gpu": 1})])
                tasks = [Task(f"t{t + i}", cpus=rng.choice([1e-3, 0.25, 1, 3, 8]), memory_mb=rng.choice([0, 1, 50]),
                              network_mbps=rng.choice([0, 1e-6, 0.5])) for i in range(6)]
                t += 6
                a, b = (ss[e].schedule(tasks) for e in ENGINES)
                assert a.assignments == b.assignments, (fit, seed, step)


# --------------------------------------------------------------------------- faults found
@pytest.mark.parametrize("engine", ENGINES)
def test_longdouble_quantity_is_read_or_refused_by_name(engine):
    """make_scheduler("native").add_hosts([Host("h", cpus=np.longdouble(4))])
    expected: the host added with 4 cpus (or InputTypeError naming hosts[0].cpus);
    got: RecursionError (also for a task's demand, a group limit, a fitness weight)."""
    s = make_scheduler(engine)
    for call, where in ((lambda: s.add_hosts([Host("h", cpus=np.longdouble(4))]), "hosts[0].cpus"),
                        (lambda: s.set_group_limits({"g": {"cpus": np.longdouble(1)}}), "group_limits")):
        try:
            call()
        except InputTypeError as e:
            assert where in str(e)


_TD = np.timedelta64(1, "D")  # a numpy integer (np.signedinteger) whose item() is a datetime.timedelta


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("call, where", [
    (lambda s: s.add_hosts([Host("h", cpus=_TD)]), "hosts[0].cpus"),
    (lambda s: s.add_hosts([Host("h", cpus=1, attributes={"z": _TD})]), "hosts[0].attributes['z']"),
    (lambda s: s.add_hosts([Host("h", cpus=1, ports=[(_TD, _TD)])]), "hosts[0].ports[0]"),
    (lambda s: s.add_hosts([Host("h", cpus=1, resource_sets={"eni": (_TD, 2)})]), "hosts[0].resource_sets"),
    (lambda s: s.schedule([Task("t", ports=_TD)]), "tasks[0].ports"),
    (lambda s: s.schedule([Task("t", priority=_TD)]), "tasks[0].priority"),
    (lambda s: s.set_group_limits({"g": {"cpus": _TD}}), "group_limits['g']['cpus']"),
    (lambda s: s.set_eviction_quota("j", _TD), "n"),
])
def test_timedelta64_is_refused_naming_the_field(engine, call, where):
    """make_scheduler("native").schedule([Task("t", ports=np.timedelta64(1, "D"))])
    expected: InputTypeError "tasks[0].ports: ..."; got: TypeError "'<=' not supported between
    instances of 'int' and 'datetime.timedelta'" (and "a quantity is ... got timedelta" for cpus)."""
    s = make_scheduler(engine)
    with pytest.raises(ValueError, match=re.escape(where)):
        call(s)


class _LyingOrder(int):
    """An int that says it is in any range: the port-range check compares with the value's own
    operators, the encoder reads the value."""

    def __le__(self, other):
        return True

    def __ge__(self, other):
        return True

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return False


@pytest.mark.parametrize("engine", ENGINES)
def test_port_range_check_reads_values(engine):
    """s.add_hosts([Host("h", cpus=4, ports=[(_LyingOrder(-5), _LyingOrder(70000))])])
    expected: ValueError "hosts[0].ports[0]: port -5 is outside 0..65535"; got: accepted, and
    schedule gives the native engine's tasks ports [-5, -4, -3]."""
    s = make_scheduler(engine)
    with pytest.raises(ValueError, match=r"hosts\[0\]\.ports\[0\]"):
        s.add_hosts([Host("h", cpus=4, ports=[(_LyingOrder(-5), _LyingOrder(70000))])])


def test_port_range_of_another_integral_is_refused_alike():
    """s.add_hosts([Host("h", cpus=1, scalars={"gpu": 1}, ports=[(OtherIntegral(1), OtherIntegral(5))])])
    expected: InputTypeError naming hosts[0].ports[0] on both, nothing changed;
    got: native TypeError "an integer field is an int or a numpy integer" with 'gpu' left in
    resources; reference: the host added."""
    out = {}
    for e, s in _both().items():
        r = _outcome(lambda: s.add_hosts([Host("h", cpus=1, scalars={"gpu": 1},
                                               ports=[(OtherIntegral(1), OtherIntegral(5))])]))
        out[e] = (r[0], scheduler_state(s))
    assert out["native"] == out["reference"]
    assert out["native"][0] == "InputTypeError"
    assert out["native"][1][0] == ("cpus", "memory_mb", "disk_mb", "network_mbps")


def test_twin_reads_host_port_ranges_and_set_shapes_by_value():
    """Host("h", cpus=8, ports=[(_LyingInt(1), _LyingInt(2))], resource_sets={"eni": (_LyingInt(1), _LyingInt(1))})
    then schedule(4 tasks of 1 port and eni "sg"): native gives t0 port [1] and fails the rest on
    resource_set:eni; reference gives t0 port [9] and fails the rest on ports."""
    out = {}
    for e, s in _both().items():
        s.add_hosts([Host("h", cpus=8, ports=[(_LyingInt(1), _LyingInt(2))],
                          resource_sets={"eni": (_LyingInt(1), _LyingInt(1))})])
        r = s.schedule([Task(f"t{i}", cpus=0.1, ports=1, resource_sets={"eni": "sg"}) for i in range(4)])
        out[e] = (r.assignments, r.ports, {k: f.message for k, f in r.failures.items()})
    assert out["native"] == out["reference"]


def test_constraint_verdicts_not_keyed_by_a_lying_equality():
    """AnyBalanced(BalancedHostAttr) with __eq__ -> isinstance, __hash__ -> 7.
    s.schedule([Task("t0", job="j", hard=(AnyBalanced("z", 2),))]); then
    s.schedule([Task("t1", job="j", hard=(AnyBalanced("z", 0),))])
    expected: ValueError "tasks[0].hard[0] AnyBalanced.expected_values: must be an integer in
    1..": got: native places t1; reference raises ZeroDivisionError. With 2**40: native
    OverflowError "value too large to convert to int32_t", reference places it."""
    out = {}
    for e, s in _both().items():
        _, AnyBalanced = _lying_eq_kinds()
        s.add_hosts([Host(f"h{i}", cpus=4, attributes={"z": "ab"[i % 2]}) for i in range(4)])
        s.schedule([Task("t0", cpus=1, job="j", hard=(AnyBalanced("z", 2),))])
        out[e] = [_outcome(lambda: s.schedule([Task(f"t{k}", cpus=1, job="j", hard=(AnyBalanced("z", bad),))]))[0]
                  for k, bad in ((1, 0), (2, -3), (3, 2**40))]
    assert out["native"] == out["reference"] == ["ValueError"] * 3


class _Shifting(Mapping):
    """A scalars mapping that reads {"gpu": 1} at its first item read, {"gpu": nan} after."""

    def __init__(self):
        self.reads = 0

    def _d(self):
        self.reads += 1
        return {"gpu": 1.0} if self.reads <= 1 else {"gpu": float("nan")}

    def __getitem__(self, k):
        return self._d()[k]

    def __iter__(self):
        return iter(["gpu"])

    def __len__(self):
        return 1

    def items(self):
        return self._d().items()


def test_scalars_read_once():
    """make_scheduler(e).add_hosts([Host("h", cpus=1, scalars=_Shifting())]): both add the host
    with gpu 1 (the mapping read once). Once the engine refused with "caps: every value must be
    finite and >= 0, got nan", leaving 'gpu' in resources, and the twin added a NaN capacity."""
    out = {}
    for e, s in _both().items():
        r = _outcome(lambda: s.add_hosts([Host("h", cpus=1, scalars=_Shifting())]))
        out[e] = (r, scheduler_state(s), s.host_free("h") if s.host_ids else None)
    assert out["native"] == out["reference"]
    if out["native"][0][0] != "ok":
        assert "hosts[0].scalars" in out["native"][0][1]
        assert out["native"][1][0] == ("cpus", "memory_mb", "disk_mb", "network_mbps")


def _task_reading(field, first, later, n_first):
    """A Task subclass whose ``field`` reads ``first`` the first ``n_first`` times, then ``later``."""

    class Reading(Task):
        reads = 0

        def __getattribute__(self, name):
            if name == field:
                type(self).reads += 1
                return first if type(self).reads <= n_first else later
            return object.__getattribute__(self, name)

    return Reading


def test_task_fields_read_once():
    """T = a Task subclass whose cpus reads 1.0 twice, then NaN.
    s.add_hosts([Host("h0", cpus=4)]); s.schedule([T("t", cpus=1.0, scalars={"gpu": 0})]);
    s.schedule([Task(f"x{i}", cpus=2) for i in range(4)]): both place t by one reading, and
    never more than 4 cpus on h0. Once the twin held t with a NaN usage and then placed all four
    2-cpu tasks on h0 (8 cpus on 4), and the engine refused unnamed, keeping the name 'gpu'."""
    out = {}
    for e, s in _both().items():
        T = _task_reading("cpus", 1.0, float("nan"), 2)
        s.add_hosts([Host("h0", cpus=4, memory_mb=100)])
        first = _outcome(lambda: s.schedule([T("t", cpus=1.0, scalars={"gpu": 0})]).assignments)
        nxt = s.schedule([Task(f"x{i}", cpus=2) for i in range(4)]).assignments
        out[e] = (first[0], s.resources, nxt)
        assert s.host_usage("h0")["cpus"] <= 4 + 1e-9, (e, nxt)  # NaN fails too
    assert out["native"] == out["reference"]


def test_host_id_read_once():
    """H = a Host subclass whose id reads "h1" four times, then 5.
    s.add_hosts([H("h1", cpus=1)]): both add "h1". Once the engine registered the host as 5
    and the twin raised a bare TypeError."""

    def host_reading(n_first):
        class Reading(Host):
            reads = 0

            def __getattribute__(self, name):
                if name == "id":
                    type(self).reads += 1
                    return "h1" if type(self).reads <= n_first else 5
                return object.__getattribute__(self, name)

        return Reading

    out = {}
    for e, s in _both().items():
        s.add_hosts([Host("h0", cpus=1)])
        r = _outcome(lambda: s.add_hosts([host_reading(4)("h1", cpus=1)]))
        out[e] = (r[0], s.host_ids)
        assert all(h is None or isinstance(h, str) for h in s.host_ids), (e, s.host_ids)
    assert out["native"] == out["reference"]
