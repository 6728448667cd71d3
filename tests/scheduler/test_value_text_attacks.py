"""Attribute values compared as their own text, attacked: subclasses of str, int and numpy
integer types whose ``__str__`` lies, other integral types, equal values of different types in
one call, hosts added in several calls, ``add_running`` and ``schedule_arrays``; the engine and
the twin place alike, explain alike and refuse alike. And the class index's bounds, kept through
classes leaving and coming, against the twin over many hosts of few shapes."""
import numbers
import random

import numpy as np
import pytest

from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr, value_text
from titus.scheduler.factory import make_scheduler
from titus import Scheduler
from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.reference import ReferenceScheduler

from tests.scheduler.helpers import LyingInt, LyingStr, snapshot


class LyingNp(np.int64):
    """A numpy integer subclass: equal to (and hashed as) its value, says something else."""

    def __str__(self):
        return "2"

    def __int__(self):
        return 2

    __repr__ = __str__


class OtherIntegral:
    """An integral type of the caller's (``numbers.Integral``), equal to its value: refused, since
    equal ones need not have equal digits (and an equal constraint once checked is not again)."""

    def __init__(self, value, text="2", index=None):
        self.value, self.text, self.index = value, text, value if index is None else index

    def __index__(self):
        return self.index

    def __int__(self):
        return self.value

    def __eq__(self, other):
        return self.value == other

    def __hash__(self):
        return hash(self.value)

    def __str__(self):
        return self.text

    __repr__ = __str__


numbers.Integral.register(OtherIntegral)


class Name(str):
    """A str subclass with nothing odd about it."""


BOTH = ("native", "reference")


def test_value_text_is_the_value_whatever_the_type_says():
    assert value_text(LyingStr("a")) == "a"
    assert value_text(LyingInt(1)) == "1"
    assert value_text(LyingNp(1)) == "1"
    with pytest.raises(TypeError):
        value_text(OtherIntegral(1))  # equal ones need not have equal digits: refused
    assert value_text(np.uint64(2**64 - 1)) == str(2**64 - 1)
    assert value_text(np.int8(-3)) == "-3"
    assert value_text(10**4299) == "1" + "0" * 4299
    with pytest.raises(ValueError):
        value_text(10**4300)


@pytest.mark.parametrize("odd", [LyingNp(1), LyingInt(1)], ids=type)
def test_an_equal_value_of_a_lying_type_matches_what_its_value_matches(odd):
    """Both tasks ask zone == 1 (their constraints are equal, so they share a task class): they go
    to the hosts whose zone is 1, never to the one whose zone is what the type's __str__ says."""
    for engine in BOTH:
        s = make_scheduler(engine)
        s.add_hosts([Host("h-plain", cpus=4, memory_mb=100, attributes={"zone": "1"}),
                     Host("h-other", cpus=4, memory_mb=100, attributes={"zone": "2"})])
        s.add_hosts([Host("h-odd", cpus=4, memory_mb=100, attributes={"zone": odd})])
        r = s.schedule([Task("t1", cpus=4, hard=[HostAttrValue("zone", 1)]),
                        Task("t2", cpus=4, hard=[HostAttrValue("zone", odd)])])
        assert set(r.assignments.values()) == {"h-plain", "h-odd"} and not r.failures, engine


@pytest.mark.parametrize("odd", [LyingNp(1), LyingInt(1)], ids=type)
def test_arrays_and_running_read_a_lying_integer_as_its_value(odd):
    for engine in BOTH:
        s = make_scheduler(engine)
        s.add_hosts([Host(f"h{z}", cpus=1, memory_mb=10, attributes={"zone": z}) for z in ("1", "2")])
        s.add_running(Task("r", cpus=1, job="j", hard=[HostAttrValue("zone", odd)]), "h1")
        r = s.schedule([Task("u", job="j", hard=[UniqueHostAttr("zone"), HostAttrValue("zone", [odd, 2])])])
        assert r.assignments == {"u": "h2"}, engine  # "2": the zone of h1 holds a co-task
        s.release("r")
        s.release("u")
        placed = s.schedule_arrays(np.array([[1.0, 1, 0, 0]]), np.zeros(1, np.int32),
                                   [TaskClass(hard=(HostAttrValue("zone", odd),))])
        assert placed.tolist() == [s.host_ids.index("h1")], engine


