"""Each input object is read once (``titus.scheduler.read_once``): a field that answers one
value to the check and another to the encoder or the twin cannot pass as one and be placed as
the other.

Every field of ``Host``, ``Task`` and ``TaskClass`` is attacked with a subclass whose field reads
a good value first and a bad one after (and the other way round), and so are the containers
inside (a mapping whose items change, a sequence whose items change, a constraint whose fields
do) and a field that raises. For each: the field is read exactly once per call, the compiled
engine and the twin give the same outcome, a refusal is a ValueError naming the field and
changes nothing, and what is accepted leaves every host within its capacity.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from titus import Host, Task, TaskClass
from titus.constraints import BalancedHostAttr, HostAttrValue
from titus.workloads.runner import make_scheduler

from tests.scheduler.helpers import assert_within_capacity, scheduler_state

ENGINES = ("native", "reference")
NAN = float("nan")


def shifting(base: type, answers: dict) -> type:
    """A subclass of ``base`` whose field ``f`` reads ``answers[f][k]`` at its k-th read (the last
    answer after that); ``.reads`` counts the reads of each attacked field."""
    reads: Counter = Counter()

    class Shifting(base):
        def __getattribute__(self, name):
            seq = answers.get(name)
            if seq is None:
                return object.__getattribute__(self, name)
            k = reads[name]
            reads[name] += 1
            return seq[min(k, len(seq) - 1)]

    Shifting.reads = reads
    return Shifting


def _outcome(call):
    try:
        call()
        return ("ok", None)
    except Exception as e:  # noqa: BLE001 -- the type and message are what is compared
        return (type(e).__name__, str(e))


def _cluster(s):
    s.add_hosts([Host(f"h{i}", cpus=4, memory_mb=1000, ports=[(100, 101)], scalars={"gpu": 1},
                      attributes={"zone": "ab"[i % 2]}, resource_sets={"eni": (1, 2)}) for i in range(2)])


def _attack(setup, call, field, where, cls):
    """Run ``call`` on both engines (after ``setup``); the field read once on each, the same
    outcome, a refusal naming ``where`` with nothing changed, capacity kept."""
    out = {}
    for e in ENGINES:
        s = make_scheduler(e)
        setup(s)
        before = scheduler_state(s)
        T = cls()
        r = _outcome(lambda: call(s, T))
        assert T.reads[field] == 1, (e, field, T.reads)
        if r[0] != "ok":
            assert r[0] in ("ValueError", "InputTypeError"), (e, r)
            assert where in r[1], (e, r)
            assert scheduler_state(s) == before, e
        assert_within_capacity(s)
        out[e] = (r, scheduler_state(s))
    assert out["native"] == out["reference"]


def _in_order(pair, order: str) -> list:
    """A field's (good, bad) values as the answers to its reads, in the order the test asks."""
    good, bad = pair
    return [good, bad] if order == "good-then-bad" else [bad, good]


# field -> (a good value, a bad one)
TASK_FIELDS = {
    "id": ("t", 5), "cpus": (1.0, NAN), "memory_mb": (10.0, -1.0), "disk_mb": (0.0, float("inf")),
    "network_mbps": (0.0, "1"), "ports": (1, -1), "scalars": ({"gpu": 1}, {"gpu": NAN}), "job": ("j", 5),
    "group": ("g", ""), "hard": ([HostAttrValue("zone", "a")], 5), "soft": ((BalancedHostAttr("zone", 2),), [1]),
    "resource_sets": ({"eni": "sg"}, {"eni": 5}), "gang": (None, 5), "priority": (0, 2**40),
}


@pytest.mark.parametrize("order", ["good-then-bad", "bad-then-good"])
@pytest.mark.parametrize("field", sorted(TASK_FIELDS))
def test_every_task_field_is_read_once_by_schedule(field, order):
    answers = _in_order(TASK_FIELDS[field], order)
    kw = {} if field == "id" else {"cpus": 1.0}
    _attack(_cluster, lambda s, T: s.schedule([T("t", **kw)]), field, f"tasks[0].{field}",
            lambda: shifting(Task, {field: answers}))


