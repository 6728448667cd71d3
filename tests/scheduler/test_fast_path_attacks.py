"""Hostile checks of the one-pass paths: the compiled class check that also makes the codec's
class keys, the compiled check of plain constraints, Task fields read from the instance dict
with a task like the one before it reusing its class, and the bucket walk that scores a host
class from its own numbers. Each must give what the full checks and the plain-Python twin give:
the same verdicts, the same keys and classes, the same placements."""
import random
import warnings

import numpy as np
import pytest

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler import validation as v
from titus.scheduler.model import Host, Task, TaskClass

from tests.conftest import engine_class, reference_class

FITNESS = ["cpu_binpack", "memory_binpack", "network_binpack", "cpu_mem_binpack", "cpu_mem_network_binpack",
           "cpu_spread", "memory_spread", "cpu_mem_spread", "cpu_mem_network_spread", "cpu_mem_fewest_hosts",
           {"cpu_binpack": 2, "memory_spread": 1}]


class Name(str):
    """A str subclass (equal to, and hashed as, its text)."""


class FreshTuples(Task):
    """A Task subclass handing out a new, equal constraint tuple on every read."""

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        return tuple(value) if name in ("hard", "soft") else value


def _codec():
    return engine_class()()._codec


def _key(t) -> tuple:
    """A task's class key, read the slow way (getattr), as the codec documents it."""
    return (t.job, t.group, tuple(t.hard), tuple(t.soft), int(t.ports), tuple(sorted(t.resource_sets.items())))


def _random_tasks(rnd: random.Random, n: int) -> list:
    """Tasks whose consecutive fields are now the very same objects, now equal copies, now
    lists, str subclasses or a Task subclass; some with resource sets or ports."""
    hards = [(HostAttrValue("zone", "a"),), (HostAttrValue("zone", "b"),), (), (UniqueHostAttr("rack"),)]
    softs = [(BalancedHostAttr("zone", 2),), (), (BalancedHostAttr("zone", 3),)]
    jobs = ["j1", "j2", None, Name("j1")]
    out = []
    for i in range(n):
        if out and rnd.random() < 0.4:
            p = out[-1]
            hard, soft, job, ports, sets = p.hard, p.soft, p.job, p.ports, dict(p.resource_sets)
            if rnd.random() < 0.3:  # equal objects, not the same ones
                hard, soft = tuple(list(hard)), tuple(list(soft))
                job = None if job is None else "".join(job)
        else:
            hard, soft, job = rnd.choice(hards), rnd.choice(softs), rnd.choice(jobs)
            ports, sets = rnd.choice([0, 0, 1, np.int64(1)]), rnd.choice([{}, {}, {"eni": "sg"}])
            if rnd.random() < 0.2:
                hard = list(hard)
            if rnd.random() < 0.1:  # a copy of an equal constraint, not the shared one
                hard = tuple(HostAttrValue(c.attr, c.values) if isinstance(c, HostAttrValue) else c for c in hard)
        kind = FreshTuples if rnd.random() < 0.1 else Task
        t = kind(f"t{i}", cpus=1.0, job=job, group=rnd.choice([None, "g"]) if rnd.random() < 0.1 else None,
                 hard=hard, soft=soft, ports=ports, resource_sets=sets)
        if rnd.random() < 0.05:
            object.__delattr__(t, "group")  # the class default shows through
        out.append(t)
    return out


@pytest.mark.parametrize("seed", range(40))
def test_task_classes_are_exactly_the_classes_of_equal_keys(seed):
    """Two tasks share a codec class iff their keys are equal, and a class's key is each of its
    tasks' key: whether fields are read from the instance dict or by getattr, and whether the
    class came from the task before, a tuple seen before or the key itself."""
    tasks = _random_tasks(random.Random(seed), 60)
    want = [_key(t) for t in tasks]
    for plain_type in (Task, None):
        _, tc, keys = _codec().encode_tasks(tasks, plain_type)
        tc = tc.tolist()
        assert [keys[k] for k in tc] == want
        assert len(keys) == len(set(want))
        for i in range(len(tasks)):
            for j in range(i):
                assert (tc[i] == tc[j]) == (want[i] == want[j]), (i, j)


