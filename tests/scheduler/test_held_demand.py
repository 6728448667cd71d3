"""What a held task gives back on release is exactly what its hold took, whatever the order of
holds and releases: tasks of a run share the engine's record of their demand, and that record
must outlive every task but the last, survive a new resource column, and never hand one run's
demand to another."""
import random

from hypothesis import given, settings, strategies as st

from titus.scheduler.model import Host, Task


def _usage(s, host):
    return {k: v for k, v in s.host_usage(host).items()}


def test_releases_in_any_order_give_back_each_tasks_own_demand(make_scheduler):
    s = make_scheduler([Host("h", cpus=64, memory_mb=64_000)])
    runs = [(0.5, 100), (0.5, 100), (1.25, 300), (0.5, 100), (2.0, 7)]
    tasks = []
    for k, (cpus, mem) in enumerate(runs):
        batch = [Task(f"r{k}-{i}", cpus=cpus, memory_mb=mem) for i in range(3)]
        assert len(s.schedule(batch).assignments) == 3
        tasks += [(t.id, cpus, mem) for t in batch]
    rng = random.Random(7)
    rng.shuffle(tasks)
    for tid, cpus, mem in tasks:
        before = _usage(s, "h")
        s.release(tid)
        after = _usage(s, "h")
        assert before["cpus"] - after["cpus"] == cpus
        assert before["memory_mb"] - after["memory_mb"] == mem
    assert _usage(s, "h")["cpus"] == 0.0 and _usage(s, "h")["memory_mb"] == 0.0


def test_a_new_resource_keeps_held_demands(make_scheduler):
    s = make_scheduler([Host("a", cpus=8, memory_mb=8000)])
    assert len(s.schedule([Task(f"t{i}", cpus=1.5, memory_mb=10) for i in range(4)]).assignments) == 4
    s.add_hosts([Host("b", cpus=8, memory_mb=8000, scalars={"gpu": 2})])  # a new column
    assert s.schedule([Task("g", cpus=1, scalars={"gpu": 1})]).assignments == {"g": "b"}
    for i in range(4):
        s.release(f"t{i}")
    assert _usage(s, "a")["cpus"] == 0.0 and _usage(s, "a")["gpu"] == 0.0
    s.release("g")
    assert _usage(s, "b") == {k: 0.0 for k in _usage(s, "b")}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.25, 0.5, 0.1, 1.0 / 3.0]), st.integers(1, 4)), min_size=1,
                max_size=12),
       st.randoms(use_true_random=False))
def test_usage_after_holds_and_releases_equals_the_twins_bit_for_bit(runs, rnd):
    from titus import Scheduler
    from titus.scheduler.reference import ReferenceScheduler

    engine, twin = Scheduler(), ReferenceScheduler()
    for s in (engine, twin):
        s.add_hosts([Host("h", cpus=1000, memory_mb=1_000_000)])
    held = []
    n = 0
    for cpus, count in runs:
        batch = [Task(f"t{n + i}", cpus=cpus, memory_mb=cpus * 7) for i in range(count)]
        n += count
        for s in (engine, twin):
            s.schedule(batch)
        held += [t.id for t in batch]
        for tid in rnd.sample(held, k=len(held) // 2):
            held.remove(tid)
            for s in (engine, twin):
                s.release(tid)
        assert engine.host_usage("h") == twin.host_usage("h")
    for tid in held:
        engine.release(tid)
    assert engine.host_usage("h")["cpus"] == 0.0 and engine.host_usage("h")["memory_mb"] == 0.0