def test_equal_constraints_explain_alike_on_both_engines():
    """A failure message shows a constraint's values as their text: equal constraints (one task
    class in the engine) read the same on the engine and the twin."""
    msgs = []
    for engine in BOTH:
        s = make_scheduler(engine)
        s.add_hosts([Host("h0", cpus=1, memory_mb=10, attributes={"zone": "z"})])
        r = s.schedule([Task("t1", cpus=1, hard=[HostAttrValue("hostname", "nope")]),
                        Task("t2", cpus=1, hard=[HostAttrValue("hostname", LyingStr("nope"))]),
                        Task("t3", cpus=0, job="j", hard=[UniqueHostAttr(LyingStr("zone"))]),
                        Task("t4", cpus=1, hard=[HostAttrValue("zone", np.int64(7))]),
                        Task("t5", cpus=1, hard=[HostAttrValue("zone", LyingNp(7))])])
        msgs.append({k: f.message for k, f in r.failures.items()})
    assert msgs[0] == msgs[1]
    assert msgs[0]["t2"] == "0/1 hosts: 1 constraint:HostAttrValue(hostname=nope)"
    assert msgs[0]["t5"] == "0/1 hosts: 1 constraint:HostAttrValue(zone=7)"
    assert repr(BalancedHostAttr(LyingStr("zone"), LyingInt(3))) == "BalancedHostAttr(zone,3)"


def test_equal_sets_make_equal_constraints_whatever_the_str():
    assert HostAttrValue("zone", {LyingStr("d"), "c"}) == HostAttrValue("zone", {"d", "c"})
    assert HostAttrValue("zone", {LyingStr("d"), "c"}).values == ("c", "d")


@pytest.mark.parametrize("bad, message", [
    (True, "must be a string or an integer"),
    (np.bool_(False), "must be a string or an integer"),
    (10**4300, "integer too long"),
    (LyingInt(10**4300), "integer too long"),
    (Name("a\ud800"), "lone surrogate"),
    (OtherIntegral(1), "must be a string or an integer"),
    (OtherIntegral(1, index="x"), "must be a string or an integer"),
], ids=["bool", "np_bool", "huge", "huge_subclass", "surrogate_subclass", "other_integral", "bad_index"])
@pytest.mark.parametrize("where", ["host", "task", "arrays", "running"])
def test_a_bad_value_is_refused_by_name_alike(bad, message, where):
    got = []
    for engine in BOTH:
        s = make_scheduler(engine)
        s.add_hosts([Host("h0", cpus=4, memory_mb=10, attributes={"zone": "a"})])
        with pytest.raises(ValueError, match=message) as err:
            if where == "host":
                s.add_hosts([Host("h1", cpus=1, attributes={"zone": bad})])
            elif where == "task":
                s.schedule([Task("t", cpus=1, soft=[HostAttrValue("zone", ["a", bad])])])
            elif where == "arrays":
                s.schedule_arrays(np.zeros((1, 4)), np.zeros(1, np.int32),
                                  [TaskClass(hard=(HostAttrValue("zone", bad),))])
            else:
                s.add_running(Task("t", cpus=1, hard=[HostAttrValue("zone", bad)]), "h0")
        got.append(str(err.value))
        assert len(s) == 1 and s.held_tasks() == {}
    assert got[0] == got[1]
    assert {"host": "hosts[0].attributes['zone']", "task": "tasks[0].soft[0] HostAttrValue.values[1]",
            "arrays": "classes[0].hard[0] HostAttrValue.values[0]",
            "running": "add_running: task.hard[0] HostAttrValue.values[0]"}[where] in got[0]


BIG = 10**4299
POOL = ["1", 1, np.int64(1), np.uint64(1), np.int8(1), LyingStr("1"), LyingInt(1), LyingNp(1), Name("1"),
        "2", 2, np.uint64(2**64 - 1), 2**64 - 1, -3, np.int8(-3), "-3", BIG, str(BIG), "b", LyingStr("b"),
        "é", Name("é")]