@pytest.mark.parametrize("order", ["good-then-bad", "bad-then-good"])
@pytest.mark.parametrize("field", sorted(set(TASK_FIELDS) - {"gang"}))
def test_every_task_field_is_read_once_by_add_running(field, order):
    good, bad = TASK_FIELDS[field]
    if field == "hard":
        bad = [HostAttrValue("zone", 5.5)]
    answers = _in_order((good, bad), order)
    _attack(_cluster, lambda s, T: s.add_running(T("t", cpus=1.0), "h0"), field, f"add_running: task.{field}",
            lambda: shifting(Task, {field: answers}))


HOST_FIELDS = {
    "id": ("hx", 5), "cpus": (4.0, NAN), "memory_mb": (10.0, -1.0), "disk_mb": (0.0, float("inf")),
    "network_mbps": (0.0, True), "ports": ([(1, 10)], [(10, 1)]), "scalars": ({"gpu": 2}, {"gpu": NAN}),
    "attributes": ({"zone": "a"}, {"zone": 1.5}), "resource_sets": ({"eni": (1, 2)}, {"eni": (0, 2)}),
}


@pytest.mark.parametrize("order", ["good-then-bad", "bad-then-good"])
@pytest.mark.parametrize("field", sorted(HOST_FIELDS))
def test_every_host_field_is_read_once_by_add_hosts(field, order):
    answers = _in_order(HOST_FIELDS[field], order)

    def call(s, H):
        s.add_hosts([H("hx", cpus=4.0)])
        s.schedule([Task(f"x{i}", cpus=2.0) for i in range(8)])  # fills what was added, no more

    _attack(_cluster, call, field, f"hosts[0].{field}", lambda: shifting(Host, {field: answers}))


CLASS_FIELDS = {
    "job": ("j", 5), "group": ("g", ""), "hard": ([HostAttrValue("zone", "a")], 5),
    "soft": ((BalancedHostAttr("zone", 2),), [1]), "ports": (1, -1), "resource_sets": ({"eni": "sg"}, {"eni": 5}),
    "gang": (False, "yes"), "priority": (0, 2**40),
}


@pytest.mark.parametrize("order", ["good-then-bad", "bad-then-good"])
@pytest.mark.parametrize("field", sorted(CLASS_FIELDS))
def test_every_class_field_is_read_once_by_schedule_arrays(field, order):
    answers = _in_order(CLASS_FIELDS[field], order)

    def call(s, C):
        d = np.zeros((3, len(s.resources)))
        d[:, 0] = 1.0
        s.schedule_arrays(d, np.zeros(3, np.int32), [C()], task_ids=["a", "b", "c"], explain=True)

    _attack(_cluster, call, field, f"classes[0].{field}", lambda: shifting(TaskClass, {field: answers}))


# ----------------------------------------------------------------------------- containers
class _Answers:
    """Answers ``answers[k]`` at its k-th read (the last one after that)."""

    def __init__(self, *answers):
        self.answers, self.reads = answers, 0

    def _due(self):
        return self.answers[min(self.reads, len(self.answers) - 1)]

    def _now(self):
        due = self._due()
        self.reads += 1
        return due

    def __getitem__(self, k):
        return self._now()[k]

    def __iter__(self):
        return iter(self._now())


class ShiftingMapping(_Answers, Mapping):
    """A mapping whose items are ``answers[k]`` at its k-th read of them (any read: items,
    iteration, lookup, length)."""

    def __len__(self):
        return len(self._now())

    def items(self):
        return self._now().items()


class ShiftingSequence(_Answers, Sequence):
    """A sequence whose items are ``answers[k]`` at its k-th read of them (iteration or
    lookup; its length is that of the answer due next, and no read)."""

    def __len__(self):
        return len(self._due())


