"""Attacks on "every input object is read once" that the field-by-field copies did not stop.

The compiled fast path keeps an exact ``Task``/``Host``/``TaskClass`` with plain fields as it is
and reads its instance dict. Each test here is caller code that still ran between the check of
such an object and its encoding (or the twin's read), or a check that ran the caller's code
while believing it ran none: a key in the instance dict hashing like a field, the full check of
a later item in the same batch, a constraint field of a caller's type, a ``__class__``
property, a descriptor lying to the equality test, an id whose ``==`` changes its answer, an
array's ``__array__``, an option of a caller's string type. Each must give the same outcome on
the engine and the twin, refuse with a ValueError naming the field and change nothing, and
never over-commit a host.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from titus import Host, Task, TaskClass
from titus.constraints import HostAttrValue
from titus.workloads.runner import make_scheduler

from tests.scheduler.helpers import assert_within_capacity, scheduler_state

ENGINES = ("native", "reference")
NAN = float("nan")


def _outcome(call):
    try:
        r = call()
        return ("ok", r)
    except Exception as e:  # noqa: BLE001 -- the type and message are what is compared
        return (type(e).__name__, re.sub(r" at 0x[0-9a-f]+", "", str(e)))  # objects made per engine


def _zones(s):
    s.add_hosts([Host("h0", cpus=4, memory_mb=100, attributes={"zone": "a"}),
                 Host("h1", cpus=4, memory_mb=100, attributes={"zone": "b"})])


def _both(make_call, setup=_zones, summary=None):
    """``make_call()`` gives (call, checks) afresh for each engine; returns {engine: (outcome,
    state)} after checking that a refusal is a ValueError that changed nothing and that no host
    is over-committed; the two engines must agree."""
    out = {}
    for e in ENGINES:
        s = make_scheduler(e)
        setup(s)
        before = scheduler_state(s)
        r = _outcome(lambda: make_call()(s))
        if r[0] != "ok":
            assert r[0] in ("ValueError", "InputTypeError", "UnknownIdError"), (e, r)
            assert scheduler_state(s) == before, e
        assert_within_capacity(s)
        out[e] = (r[0], r[1] if r[0] != "ok" else (summary or _summary)(r[1]), scheduler_state(s))
    assert out["native"] == out["reference"], out
    return out["native"]


def _summary(r):
    if r is None:
        return None
    if hasattr(r, "assignments"):
        return (r.assignments, {k: str(f) for k, f in r.failures.items()})
    return r


class _Collide:
    """A dict key hashing like the field ``name``: a lookup of that field compares with it."""

    def __init__(self, name, hook):
        self.name, self.hook = name, hook

    def __hash__(self):
        return hash(self.name)

    def __eq__(self, other):
        self.hook()
        return False


def _rigged(obj, name, answers):
    """``obj`` (an exact instance) with a key in its instance dict hashing like field ``name``:
    the k-th lookup of ``name`` sets it to ``answers[k]`` first (the last after that)."""
    box: dict = {}
    reads = [0]

    def hook():
        if box.get("busy") or "d" not in box:
            return
        box["busy"] = True
        box["d"][name] = answers[min(reads[0], len(answers) - 1)]
        reads[0] += 1
        box["busy"] = False

    d = {_Collide(name, hook): None}
    d.update(vars(obj))
    object.__setattr__(obj, "__dict__", d)
    box["d"] = d
    READS[id(obj)] = reads
    return obj


READS: dict = {}  # id of a rigged object -> [how many lookups of its field ran the hook]


# ----------------------------------------------------------------------------- instance dicts
@pytest.mark.parametrize("field, answers", [("cpus", [1.0, NAN]), ("cpus", [1.0, 1e300]), ("id", ["t", 5]),
                                            ("memory_mb", [0.0, -5.0])])
def test_a_task_dict_key_hashing_like_a_field_cannot_change_it_after_the_check(field, answers):
    """``t = Task("t", cpus=1.0)``; its instance dict gets a key of another type whose hash is
    ``hash("cpus")`` and whose ``__eq__`` sets ``t.__dict__["cpus"]``: 1.0 at the fast path's
    read, NaN at the encoder's. The twin held a NaN usage (over-committed), the engine refused
    with "demand: every value must be finite", unnamed. Such a dict takes the full check."""
    def make():
        t = _rigged(Task("t", cpus=1.0), field, answers)
        return lambda s: s.schedule([t])

    _both(make)


@pytest.mark.parametrize("field, answers", [("cpus", [4.0, NAN]), ("cpus", [4.0, 1e300]), ("id", ["h9", 5]),
                                            ("id", ["h9", "h9", "h9", 5])])
def test_a_host_dict_key_hashing_like_a_field_cannot_change_it_after_the_check(field, answers):
    """``h = Host("h9", cpus=4)`` with a key hashing like ``"cpus"`` (or ``"id"``) in its dict:
    the check read 4.0 and the encoder NaN or 1e300 (a host of 4 checked cpus given 100), or
    the id "h9" checked and 5 registered (the engine's host_ids held the int 5), or a bare
    TypeError from fnv1a64."""
    def make():
        h = _rigged(Host("h9", cpus=4.0, memory_mb=10.0), field, answers)

        def call(s):
            s.add_hosts([h])
            assert READS[id(h)][0] == 1, READS[id(h)]  # the field looked up once (by the copy)
            cap = {k: s.host_usage(k)["cpus"] + s.host_free(k)["cpus"] for k in s.host_ids}
            return s.schedule([Task("big", cpus=100.0)]), cap

        return call

    out = _both(make, summary=lambda r: (_summary(r[0]), r[1]))
    if out[0] == "ok":
        # The capacity held is one value the field answered (which read comes first is the
        # interpreter's business), and the 100-cpu task is placed exactly where it fits.
        (assignments, _), cap = out[1]
        assert all(math.isfinite(c) for c in cap.values()), cap
        if field == "cpus":
            assert cap["h9"] in answers, cap
        assert all(cap[h] >= 100.0 for h in assignments.values()), out


def test_a_constraint_dict_key_hashing_like_a_field_cannot_change_it_after_the_check():
    """``c = HostAttrValue("zone", "a")`` with a key hashing like ``"values"`` in its dict:
    ("a",) to the check, a lone surrogate to the encoder (the task was placed nowhere). The
    value read once is checked: the task goes to zone a, or is refused naming the value."""
    def make():
        c = _rigged(HostAttrValue("zone", "a"), "values", [("a",), ("\ud800",)])
        return lambda s: s.schedule([Task("t", cpus=1.0, hard=(c,))])

    out = _both(make)
    if out[0] == "ok":
        assert out[1][0] == {"t": "h0"}, out
    else:
        assert out[1].startswith("tasks[0].hard[0] HostAttrValue.values[0]:"), out


# ----------------------------------------------------------------------------- mixed batches
def _mutator(base, hook):
    class Sub(base):
        def __getattribute__(self, name):
            if name == "id":
                hook()
            return object.__getattribute__(self, name)
    return Sub


@pytest.mark.parametrize("attack", ["cpus", "scalars", "hard_list", "constraint", "id"])
def test_a_later_item_of_the_batch_cannot_change_a_plain_one_already_checked(attack):
    """``t0 = Task("t0", cpus=1.0)`` passes the fast path; ``t1``, a Task subclass, sets
    ``object.__setattr__(t0, "cpus", nan)`` when its id is read by the full check. The engine
    encoded t0 as changed (refused "demand: every value must be finite"); the twin placed it
    with a NaN usage. Likewise t0's scalars dict filled, its hard list appended to, its
    constraint's values changed in place, its id made an int."""
    def make():
        c = HostAttrValue("zone", "a")
        t0 = Task("t0", cpus=1.0, hard=[c])

        def hook():
            if attack == "cpus":
                object.__setattr__(t0, "cpus", NAN)
            elif attack == "scalars":
                t0.scalars["gpu"] = NAN
            elif attack == "hard_list":
                t0.hard.append(HostAttrValue("zone", "\ud800"))
            elif attack == "constraint":
                object.__setattr__(c, "values", ("b",))
            else:
                object.__setattr__(t0, "id", 5)

        t1 = _mutator(Task, hook)("t1", cpus=1.0)
        return lambda s: s.schedule([t0, t1])

    out = _both(make)
    assert out[0] == "ok" and out[1][0] == {"t0": "h0", "t1": "h0"}


def test_a_later_host_of_the_batch_cannot_change_a_plain_one_already_checked():
    """``h0 = Host("h9", cpus=4, attributes={"zone": "a"})`` passes the fast path; a Host
    subclass later in the batch sets h0's cpus to NaN and its attributes' zone to a lone
    surrogate when its id is read."""
    def make():
        h0 = Host("h9", cpus=4.0, attributes={"zone": "a"})

        def hook():
            object.__setattr__(h0, "cpus", NAN)
            h0.attributes["zone"] = "\ud800"

        h1 = _mutator(Host, hook)("h10", cpus=1.0)
        return lambda s: (s.add_hosts([h0, h1]), s.schedule([Task("big", cpus=3.0, hard=[HostAttrValue("zone", "a")])]))[1]

    out = _both(make)
    assert out[1][0] == {"big": "h9"}


def test_a_later_class_cannot_change_a_plain_one_already_checked():
    """``schedule_arrays`` with ``[TaskClass(hard=[c]), Sub(...)]``: the subclass's read of its
    job sets ``c``'s values to ("b",) in place after the plain class passed."""
    def make():
        c = HostAttrValue("zone", "a")

        class Sub(TaskClass):
            def __getattribute__(self, name):
                if name == "job":
                    object.__setattr__(c, "values", ("b",))
                return object.__getattribute__(self, name)

        classes = [TaskClass(hard=[c]), Sub()]
        return lambda s: s.schedule_arrays(np.array([[1.0, 1.0, 0.0, 0.0]]), np.zeros(1, dtype=np.int32), classes).tolist()

    out = _both(make)
    assert out[1] == [0]


def test_reading_the_arrays_cannot_change_a_class_already_checked():
    """The demand's ``__array__`` ran after the classes were checked and keyed: it emptied the
    attribute of the class's constraint (``object.__setattr__(c, "attr", "")``), which was
    encoded unchecked. The arrays are now read before the classes are checked."""
    def make():
        c = HostAttrValue("zone", "a")

        class Demand:
            def __array__(self, dtype=None, copy=None):
                object.__setattr__(c, "attr", "")
                return np.array([[1.0, 1.0, 0.0, 0.0]])

        return lambda s: s.schedule_arrays(Demand(), np.zeros(1, dtype=np.int32), [TaskClass(hard=(c,))]).tolist()

    out = _both(make)
    assert out[0] == "ValueError" and out[1].startswith("classes[0].hard[0] HostAttrValue.attr:"), out


def test_a_flag_with_a_class_property_cannot_change_the_tasks_checked():
    """``schedule([t], preempt=X)`` where X's ``__class__`` property (read by ``isinstance``
    after the tasks were checked) sets t's cpus to NaN and claims to be a bool."""
    def make():
        t = Task("t", cpus=1.0)

        class Flag:
            @property
            def __class__(self):
                object.__setattr__(t, "cpus", NAN)
                return bool

            def __bool__(self):
                return False

        return lambda s: s.schedule([t], preempt=Flag())

    out = _both(make)
    assert out[0] == "InputTypeError" and out[1].startswith("preempt:")


def test_add_running_reads_the_task_once_whatever_the_host_id_and_ports_run():
    """``add_running(t, HId("h0"))`` where ``HId.__hash__`` (the host lookup, after the task's
    check) sets ``t.cpus`` to NaN: the twin held a NaN usage."""
    def make():
        t = Task("t", cpus=1.0, ports=1)

        class HId(str):
            def __hash__(self):
                object.__setattr__(t, "cpus", NAN)
                return str.__hash__(self)

        class Ports:
            def __iter__(self):
                object.__setattr__(t, "memory_mb", NAN)
                return iter([100])

        return lambda s: s.add_running(t, HId("h0"), Ports())

    def setup(s):
        s.add_hosts([Host("h0", cpus=4, memory_mb=100, ports=[(100, 101)])])

    _both(make, setup)


# ----------------------------------------------------------------------------- constraint fields
class _Vals(tuple):
    """Iterated, it answers ("a",) the first time and ("b",) after."""

    seen = 0

    def __iter__(self):
        _Vals.seen += 1
        return iter(("a",) if _Vals.seen == 1 else ("b",))


def test_an_exact_constraint_with_a_field_of_a_callers_type_is_read_once():
    """``c = HostAttrValue("zone", "a")``; ``object.__setattr__(c, "values", _Vals(("a",)))``:
    the constraint check iterated ("a",), the engine and the twin each ("b",), and the task was
    placed in zone b against its hard constraint."""
    def make():
        _Vals.seen = 0
        c = HostAttrValue("zone", "a")
        object.__setattr__(c, "values", _Vals(("a",)))
        return lambda s: s.schedule([Task("t", cpus=1.0, hard=(c,))])

    out = _both(make)
    assert out[1][0] == {"t": "h0"}


def test_a_kept_verdict_does_not_vouch_for_a_constraint_changed_in_place():
    """``c = HostAttrValue("rack", 3)`` checked once (its verdict kept under a key holding
    ``c``); then ``object.__setattr__(c, "values", (big,))`` with ``big`` a 5000-digit int whose
    hash is 3 (too long to compare as text): the kept verdict still said valid, and the
    encoder raised a bare ValueError unnamed (the twin raised in the middle of placing)."""
    big = 3 + (2**61 - 1) * 10**5000
    assert hash(big) == hash(3)
    for e in ENGINES:
        c = HostAttrValue("rack", 3)
        s = make_scheduler(e)
        s.add_hosts([Host("h0", cpus=4, attributes={"rack": 3})])
        assert s.schedule([Task("a", cpus=1.0, hard=(c,))]).assignments == {"a": "h0"}
        object.__setattr__(c, "values", (big,))
        before = scheduler_state(s)
        with pytest.raises(ValueError, match=r"^tasks\[1\]\.hard\[0\] HostAttrValue\.values\[0\]: integer too long"):
            s.schedule([Task("b", cpus=1.0), Task("c", cpus=1.0, hard=(c,))])
        assert scheduler_state(s) == before


def test_a_constraint_changed_by_a_later_read_of_the_full_check_is_kept_as_checked():
    """A Task subclass (full check) with ``hard=[c, Sneaky()]``: ``c`` an exact HostAttrValue
    on zone a, returned as it was by the copy; reading Sneaky's ``attr`` sets ``c``'s values to
    ("b",) after ``c`` was checked."""
    def make():
        c = HostAttrValue("zone", "a")

        class Sneaky(HostAttrValue):
            def __getattribute__(self, name):
                if name == "attr":
                    object.__setattr__(c, "values", ("b",))
                return object.__getattribute__(self, name)

        class T(Task):
            pass

        return lambda s: s.schedule([T("t", cpus=1.0, hard=[c, Sneaky("zone", ["a", "b"])])])

    out = _both(make)
    assert out[1][0] == {"t": "h0"}


# ----------------------------------------------------------------------------- types that lie
class _ClaimsStr:
    @property
    def __class__(self):
        return str


class _ClaimsInt:
    @property
    def __class__(self):
        return int


@pytest.mark.parametrize("call, where", [
    (lambda s: s.schedule([Task(_ClaimsStr(), cpus=1.0)]), "tasks[0].id"),
    (lambda s: s.schedule([Task("t", ports=_ClaimsInt())]), "tasks[0].ports"),
    (lambda s: s.schedule([Task("t", cpus=_ClaimsInt())]), "tasks[0].cpus"),
    (lambda s: s.add_hosts([Host("h9", attributes={"zone": _ClaimsStr()})]), "hosts[0].attributes['zone']"),
    (lambda s: s.schedule([Task("t", hard=[HostAttrValue("zone", _ClaimsInt())])]), "tasks[0].hard[0]"),
    (lambda s: s.set_eviction_quota("j", _ClaimsInt()), "n:"),
])
def test_a_class_property_is_refused_naming_the_field(call, where):
    """An object whose ``__class__`` property says ``str`` (or ``int``) passed ``isinstance`` and
    then failed in ``str.__len__``/``int.__index__`` with a bare TypeError."""
    out = _both(lambda: call)
    assert out[0] == "InputTypeError" and out[1].startswith(where), out


def test_a_descriptor_cannot_hide_a_redefined_hash():
    """``class S(str): __hash__ = Lie()`` where ``Lie.__get__`` answers ``str.__hash__`` on the
    class and a constant on an instance: the equality test saw ``str``'s hash, and two hosts
    with id "a" were added."""
    class Lie:
        def __get__(self, obj, cls):
            return str.__hash__ if obj is None else (lambda: 7)

    class S(str):
        __hash__ = Lie()

    out = _both(lambda: lambda s: s.add_hosts([Host(S("a"), cpus=1), Host("a", cpus=1)]))
    assert out[0] == "InputTypeError" and out[1].startswith("hosts[0].id: a str subclass")


def test_a_metaclass_cannot_stand_for_a_value():
    """A ``str`` subclass with its own metaclass, whose ``__getattribute__`` makes up the class's
    ``__hash__`` (``str.__hash__``) while its instances hash to 7: two hosts "a" were added."""
    class Meta(type):
        def __getattribute__(cls, name):
            if name in ("__eq__", "__ne__", "__hash__"):
                return getattr(str, name)
            return type.__getattribute__(cls, name)

    class S(str, metaclass=Meta):
        def __hash__(self):
            return 7

    out = _both(lambda: lambda s: s.add_hosts([Host(S("a"), cpus=1), Host("a", cpus=1)]))
    assert out[0] == "InputTypeError" and out[1].startswith("hosts[0].id:")


class _Flip(str):
    """Equal to its characters at the first comparison only."""

    __hash__ = str.__hash__

    def __new__(cls, text):
        obj = str.__new__(cls, text)
        obj.n = 0
        return obj

    def __eq__(self, other):
        self.n += 1
        return self.n == 1 and str.__eq__(self, other)


@pytest.mark.parametrize("call", [
    lambda s: s.remove_hosts(["h0", _Flip("h1")]),
    lambda s: s.remove_host(_Flip("h1")),
    lambda s: (s.schedule([Task("t", cpus=1.0)]), s.release(_Flip("t")))[0].assignments,
])
def test_an_id_whose_equality_changes_is_looked_up_by_its_characters(call):
    """``remove_hosts(["h0", Flip("h1")])``: Flip("h1") was found by the check, then not by the
    removal: h0 was removed and UnknownIdError raised (not all or nothing). A single
    ``remove_host`` or ``release`` raised a bare KeyError with the engine's host or task
    already gone."""
    out = _both(lambda: call)
    assert out[0] == "ok", out


# ----------------------------------------------------------------------------- options
def test_the_index_option_is_checked_alike():
    """``index`` was not checked: the engine called its ``__bool__`` (a ZeroDivisionError
    escaped) and the twin ignored it."""
    class Boom:
        def __bool__(self):
            raise ZeroDivisionError("boom")

    for bad in (Boom(), "yes", 1):
        got = {e: _outcome(lambda: make_scheduler(e, index=bad)) for e in ENGINES}
        assert got["native"][0] == got["reference"][0] == "InputTypeError", got
        assert got["native"][1] == got["reference"][1]


def test_a_fitness_name_of_a_string_subclass_is_read_by_its_characters():
    """``fitness=Fit("cpu_mem_binpack")`` whose ``endswith``/``replace`` say otherwise: the twin
    scored by ``cpu_spread`` and placed elsewhere than the engine."""
    class Fit(str):
        def endswith(self, x):
            return True

        def replace(self, a, b):
            return "cpu_binpack"

    got = {}
    for e in ENGINES:
        s = make_scheduler(e, fitness=Fit("cpu_mem_binpack"))
        s.add_hosts([Host("h0", cpus=4, memory_mb=1000), Host("h1", cpus=8, memory_mb=100)])
        s.schedule([Task("busy", cpus=2, memory_mb=50)])
        got[e] = s.schedule([Task("t", cpus=1, memory_mb=10)]).assignments
    assert got["native"] == got["reference"]


def test_an_option_name_whose_equality_lies_is_read_by_its_characters():
    """A fitness or task-order name equal to every string: accepted as a known name, then a
    bare KeyError (the engine's table looks it up by hash)."""
    class Any(str):
        __hash__ = str.__hash__

        def __eq__(self, other):
            return True

    for opt in ({"fitness": Any("nope")}, {"fitness": {Any("nope"): 1}}, {"task_order": Any("nope")}):
        got = {e: _outcome(lambda: make_scheduler(e, **opt)) for e in ENGINES}
        assert got["native"][0] == got["reference"][0] == "ValueError", (opt, got)
