"""The host index's class table (csrc/signature_table.hpp) and re-homing (HostGroups::rehome),
and the per-job tallies (Engine::jobs_), attacked through the public API: long seeded runs of
placements, releases, tasks put back where they were (a host's signature returning to an earlier
one), ``add_running`` of jobs first seen there, disables, host removals and re-additions under the
same id, hosts bringing a new attribute (the index rebuilt), hostname constraints (hosts set apart
by the special mark) and many classes made and emptied (the table growing over gone entries).
The engine with its index, the engine scanning every host (``index=False``) and the reference
twin must place, explain, preempt and refuse alike, hold the same state, and never over-commit.

Also the integer fields (``ports``, ``priority``, ``BalancedHostAttr.expected_values``) read by
their value on both sides: ``schedule``'s task priorities and values whose ``__eq__``/``__hash__``
do not agree with their value."""
from __future__ import annotations

import random

import numpy as np
import pytest

from titus import Scheduler
from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.validation import InputTypeError
from titus.scheduler.reference import ReferenceScheduler
from titus.workloads.runner import make_scheduler

from tests.scheduler.helpers import IntSaysFive, NpSaysFive, snapshot, summary

pytestmark = pytest.mark.timeout(120)

SHAPES = [(4, 4096), (8, 8192), (8, 4096), (2, 2048)]
CPUS = [0.5, 1, 1, 2, 3]
MEMORY = [256, 512, 1024, 2048]
PRIORITIES = [0, 0, 0, 1, 2, -1]


def _host(rng: random.Random, host_id: str, extra_attr: str | None = None) -> Host:
    cpus, mem = rng.choice(SHAPES)
    attrs = {}
    if rng.random() < 0.85:
        attrs["rack"] = f"r{rng.randrange(8)}"
    if rng.random() < 0.7:
        attrs["zone"] = rng.choice("abc")
    if extra_attr is not None and rng.random() < 0.6:
        attrs[extra_attr] = f"p{rng.randrange(2)}"
    ports = ((1000, 1000 + rng.randrange(3)),) if rng.random() < 0.5 else ()
    return Host(host_id, cpus=cpus, memory_mb=mem, ports=ports, attributes=attrs)


def _constraints(rng: random.Random, live: list[str], extra_attrs: list[str]):
    """(hard, soft): mostly none; attribute constraints; and hostname ones (special hosts).
    ``extra_attrs``: attributes some later hosts bring, the last one no host has yet."""
    pick = rng.randrange(16)
    names = rng.sample(live, min(len(live), rng.randint(1, 4))) if live else ["nowhere"]
    attr = rng.choice(extra_attrs)
    return [
        ((), ()), ((), ()), ((), ()),
        ((), (BalancedHostAttr(attr, 2), UniqueHostAttr(attr))),  # counted before a host has it
        ((UniqueHostAttr("hostname"),), ()),
        ((), (UniqueHostAttr("hostname"),)),
        ((HostAttrValue("hostname", names),), ()),
        ((), (HostAttrValue("hostname", names),)),
        ((UniqueHostAttr("rack"),), ()),
        ((BalancedHostAttr("rack", 3),), ()),
        ((), (BalancedHostAttr("zone", 2),)),
        ((HostAttrValue("rack", ["r1", "r2"]),), ()),
        ((ExclusiveHost(),), ()),
        ((), (ExclusiveHost(),)),
        ((HostAttrValue(attr, "p1"),), (BalancedHostAttr(attr, 2),)),
        ((UniqueHostAttr("hostname"), HostAttrValue("zone", "a")), (BalancedHostAttr("rack", 2),)),
    ][pick]


def _outcome(s, method, *args, **kwargs):
    try:
        value = getattr(s, method)(*args, **kwargs)
    except (ValueError, KeyError, TypeError) as exc:
        return ("raised", type(exc).__name__, str(exc))
    if hasattr(value, "assignments"):
        return summary(value)
    if isinstance(value, tuple):
        return tuple(v.tolist() if isinstance(v, np.ndarray) else
                     {r: (dict(f.counts), f.message) for r, f in v.items()} if isinstance(v, dict) and v
                     and hasattr(next(iter(v.values())), "message") else v for v in value)
    return value.tolist() if isinstance(value, np.ndarray) else value