def _case(rng):
    calls, n = [], 0
    for _ in range(rng.randint(1, 3)):  # hosts added in several calls
        hs = []
        for _ in range(rng.randint(1, 6)):
            attrs = {a: rng.choice(POOL) for a in ("zone", "rack") if rng.random() < 0.8}
            hs.append(Host(rng.choice([str, Name, LyingStr])(f"h{n}"), cpus=rng.choice([2, 4]), memory_mb=100,
                           attributes=attrs))
            n += 1
        calls.append(hs)

    def constraint():
        k = rng.random()
        if k < 0.5:
            attr = rng.choice(["zone", "rack", "hostname"])
            if attr == "hostname":
                return HostAttrValue(attr, rng.choice([str, Name, LyingStr])(f"h{rng.randrange(n + 1)}"))
            return HostAttrValue(attr, rng.choice(POOL) if k < 0.35 else [rng.choice(POOL), rng.choice(POOL)])
        if k < 0.75:
            return UniqueHostAttr(rng.choice(["zone", "rack", "hostname"]))
        return BalancedHostAttr(rng.choice(["zone", "rack"]), rng.randint(1, 3))

    # few shapes of constraints, so that equal ones of other value types share a class
    shapes = [([constraint() for _ in range(rng.randint(0, 2))], [constraint() for _ in range(rng.randint(0, 1))])
              for _ in range(3)]
    tasks = []
    for i in range(rng.randint(2, 10)):
        hard, soft = rng.choice(shapes)
        swap = {1: LyingNp(1), "1": LyingStr("1")}
        if rng.random() < 0.5:  # an equal constraint whose values are of another type
            hard = [HostAttrValue(c.attr, values=[swap.get(x, x) if type(x) in (int, str) else x for x in c.values])
                    if isinstance(c, HostAttrValue) else c for c in hard]
        tasks.append(Task(f"t{i}", cpus=rng.choice([1, 2]), memory_mb=10, job=rng.choice(["j1", "j2"]),
                          hard=hard, soft=soft))
    return calls, tasks


def _play(engine, calls, tasks):
    s = make_scheduler(engine)
    for hs in calls:
        s.add_hosts(hs)
    s.add_running(Task("run", cpus=1, job="j1", hard=[UniqueHostAttr("zone")]), calls[0][0].id)
    half = len(tasks) // 2
    r = s.schedule(tasks[:half])
    out = [r.assignments, {k: f.message for k, f in r.failures.items()}]
    rest = tasks[half:]
    classes = [TaskClass(job=t.job, hard=tuple(t.hard), soft=tuple(t.soft)) for t in rest]
    demand = np.array([[t.cpus, t.memory_mb, 0, 0] for t in rest], dtype=np.float64)
    placed, failed = s.schedule_arrays(demand, np.arange(len(rest), dtype=np.int32), classes, explain=True)
    out += [placed.tolist(), {k: f.message for k, f in failed.items()}, snapshot(s)]
    return out


def test_odd_values_place_and_explain_as_the_twin():
    for seed in range(150):
        calls, tasks = _case(random.Random(seed))
        assert _play("native", calls, tasks) == _play("reference", calls, tasks), seed


# --- the class index's bounds (host_groups.hpp): kept through classes leaving and coming ---------

SHAPES = [(16, 65536, 1000, 10000, 0), (4, 8192, 500, 1000, 0), (32, 131072, 2000, 25000, 4)]
FITNESS = ["cpu_mem_binpack", "cpu_binpack", "memory_binpack", "cpu_mem_spread",
           {"cpu_binpack": 2, "memory_spread": 1}, "cpu_mem_fewest_hosts"]
RESOURCES = ("cpus", "memory_mb", "disk_mb", "network_mbps")


def _host(i, shape, rack):
    c, m, d, n, g = shape
    return Host(f"h{i}", cpus=c, memory_mb=m, disk_mb=d, network_mbps=n, scalars={"gpu": g} if g else {},
                attributes={"rack": rack} if rack else {})