CONTAINERS = [
    ("scalars", lambda: ShiftingMapping({"gpu": 1.0}, {"gpu": NAN})),
    ("scalars", lambda: ShiftingMapping({"gpu": NAN}, {"gpu": 1.0})),
    ("scalars", lambda: ShiftingMapping({"gpu": 1.0}, {"cpus": 9.0})),
    ("resource_sets", lambda: ShiftingMapping({"eni": "sg"}, {"eni": 5})),
    ("hard", lambda: ShiftingSequence([HostAttrValue("zone", "a")], [HostAttrValue("zone", 5.5)])),
    ("hard", lambda: ShiftingSequence([HostAttrValue("zone", "a")], [BalancedHostAttr("zone", 0)])),
    ("soft", lambda: ShiftingSequence([], [1, 2, 3])),
]


@pytest.mark.parametrize("field, make", CONTAINERS, ids=lambda x: x if isinstance(x, str) else "")
def test_a_container_whose_items_change_is_read_once(field, make):
    out = {}
    for e in ENGINES:
        s = make_scheduler(e)
        _cluster(s)
        box = make()
        r = _outcome(lambda: s.schedule([Task("t", cpus=1.0, **{field: box})]))
        assert box.reads == 1, (e, box.reads)
        assert r[0] == "ok" or f"tasks[0].{field}" in r[1], (e, r)
        assert_within_capacity(s)
        out[e] = (r, scheduler_state(s))
    assert out["native"] == out["reference"]


@pytest.mark.parametrize("ranges", [
    lambda: ShiftingSequence([(1, 10)], [(10, 1)]),
    lambda: [ShiftingSequence((1, 10), (10, 1))],
    lambda: [ShiftingSequence((10, 1), (1, 10))],
], ids=["ranges", "one-range-bad-later", "one-range-good-later"])
def test_host_port_ranges_whose_items_change_are_read_once(ranges):
    out = {}
    for e in ENGINES:
        s = make_scheduler(e)
        r = _outcome(lambda: s.add_hosts([Host("h", cpus=4, ports=ranges())]))
        assert r[0] == "ok" or "hosts[0].ports" in r[1], (e, r)
        out[e] = (r, scheduler_state(s), s.schedule([Task("t", ports=3)]).assignments)
    assert out["native"] == out["reference"]


@pytest.mark.parametrize("field, answers", [
    ("attr", ["zone", 5]), ("attr", [5, "zone"]), ("attr", ["zone", "\ud800"]),
    ("values", [("a",), (5.5,)]), ("values", [(5.5,), ("a",)]), ("values", [("a",), ()]),
])
@pytest.mark.parametrize("where", ["hard", "soft"])
def test_a_constraint_whose_fields_change_is_read_once(field, answers, where):
    """The constraint is read once, as its kind; the same hard or soft verdict on both paths."""
    out = {}
    for e in ENGINES:
        C = shifting(HostAttrValue, {field: answers})
        s = make_scheduler(e)
        _cluster(s)
        r = _outcome(lambda: s.schedule([Task("t", cpus=1.0, **{where: [C("zone", "a")]})]))
        assert C.reads[field] == 1, (e, C.reads)
        assert r[0] == "ok" or f"tasks[0].{where}[0]" in r[1], (e, r)
        out[e] = (r, scheduler_state(s))
    assert out["native"] == out["reference"]


def test_a_balanced_constraint_whose_count_changes_is_read_once_per_task():
    """A constraint shared by tasks is read once for each task that holds it: the first call
    places by 2, the second refuses the 0 it reads then, naming it."""
    out = {}
    for e in ENGINES:
        C = shifting(BalancedHostAttr, {"expected_values": [2, 0]})
        c = C("zone", 2)
        s = make_scheduler(e)
        _cluster(s)
        first = _outcome(lambda: s.schedule([Task("t0", cpus=1.0, job="j", hard=[c])]))
        assert C.reads["expected_values"] == 1 and first[0] == "ok", (e, C.reads, first)
        second = _outcome(lambda: s.schedule([Task("t1", cpus=1.0, job="j", hard=[c])]))
        assert C.reads["expected_values"] == 2 and "tasks[0].hard[0] Shifting.expected_values" in second[1]
        assert_within_capacity(s)
        out[e] = (first, second, scheduler_state(s))
    assert out["native"] == out["reference"]