class _Trio:
    """The engine (index on and off) and the twin, driven alike and compared after every call."""

    def __init__(self, fitness, seed):
        self.all = [Scheduler(fitness=fitness, seed=seed), Scheduler(fitness=fitness, seed=seed, index=False),
                    ReferenceScheduler(fitness=fitness, seed=seed)]
        self.twin = self.all[2]

    def same(self, step, method, *args, state=True, **kwargs):
        got = [_outcome(s, method, *args, **kwargs) for s in self.all]
        assert got[0] == got[2], f"step {step} {method}: engine {got[0]} twin {got[2]}"
        assert got[1] == got[2], f"step {step} {method}: full scan {got[1]} twin {got[2]}"
        if state:
            self.check_state(step, method)
        return got[2]

    def check_state(self, step, method):
        shot = snapshot(self.twin)
        for s in self.all[:2]:
            assert snapshot(s) == shot, f"state after step {step} {method}"
        for h in self.live():
            for r, free in self.all[0].host_free(h).items():
                assert free >= -1e-9, f"step {step}: host {h} over-committed on {r}"

    def live(self) -> list[str]:
        return [h for h in self.twin.host_ids if h is not None]

    def held(self) -> list[str]:
        return sorted(self.twin.held_tasks())


def _run(seed: int, steps: int):
    rng = random.Random(seed)
    fitness = rng.choice(["cpu_mem_binpack", "cpu_binpack", "cpu_mem_spread", "cpu_mem_fewest_hosts"])
    trio = _Trio(fitness, rng.randrange(2**32))
    extra_attrs: list[str] = []
    removed: list[str] = []
    n_hosts = 0

    def new_hosts(k, extra=None):
        nonlocal n_hosts
        out = [_host(rng, f"h{n_hosts + i}", extra) for i in range(k)]
        n_hosts += k
        return out

    trio.same(-1, "add_hosts", new_hosts(40))
    for s in trio.all:
        s.set_eviction_quota("a", 3)
        s.set_eviction_quota("b", 2)
    next_task = 0
    n_jobs = 0
    asked: dict[str, tuple[float, float]] = {}  # task id -> (cpus, memory_mb)

    def job():
        nonlocal n_jobs
        if rng.random() < 0.15:  # a job interned late, one of many
            n_jobs += 1
            return f"late{n_jobs}"
        return rng.choice(["a", "a", "b", "c", None])

    for step in range(steps):
        op = rng.random()
        live = trio.live()
        if op < 0.30:  # objects
            n = rng.randint(1, 12)
            hard, soft = _constraints(rng, live, [*extra_attrs, f"pod{len(extra_attrs)}"])
            j, prio, ports = job(), rng.choice(PRIORITIES), rng.choice([0, 0, 0, 1, 2])
            gang = f"g{step}" if rng.random() < 0.1 else None
            mixed = gang is None and rng.random() < 0.5  # many classes in one call, one after another
            tasks = []
            for i in range(n):
                if mixed:
                    hard, soft = _constraints(rng, live, [*extra_attrs, f"pod{len(extra_attrs)}"])
                    j = job() if rng.random() < 0.3 else j
                tasks.append(Task(f"t{next_task + i}", cpus=rng.choice(CPUS), memory_mb=rng.choice(MEMORY), job=j,
                                  priority=prio, hard=hard, soft=soft, ports=ports, gang=gang))
            next_task += n
            asked.update((t.id, (t.cpus, t.memory_mb)) for t in tasks)
            trio.same(step, "schedule", tasks, preempt=rng.random() < 0.3)
        elif op < 0.50:  # arrays, with and without ids, explain and preempt
            k = rng.randint(1, 4)
            classes = []
            for _ in range(k):
                hard, soft = _constraints(rng, live, [*extra_attrs, f"pod{len(extra_attrs)}"])
                classes.append(TaskClass(job=job(), hard=hard, soft=soft, priority=rng.choice(PRIORITIES),
                                         ports=rng.choice([0, 0, 1])))
            n = rng.randint(1, 14)
            # few distinct demands: usages recur, classes are emptied and made again
            demand = np.array([[rng.choice(CPUS), rng.choice(MEMORY), 0, 0] for _ in range(n)], dtype=np.float64)
            tc = np.array([rng.randrange(k) for _ in range(n)], dtype=np.int32)
            ids = [f"t{next_task + i}" for i in range(n)] if rng.random() < 0.8 else None
            next_task += n
            if ids is not None:
                asked.update((tid, (row[0], row[1])) for tid, row in zip(ids, demand.tolist()))
            trio.same(step, "schedule_arrays", demand, tc, classes, task_ids=ids,
                      explain=rng.random() < 0.6, preempt=rng.random() < 0.3)
        elif op < 0.66:  # releases: usages go back to earlier values
            held = trio.held()
            for tid in rng.sample(held, min(len(held), rng.randint(1, 8))):
                trio.same(step, "release", tid)
        elif op < 0.74:  # a task put back where it was: its host's signature as before
            held = trio.held()
            if held:
                tid = rng.choice(held)
                host = trio.twin.task_host(tid)
                trio.same(step, "release", tid)
                cpus, mem = asked[tid]
                trio.same(step, "add_running", Task(tid, cpus=cpus, memory_mb=mem, job=job()), host)
        elif op < 0.80:  # a job first seen in add_running, then in schedule
            if live:
                j = f"run{step}"
                host = rng.choice(live)
                t = Task(f"t{next_task}", cpus=rng.choice(CPUS), memory_mb=rng.choice(MEMORY), job=j,
                         priority=rng.choice(PRIORITIES))
                next_task += 1
                asked[t.id] = (t.cpus, t.memory_mb)
                trio.same(step, "add_running", t, host)
                tasks = [Task(f"t{next_task + i}", cpus=1, memory_mb=256, job=j,
                              hard=(UniqueHostAttr("hostname"),), soft=(BalancedHostAttr("rack", 2),))
                         for i in range(3)]
                next_task += 3
                asked.update((t.id, (t.cpus, t.memory_mb)) for t in tasks)
                trio.same(step, "schedule", tasks)
        elif op < 0.86:  # disable / enable
            if live:
                h = rng.choice(live)
                trio.same(step, "disable_host" if trio.twin.is_enabled(h) else "enable_host", h)
        elif op < 0.92:  # remove hosts, some added again later under the same id
            if len(live) > 5:
                gone = rng.sample(live, rng.randint(1, 3))
                trio.same(step, "remove_hosts", gone)
                removed += gone
        elif op < 0.97:  # new hosts, sometimes with an attribute no host had (the index rebuilt)
            extra = None
            if rng.random() < 0.3:
                extra = f"pod{len(extra_attrs)}"
                extra_attrs.append(extra)
            hosts = new_hosts(rng.randint(1, 4), extra)
            if removed and rng.random() < 0.7:
                back = removed.pop(rng.randrange(len(removed)))
                hosts.append(_host(rng, back, extra))
            trio.same(step, "add_hosts", hosts)
        elif op < 0.985:
            trio.same(step, "reset")
        else:
            trio.same(step, "set_eviction_quota", rng.choice(["a", "b", "c"]), rng.randint(0, 4))
    for tid in trio.held():
        trio.same(steps, "release", tid)
    trio.same(steps, "reset")  # rows placed without ids are held until then
    for s in trio.all[:2]:
        for h in trio.live():
            assert set(s.host_usage(h).values()) == {0.0}, h