def test_a_task_like_the_one_before_but_with_other_ports_or_group_takes_its_own_class():
    hard, soft = (HostAttrValue("zone", "a"),), (BalancedHostAttr("zone", 2),)
    tasks = [Task("a", job="j", hard=hard, soft=soft), Task("b", job="j", hard=hard, soft=soft, ports=1),
             Task("c", job="j", hard=hard, soft=soft, ports=1), Task("d", job="j", hard=hard, soft=soft, group="g"),
             Task("e", job="j", hard=hard, soft=soft, resource_sets={"eni": "x"}), Task("f", job="j", hard=hard, soft=soft),
             Task("g", job="k", hard=hard, soft=soft)]
    _, tc, keys = _codec().encode_tasks(tasks, Task)
    assert tc.tolist() == [0, 1, 1, 2, 3, 0, 4] and len(keys) == 5


def _random_classes(rnd: random.Random) -> list:
    shared = (HostAttrValue("zone", "a", values=["b"]),)
    pool = [HostAttrValue("zone", "a"), BalancedHostAttr("zone", 2), UniqueHostAttr("zone"), ExclusiveHost(),
            BalancedHostAttr("zone", v.MAX_COUNT), HostAttrValue("zone", 7), HostAttrValue("hostname", "h1")]
    out = []
    for _ in range(rnd.randint(1, 12)):
        hard = shared if rnd.random() < 0.3 else [rnd.choice(pool) for _ in range(rnd.randint(0, 2))]
        soft = shared if rnd.random() < 0.2 else tuple(rnd.choice(pool) for _ in range(rnd.randint(0, 2)))
        out.append(TaskClass(job=rnd.choice(["j", None, "k"]), group=rnd.choice([None, "g"]), hard=hard, soft=soft,
                             ports=rnd.choice([0, 2]), gang=rnd.random() < 0.2,
                             priority=rnd.choice([0, -3, 2**31 - 1, -2**31])))
    return out


@pytest.mark.parametrize("seed", range(30))
def test_keys_read_in_the_check_are_the_codecs_keys_for_shared_and_listed_constraints(seed):
    classes = _random_classes(random.Random(seed))
    v._VALID_CONSTRAINTS.clear()  # the Python check runs for what the compiled one leaves
    checked, keyed = v.check_keyed_classes(classes)
    assert keyed is not None and checked == classes
    want = _codec().class_keys(classes)
    assert keyed[0] == want[0]
    assert keyed[1].tolist() == want[1].tolist() and keyed[2].tolist() == want[2].tolist()
    assert keyed[2].dtype == want[2].dtype == np.int32


# Constraints the compiled check may accept: each must be one the full check accepts, and each
# one the full check refuses must be refused by the compiled check too.
_HOSTILE = [HostAttrValue("zone", "a"), HostAttrValue("zone", ("a", "b")), HostAttrValue("zone", ""),
            HostAttrValue("zone", "\ud800"), HostAttrValue("z\u00e9", "a"), HostAttrValue("zone", "\x00"),
            HostAttrValue("\x7f", "\x7f"), HostAttrValue("zone", Name("a")), HostAttrValue(Name("zone"), "a"),
            HostAttrValue("zone", np.str_("a")), HostAttrValue("zone", True), HostAttrValue("zone", 10**5000),
            HostAttrValue("zone", float("nan")), HostAttrValue("zone", b"a"), HostAttrValue("zone"),
            BalancedHostAttr("zone", 1), BalancedHostAttr("zone", 0), BalancedHostAttr("zone", v.MAX_COUNT),
            BalancedHostAttr("zone", v.MAX_COUNT + 1), BalancedHostAttr("zone", True), BalancedHostAttr("zone", 2.0),
            BalancedHostAttr("zone", np.int32(2)), BalancedHostAttr("", 2), BalancedHostAttr("\udfff", 2),
            BalancedHostAttr("zone", -(2**70)), BalancedHostAttr("zone", 2**70), BalancedHostAttr(None, 2)]


def _smuggled(kind, **fields):
    """A constraint whose fields were set past its constructor."""
    c = HostAttrValue("zone", "a") if kind == "hav" else BalancedHostAttr("zone", 2)
    for name, value in fields.items():
        object.__setattr__(c, name, value)
    return c


_HOSTILE += [_smuggled("hav", values=["a"]), _smuggled("hav", values=("a", ["b"])), _smuggled("hav", values="ab"),
             _smuggled("hav", values=()), _smuggled("hav", attr=1), _smuggled("bal", expected_values="2"),
             _smuggled("bal", extra=1), _smuggled("hav", values={"a"})]