# ----------------------------------------------------------------------------- reads that fail
class Broken(Exception):
    pass


def _raising(base: type, field: str) -> type:
    class Raising(base):
        def __getattribute__(self, name):
            if name == field:
                raise Broken("no")
            return object.__getattribute__(self, name)

    return Raising


@pytest.mark.parametrize("field", ["cpus", "scalars", "hard", "priority"])
def test_a_task_field_that_raises_is_refused_naming_it(field):
    for e in ENGINES:
        s = make_scheduler(e)
        _cluster(s)
        before = scheduler_state(s)
        with pytest.raises(ValueError, match=rf"^tasks\[1\]\.{field}: could not be read \(Broken: no\)"):
            s.schedule([Task("ok", cpus=1.0), _raising(Task, field)("t", cpus=1.0)])
        assert scheduler_state(s) == before


@pytest.mark.parametrize("field", ["id", "ports", "attributes"])
def test_a_host_field_that_raises_is_refused_naming_it(field):
    for e in ENGINES:
        s = make_scheduler(e)
        with pytest.raises(ValueError, match=rf"^hosts\[0\]\.{field}: could not be read \(Broken: no\)"):
            s.add_hosts([_raising(Host, field)("h", cpus=1)])
        assert s.host_ids == []


def test_a_mapping_whose_items_raise_is_refused_naming_it():
    class Bad(Mapping):
        def __getitem__(self, k):
            raise KeyError(k)

        def __iter__(self):
            return iter(["gpu"])

        def __len__(self):
            return 1

        def items(self):
            raise Broken("items")

    for e in ENGINES:
        s = make_scheduler(e)
        with pytest.raises(ValueError, match=r"^hosts\[0\]\.scalars: could not be read \(Broken: items\)"):
            s.add_hosts([Host("h", cpus=1, scalars=Bad())])
        assert s.resources == ("cpus", "memory_mb", "disk_mb", "network_mbps")


def test_a_missing_field_is_named_as_missing():
    t = Task("t", cpus=1)
    object.__delattr__(t, "id")
    for e in ENGINES:
        with pytest.raises(ValueError, match=r"^tasks\[0\]\.id: missing"):
            make_scheduler(e).schedule([t])


def test_the_callers_objects_are_not_changed():
    """The copies are the scheduler's: the caller's task, its lists and dicts stay as given."""
    hard = [HostAttrValue("zone", "a")]
    scalars = {"gpu": 1}
    T = shifting(Task, {})
    t = T("t", cpus=1.0, hard=hard, scalars=scalars)
    for e in ENGINES:
        s = make_scheduler(e)
        _cluster(s)
        assert s.schedule([t]).assignments == {"t": "h0"}
        assert t.hard is hard and hard == [HostAttrValue("zone", "a")] and t.scalars is scalars


def test_a_check_runs_no_method_of_a_string_subclass():
    """The fast path keeps an exact Task's own list of constraints; a string subclass inside
    whose ``isascii``, ``encode`` or ``__len__`` ran during the check could add an unchecked
    constraint to that list before it is encoded. The check uses ``str``'s own methods."""
    hard: list = []

    class Sneaky(str):
        def _grow(self):
            hard.append(BalancedHostAttr("zone", 0))  # never checked: expected_values must be >= 1

        def isascii(self):
            self._grow()
            return str.isascii(self)

        def encode(self, *a, **k):
            self._grow()
            return str.encode(self, *a, **k)

        def __len__(self):
            self._grow()
            return str.__len__(self)

    for e in ENGINES:
        hard[:] = [HostAttrValue("zone", Sneaky("a\u00e9"))]
        s = make_scheduler(e)
        _cluster(s)
        s.add_hosts([Host("h9", cpus=4, attributes={"zone": "a\u00e9"})])
        assert s.schedule([Task("t", cpus=1.0, hard=hard)]).assignments == {"t": "h9"}
        assert len(hard) == 1, e