@pytest.mark.parametrize("seed", range(6))
def test_index_table_churn_places_as_the_twin(seed):
    _run(seed, 70)


def test_many_classes_made_and_emptied_in_one_bucket():
    """Hosts alike but for usage: each placement and release makes and empties classes, so the
    signature table fills with gone entries and grows past several sizes; hostname constraints
    set hosts apart and back again between calls."""
    trio = _Trio("cpu_mem_binpack", 7)
    trio.same(0, "add_hosts", [Host(f"n{i}", cpus=64, memory_mb=65536, attributes={"rack": "r0"}) for i in range(90)])
    rng = random.Random(3)
    k = 0
    for step in range(1, 25):
        # distinct usages on many hosts: many live classes (the table grows)
        n = rng.randint(20, 60)
        demand = np.array([[0.25 * rng.randint(1, 40), 16.0 * rng.randint(1, 40), 0, 0] for _ in range(n)])
        ids = [f"x{k + i}" for i in range(n)]
        k += n
        hard = (UniqueHostAttr("hostname"),) if step % 3 == 0 else ()
        names = [f"n{rng.randrange(90)}" for _ in range(5)]
        soft = (HostAttrValue("hostname", names),) if step % 4 == 0 else ()
        trio.same(step, "schedule_arrays", demand, np.zeros(n, np.int32),
                  [TaskClass(job=f"j{step % 5}", hard=hard, soft=soft)], task_ids=ids, explain=True)
        held = trio.held()
        for tid in rng.sample(held, len(held) * 2 // 3):  # most classes emptied: gone entries
            trio.same(step, "release", tid, state=False)
        trio.check_state(step, "release")
    for tid in trio.held():
        trio.same(99, "release", tid, state=False)
    trio.check_state(99, "release")


@pytest.mark.parametrize("seed", range(8))
def test_hosts_alone_in_their_bucket(seed):
    """Hosts alone in their bucket (a rack of their own): a placement re-homes the host, its
    bucket empties and is filed again; in the same call hostname constraints set co-task hosts
    apart (new buckets, old ids reused) and a HostAttrValue class reads each bucket's verdict
    from one member. Rows of the three kinds interleaved, with releases between calls."""
    rng = random.Random(100 + seed)
    trio = _Trio(rng.choice(["cpu_mem_binpack", "cpu_mem_spread", "cpu_binpack"]), seed)
    hosts = [Host(f"solo{i}", cpus=rng.choice([4, 8]), memory_mb=8192, attributes={"rack": f"r{i}"})
             for i in range(10)]
    hosts += [Host(f"pair{i}", cpus=8, memory_mb=8192, attributes={"rack": f"r{i % 3}"}) for i in range(6)]
    trio.same(0, "add_hosts", hosts)
    k = 0
    for step in range(1, 9):
        racks = [f"r{rng.randrange(10)}" for _ in range(2)]
        classes = [TaskClass(job="a", soft=(BalancedHostAttr("rack", 2),)),
                   TaskClass(job="a", hard=(UniqueHostAttr("hostname"),)),
                   TaskClass(job="b", hard=(HostAttrValue("rack", racks),)),
                   TaskClass(job="c", hard=(HostAttrValue("hostname", [f"solo{rng.randrange(10)}"]),))]
        n = rng.randint(6, 24)
        tc = np.array([rng.choice([0, 0, 1, 2, 2, 3]) for _ in range(n)], dtype=np.int32)
        demand = np.array([[rng.choice([0.5, 1, 2]), rng.choice([256, 1024]), 0, 0] for _ in range(n)])
        ids = [f"s{k + i}" for i in range(n)]
        k += n
        trio.same(step, "schedule_arrays", demand, tc, classes, task_ids=ids, explain=True)
        held = trio.held()
        for tid in rng.sample(held, len(held) // 2):
            trio.same(step, "release", tid, state=False)
        trio.check_state(step, "release")


# ---------------------------------------------------------------- integer fields


class Falsy(int):
    """Its value everywhere, but false as a truth value."""

    def __bool__(self):
        return False


class EqualsThree(int):
    """Its own value, but equal to 3 and hashed as 3."""

    def __eq__(self, other):
        return other == 3 or int.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(3)


def _both(fn):
    return [fn(make_scheduler(kind, fitness="cpu_mem_binpack", seed=0)) for kind in ("native", "reference")]


@pytest.mark.parametrize("low, high", [(IntSaysFive(3), 4), (NpSaysFive(3), 4), (Falsy(3), 1)],
                         ids=["int_says_five", "np_says_five", "falsy"])
def test_schedule_reads_priority_by_value(low, high):
    def run(s):
        s.add_hosts([Host(id="h0", cpus=2, memory_mb=100)])
        s.set_eviction_quota("low", 1)
        first = s.schedule([Task(id="low0", cpus=2, memory_mb=1, job="low", priority=low)])
        second = s.schedule([Task(id="high0", cpus=2, memory_mb=1, job="high", priority=high)], preempt=True)
        return summary(first), summary(second)

    engine, twin = _both(run)
    assert engine == twin


@pytest.mark.parametrize("first", [True, False])
def test_balanced_count_equal_only_by_a_lying_eq(first):
    """A value whose == and hash say it is another number is refused on both paths, naming the
    field (equal must mean the same value: tasks with equal constraints share a class)."""
    hosts = [Host(id=f"h{i}", cpus=8, memory_mb=1000, attributes={"zone": f"z{i % 3}"}) for i in range(6)]
    plain, lying = BalancedHostAttr("zone", 3), BalancedHostAttr("zone", EqualsThree(1))
    pair = (plain, lying) if first else (lying, plain)
    bad = 1 if first else 0

    def run(s):
        s.add_hosts(hosts)
        with pytest.raises(InputTypeError, match=rf"tasks\[{bad}\]\.hard\[0\] BalancedHostAttr\.expected_values: "
                                                 r"a int subclass that redefines ==, != or hash"):
            s.schedule([Task(id=f"t{i}", cpus=1, memory_mb=1, job="a", hard=(pair[i % 2],)) for i in range(8)])
        with pytest.raises(InputTypeError, match=rf"classes\[{bad}\]\.hard\[0\] BalancedHostAttr\.expected_values"):
            s.schedule_arrays(np.ones((8, 4)) * [1, 1, 0, 0], np.arange(8, dtype=np.int32) % 2,
                              [TaskClass(job="a", hard=(c,)) for c in pair])
        return s.largest_free("cpus")

    engine, twin = _both(run)
    assert engine == twin == 8.0  # nothing held


def test_constraint_subclasses_with_a_lying_eq_keep_their_classes_apart():
    """A caller's own constraint subclass whose == and hash say every instance is equal: the
    class key holds each as its kind (``plain_constraint``), so each task is placed by its own
    count on the engine, as on the twin, on both paths."""

    class AllSame(BalancedHostAttr):
        def __eq__(self, other):
            return isinstance(other, BalancedHostAttr)

        def __hash__(self):
            return 1

    hosts = [Host(id=f"h{i}", cpus=8, memory_mb=1000, attributes={"zone": f"z{i % 3}"}) for i in range(6)]
    pair = (AllSame("zone", 1), AllSame("zone", 3))

    def run(s):
        s.add_hosts(hosts)
        r = s.schedule([Task(id=f"t{i}", cpus=1, memory_mb=1, job="a", hard=(pair[i % 2],)) for i in range(8)])
        placed, failures = s.schedule_arrays(np.ones((8, 4)) * [1, 1, 0, 0], np.arange(8, dtype=np.int32) % 2,
                                             [TaskClass(job="b", hard=(c,)) for c in pair], explain=True)
        return summary(r), placed.tolist(), {k: f.message for k, f in failures.items()}

    engine, twin = _both(run)
    assert engine == twin


@pytest.mark.parametrize("change", ["add", "remove"])
def test_score_bound_follows_hosts_coming_and_going(change):
    """The bound's capacity extremes are kept between calls and renewed when hosts come or go:
    with the largest cpu capacity of an earlier call, a walk would stop before a big host that is
    the fullest by cpu utilisation."""
    def run(s):
        small = [Host(id=f"s{i}", cpus=4, memory_mb=1000) for i in range(4)]
        s.add_hosts(small + ([Host(id="gone", cpus=2, memory_mb=1000)] if change == "remove" else []))
        first = s.schedule([Task(id="a", cpus=1, memory_mb=1)])
        if change == "remove":
            s.remove_host("gone")  # the least cpu capacity changes
        s.add_hosts([Host(id="big", cpus=64, memory_mb=1000)])
        s.add_running(Task(id="filler", cpus=44, memory_mb=1), "big")
        second = s.schedule([Task(id="b", cpus=1, memory_mb=1), Task(id="c", cpus=3, memory_mb=1)])
        return summary(first), summary(second)

    outcomes = []
    for kind in ("native", "reference"):
        outcomes.append(run(make_scheduler(kind, fitness="cpu_binpack", seed=0)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1]["assignments"]["b"] == "big"  # 45/64 of its cpus used beats 2/4