def _full_verdict(c) -> bool:
    try:
        v.check_constraint(c, "c")
    except (TypeError, ValueError, AttributeError):
        return False
    return True


@pytest.mark.parametrize("c", _HOSTILE, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("shape", ["tuple", "list", "shared"])
def test_the_compiled_constraint_check_says_valid_only_where_the_full_one_does(c, shape):
    v._VALID_CONSTRAINTS.clear()
    cs = (c,) if shape != "list" else [c]
    classes = [TaskClass(hard=cs), TaskClass(soft=cs)] if shape == "shared" else [TaskClass(hard=cs)]
    want = _full_verdict(c)
    # the compiled verdicts: a "valid" from any of them must be the full check's
    fast = [bool(v._plain_constraints(cs)), v._plain_classes(classes), v._plain_tasks([Task("t", hard=cs)]) == 1,
            v.plain_class_keys(classes, TaskClass, v.MAX_COUNT, v.MIN_PRIORITY, v.MAX_PRIORITY,
                               v._plain_constraints) is not None]
    assert not any(fast) or want, fast
    if want:
        v.check_keyed_classes(classes)
        v.check_tasks([Task("t", hard=cs)], set())
    else:
        with pytest.raises(ValueError):  # InputTypeError is a ValueError too
            v.check_keyed_classes(classes)
        with pytest.raises(ValueError):
            v.check_tasks([Task("t", hard=cs)], set())
        assert not v._plain_constraints(cs) and not v._plain_constraints(cs)  # no verdict kept


def _legacy_str(text: str) -> str:
    """A str made the pre-3.3 way (not "ready": no compact data, no ASCII flag yet), where the
    interpreter still has that API; else a plain copy of ``text``."""
    import ctypes
    api = ctypes.pythonapi
    if not hasattr(api, "PyUnicode_FromUnicode") or not hasattr(api, "PyUnicode_AsUnicode"):
        return "".join(text)
    api.PyUnicode_FromUnicode.restype = ctypes.py_object
    api.PyUnicode_FromUnicode.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    api.PyUnicode_AsUnicode.restype = ctypes.c_void_p
    api.PyUnicode_AsUnicode.argtypes = [ctypes.py_object]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        s = api.PyUnicode_FromUnicode(None, len(text))
    buf = api.PyUnicode_AsUnicode(s)
    ctypes.memmove(buf, ctypes.create_unicode_buffer(text), len(text) * ctypes.sizeof(ctypes.c_wchar))
    return s


@pytest.mark.parametrize("text", ["zone", "z\u00e9", "\ud800", "a\udfff"])
def test_legacy_strings_get_the_full_checks_verdict(text):
    bad = not text.isascii() and "\ud800" <= max(text) <= "\udfff"
    cs = (HostAttrValue(_legacy_str(text), _legacy_str(text)),)
    v._VALID_CONSTRAINTS.clear()
    if bad:
        with pytest.raises(ValueError, match="lone surrogate"):
            v.check_keyed_classes([TaskClass(job=_legacy_str("j"), hard=cs)])
        with pytest.raises(ValueError, match="lone surrogate"):
            v.check_tasks([Task(_legacy_str(text), cpus=1)], set())
    else:
        _, keyed = v.check_keyed_classes([TaskClass(job=_legacy_str("j"), hard=cs)])
        assert keyed is None or keyed[0][0][2] == (HostAttrValue(text, text),)
        v.check_tasks([Task(_legacy_str(text), cpus=1, job=_legacy_str(text))], set())


def test_a_check_that_rebinds_an_earlier_class_keeps_the_checked_class_and_places_it():
    """A constraint's own hash (run by the full check of a later class) rebinds an earlier,
    already checked class: the engine places that class as it was checked, never the values
    it was given afterwards without a check."""
    first = TaskClass(job="j", hard=(HostAttrValue("zone", "a"),))

    class Rebinds(HostAttrValue):
        def __hash__(self):
            object.__setattr__(first, "hard", (HostAttrValue("zone", "b"),))
            return 7

    v._VALID_CONSTRAINTS.clear()
    s = engine_class()()
    s.add_hosts([Host("ha", cpus=8, memory_mb=100, attributes={"zone": "a"}),
                 Host("hb", cpus=8, memory_mb=100, attributes={"zone": "b"})])
    out = s.schedule_arrays(np.array([[1.0, 1, 0, 0]] * 2), np.array([0, 1], np.int32), [first, TaskClass(soft=(Rebinds("zone", "b"),))])
    assert out.tolist()[0] == 0  # zone a, as checked


def _random_cluster(rnd: random.Random, zones) -> list:
    return [Host(f"h{i}", cpus=rnd.choice([1, 2, 3.5, 4, 8, 16]), memory_mb=rnd.choice([50, 100, 200, 1000]),
                 network_mbps=rnd.choice([0, 10, 100]),
                 attributes={"zone": rnd.choice(zones), "rack": rnd.choice("xyz")}) for i in range(rnd.randint(5, 60))]


def _random_call(rnd: random.Random, zones):
    soft_pool = [HostAttrValue("zone", zones[0]), HostAttrValue("zone", zones[-1]), BalancedHostAttr("zone", 2),
                 BalancedHostAttr("zone", 3), UniqueHostAttr("rack"), HostAttrValue("rack", "x"),
                 BalancedHostAttr("rack", 3)]
    hard_pool = [HostAttrValue("zone", zones[0]), BalancedHostAttr("zone", 2), UniqueHostAttr("rack")]
    classes = []
    for _ in range(rnd.randint(1, 4)):
        soft = tuple(rnd.choice(soft_pool) for _ in range(rnd.randint(0, 3)))
        if rnd.random() < 0.05:
            soft += (ExclusiveHost(),)
        hard = (rnd.choice(hard_pool),) if rnd.random() < 0.3 else ()
        classes.append(TaskClass(job=rnd.choice(["j1", "j2", "j3", None]), hard=hard, soft=soft))
    n = rnd.randint(1, 40)
    demand = np.array([[rnd.choice([0.25, 0.5, 1, 2]), rnd.choice([0, 10, 20, 50]), 0, rnd.choice([0, 5])]
                       for _ in range(n)], dtype=np.float64)
    return demand, np.array([rnd.randrange(len(classes)) for _ in range(n)], dtype=np.int32), classes


@pytest.mark.parametrize("seed", range(60))
def test_the_bucket_walk_places_as_the_twin_with_soft_scores_and_changing_usage(seed):
    """Soft scores that read attributes only (the bucket's own), several buckets, classes that
    cannot win passed over by the walk, kept champions whose bucket's soft score moves: every
    placement is the twin's, call after call, with releases and disabled hosts between."""
    rnd = random.Random(seed)
    soft_w, fit_w = rnd.choice([(0.5, 0.35), (1.0, 1e-3), (0.3, 2.0), (0.0, 1.0), (1.0, 0.0), (1e-9, 1.0)])
    options = dict(fitness=rnd.choice(FITNESS), soft_weight=soft_w, fitness_weight=fit_w, seed=rnd.randrange(50),
                   good_enough=rnd.choice([None, None, 0.9]))
    engine, twin = engine_class()(**options), reference_class()(**options)
    zones = ["a", "b", "c"][:rnd.randint(1, 3)]
    hosts = _random_cluster(rnd, zones)
    engine.add_hosts(hosts)
    twin.add_hosts(hosts)
    for call in range(4):
        demand, tc, classes = _random_call(rnd, zones)
        got = engine.schedule_arrays(demand, tc, classes).tolist()
        assert got == twin.schedule_arrays(demand, tc, classes).tolist(), call
        tasks = [Task(f"c{call}t{i}", cpus=float(row[0]), memory_mb=float(row[1]), network_mbps=float(row[3]),
                      job=classes[k].job, hard=classes[k].hard, soft=classes[k].soft)
                 for i, (row, k) in enumerate(zip(demand, tc.tolist()))]
        placed = engine.schedule(tasks).assignments
        assert placed == twin.schedule(tasks).assignments, call
        for tid in [t for t in placed if rnd.random() < 0.4]:
            engine.release(tid)
            twin.release(tid)
        if rnd.random() < 0.3:
            h = rnd.choice(hosts).id
            engine.disable_host(h)
            twin.disable_host(h)
        for h in hosts:
            assert engine.host_usage(h.id) == twin.host_usage(h.id)
            assert all(engine.host_usage(h.id)[r] <= getattr(h, r) + 1e-9 for r in ("cpus", "memory_mb"))