def _task(rng, i):
    return Task(f"t{i}", cpus=rng.choice([0.5, 1, 2, 3, 4, 7, 8]),
                memory_mb=rng.choice([0, 256, 1000, 4096, 9000, 30000]), disk_mb=rng.choice([0, 10, 100, 400]),
                network_mbps=rng.choice([0, 100, 900, 5000]),
                scalars={"gpu": rng.choice([1, 2])} if rng.random() < 0.1 else {},
                hard=[HostAttrValue("rack", "r1")] if rng.random() < 0.05 else [])


def _stress(seed, n_hosts=300, rounds=8):
    """Engine and twin side by side through random rounds; returns the engine's class count."""
    rng = random.Random(seed)
    fitness = FITNESS[seed % len(FITNESS)]
    pair = [Scheduler(fitness=fitness, seed=seed), ReferenceScheduler(fitness=fitness, seed=seed)]
    hosts = [_host(i, rng.choice(SHAPES), f"r{i % 2}" if i % 7 == 0 else None) for i in range(n_hosts)]
    caps = {h.id: h for h in hosts}
    for s in pair:
        s.add_hosts(hosts)
    n = 0
    for h in hosts:  # many distinct usages: many classes in one bucket
        if rng.random() < 0.7:
            t = Task(f"r{h.id}", cpus=rng.randint(0, int(h.cpus) * 4) / 4,
                     memory_mb=rng.randint(0, 16) * h.memory_mb / 16, network_mbps=rng.choice([0, h.network_mbps / 2]),
                     scalars={"gpu": 1} if h.scalars and rng.random() < 0.5 else {})
            for s in pair:
                s.add_running(t, h.id)
    for rd in range(rounds):
        tasks = [_task(rng, n + i) for i in range(rng.randint(20, 120))]
        n += len(tasks)
        got = [s.schedule(tasks) for s in pair]
        assert got[0].assignments == got[1].assignments, (seed, rd)
        assert {k: f.message for k, f in got[0].failures.items()} == {k: f.message for k, f in got[1].failures.items()}
        k = rng.randint(1, 60)
        cols = len(pair[0].resources)
        demand = np.array([[rng.choice([0.5, 1, 2, 6]), rng.choice([0, 512, 20000]), rng.choice([0, 50]),
                            rng.choice([0, 300, 8000])] + [rng.choice([0, 0, 1])] * (cols - 4) for _ in range(k)])
        ids = [f"a{n + i}" for i in range(k)]
        n += k
        placed = [s.schedule_arrays(demand, np.zeros(k, np.int32), [TaskClass()], task_ids=ids).tolist()
                  for s in pair]
        assert placed[0] == placed[1], (seed, rd)
        held = sorted(pair[1].held_tasks())
        for t in rng.sample(held, rng.randint(0, len(held) // 2)):
            for s in pair:
                s.release(t)
        live = [h for h in pair[0].host_ids if h is not None]
        for h in rng.sample(live, min(len(live), rng.randint(0, 8))):
            op = rng.choice(["disable_host", "enable_host", "remove_host"])
            for s in pair:
                getattr(s, op)(h)
        if rng.random() < 0.5:
            new = [_host(len(caps) + i, rng.choice(SHAPES), None) for i in range(rng.randint(1, 20))]
            caps.update({h.id: h for h in new})
            for s in pair:
                s.add_hosts(new)
        assert snapshot(pair[0]) == snapshot(pair[1]), (seed, rd)
        for h in [h for h in pair[0].host_ids if h is not None]:
            used, host = pair[0].host_usage(h), caps[h]
            for r, cap in [(r, getattr(host, r)) for r in RESOURCES] + [("gpu", host.scalars.get("gpu", 0))]:
                assert used.get(r, 0) <= cap + 1e-6, (seed, rd, h, r)
    return pair[0]._engine.n_host_classes


@pytest.mark.parametrize("seed", range(3))
def test_index_bounds_place_as_the_twin_over_many_classes_of_few_shapes(seed):
    """Hosts of three shapes with many distinct usages (a hundred classes and more in one bucket:
    several chunks and chunk groups), random demands on cpus, memory, disk, network and a scalar,
    runs of schedule and schedule_arrays, releases, disables, removals and new hosts: the engine
    places, explains and holds exactly as the twin, and no host is ever over a capacity."""
    assert _stress(seed) > 100
