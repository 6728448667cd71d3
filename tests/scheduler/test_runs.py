"""Runs of identical tasks: the engine keeps each bucket's best host while a run of tasks with the
same class and demand goes on (csrc/candidates.cpp, champions), so these tests drive long runs,
runs that come back after another job's, soft scores that move under BalancedHostAttr, hosts
alike enough to share classes and hosts that nearly tie, and hold the engine to its twin.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass

from tests.conftest import engine_class, reference_class
from tests.scheduler.helpers import snapshot, summary

pytestmark = pytest.mark.timeout(900)

ZONES = ("a", "b", "c", "d")
PACKERS = ("cpu_binpack", "memory_binpack", "cpu_mem_binpack", "cpu_mem_network_binpack",
           "cpu_mem_fewest_hosts", "cpu_mem_spread")

# Constraints on hostname mark hosts apart (the index's special hosts); tasks with and without
# them interleave so that marks come and go while runs keep their champions.
HOSTNAME = st.one_of(st.just(UniqueHostAttr()), st.builds(BalancedHostAttr, st.just("hostname"), st.integers(2, 50)),
                     st.builds(HostAttrValue, st.just("hostname"),
                               st.lists(st.sampled_from(["h1", "h5", "h9", "h30"]), min_size=1, max_size=3,
                                        unique=True)))
SOFT = st.lists(st.one_of(
    HOSTNAME,
    st.builds(BalancedHostAttr, st.just("zone"), st.integers(1, 4)),
    st.builds(HostAttrValue, st.just("zone"), st.sampled_from(ZONES)),
    st.just(UniqueHostAttr("zone")),
    st.just(ExclusiveHost()),
), max_size=2)
HARD = st.lists(st.one_of(
    HOSTNAME,
    st.builds(BalancedHostAttr, st.just("zone"), st.integers(2, 4)),
    st.builds(HostAttrValue, st.just("zone"), st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True)),
), max_size=1)


@st.composite
def clusters(draw):
    """Hosts from a few shapes (so classes hold several hosts), some nearly alike, over zones."""
    shapes = draw(st.lists(st.tuples(st.sampled_from([4, 8, 8.000001, 16, 15.5, 32]),
                                     st.sampled_from([4096, 8192, 8191.99, 16384, 32768]),
                                     st.sampled_from([1000, 999.9, 10000])), min_size=1, max_size=4))
    n = draw(st.integers(4, 40))
    zones = ZONES[:draw(st.integers(1, 4))]
    return [Host(f"h{i}", cpus=s[0], memory_mb=s[1], network_mbps=s[2], ports=[(100, 103)],
                 attributes={"zone": zones[i % len(zones)] if draw(st.integers(0, 9)) else "d"})
            for i, s in ((i, draw(st.sampled_from(shapes))) for i in range(n))]


@st.composite
def runs(draw):
    """Jobs (demand + shape) and the order their tasks come in: long runs, runs that resume."""
    jobs = []
    for j in range(draw(st.integers(1, 4))):
        demand = dict(cpus=draw(st.sampled_from([0.1, 0.25, 0.5, 1, 2, 3])),
                      memory_mb=draw(st.sampled_from([0, 100, 256, 1024, 1000.1])),
                      network_mbps=draw(st.sampled_from([0, 10])))
        shape = dict(job=f"j{j}" if draw(st.integers(0, 5)) else None, soft=draw(SOFT),
                     hard=draw(HARD) if draw(st.integers(0, 3)) == 0 else [],
                     ports=draw(st.sampled_from([0, 0, 1])))
        jobs.append((demand, shape))
    order = []
    for _ in range(draw(st.integers(1, 6))):
        order += [draw(st.integers(0, len(jobs) - 1))] * draw(st.integers(1, 60))
    return jobs, order


def options(draw):
    return dict(fitness=draw(st.one_of(st.sampled_from(PACKERS),
                                       st.dictionaries(st.sampled_from(PACKERS), st.sampled_from([0.5, 1, 2]),
                                                       min_size=1, max_size=2))),
                soft_weight=draw(st.sampled_from([0.5, 0.0, 1e-9, 2.0])),
                fitness_weight=draw(st.sampled_from([0.35, 1.0, 1e-6, 0.0])),
                seed=draw(st.integers(0, 3)))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_runs_place_as_the_twin_does(data):
    opts = options(data.draw)
    if opts["soft_weight"] + opts["fitness_weight"] == 0:
        opts["fitness_weight"] = 1.0
    cluster = data.draw(clusters(), label="hosts")
    jobs, order = data.draw(runs(), label="runs")
    tasks = [Task(f"t{i}", **jobs[k][0], **jobs[k][1]) for i, k in enumerate(order)]
    engine, twin = engine_class()(**opts), reference_class()(**opts)
    engine.add_hosts(cluster)
    twin.add_hosts(cluster)
    if data.draw(st.booleans(), label="arrays"):
        demand = np.array([[t.cpus, t.memory_mb, t.disk_mb, t.network_mbps] for t in tasks], dtype=np.float64)
        classes = [TaskClass(job=s["job"], soft=tuple(s["soft"]), hard=tuple(s["hard"]), ports=s["ports"])
                   for _, s in jobs]
        task_class = np.array(order, dtype=np.int32)
        got = engine.schedule_arrays(demand, task_class, classes)
        want = twin.schedule_arrays(demand, task_class, classes)
        assert got.tolist() == want.tolist()
    else:
        assert summary(engine.schedule(tasks)) == summary(twin.schedule(tasks))
    assert snapshot(engine) == snapshot(twin)
    # A second call continues from the state the first left (the index re-homes held hosts).
    more = [Task(f"u{i}", **jobs[k][0], **jobs[k][1]) for i, k in enumerate(order[: len(order) // 2])]
    assert summary(engine.schedule(more)) == summary(twin.schedule(more))
    assert snapshot(engine) == snapshot(twin)


def test_a_run_keeps_filling_its_best_host_and_walks_again_only_when_it_is_full():
    hosts = [Host(f"h{i}", cpus=8, memory_mb=8192, attributes={"zone": "a"}) for i in range(50)]
    engine = engine_class()(fitness="cpu_binpack")
    engine.add_hosts(hosts)
    out = engine.schedule_arrays(np.tile([1.0, 0, 0, 0], (400, 1)), np.zeros(400, np.int32), [TaskClass()])
    assert (out >= 0).all()
    assert np.bincount(out, minlength=50).tolist() == [8] * 50  # each host filled before the next
    # One walk per host filled (and the first), not one per task.
    assert engine._engine.last_bucket_walks <= 60


def test_fitness_near_ties_under_a_moving_soft_score_break_as_the_twin_does():
    # Two zones; in each, hosts whose fitness differs by far less than rounding of the score
    # could hide, and a BalancedHostAttr that shifts every zone's soft score task by task.
    hosts = []
    for z in "ab":
        for i, cpus in enumerate([8, 8.000000000000002, 8.000001, 7.999999999999999]):
            hosts.append(Host(f"{z}{i}", cpus=cpus, memory_mb=8192, attributes={"zone": z}))
    for fw in (0.35, 1e-6, 1e-12):
        for seed in range(4):
            tasks = [Task(f"t{i}", cpus=0.5, memory_mb=256, job="j", soft=[BalancedHostAttr("zone", 2)])
                     for i in range(60)]
            engine = engine_class()(fitness="cpu_mem_binpack", fitness_weight=fw, seed=seed)
            twin = reference_class()(fitness="cpu_mem_binpack", fitness_weight=fw, seed=seed)
            engine.add_hosts(hosts)
            twin.add_hosts(hosts)
            assert summary(engine.schedule(tasks)) == summary(twin.schedule(tasks))



@pytest.mark.parametrize("api", ["objects", "arrays"])
def test_a_host_whose_fitness_falls_with_each_placement_loses_its_place_as_in_the_twin(api):
    # A mix whose spreading part outweighs its packing part: each placement lowers the host's
    # fitness, so a run must move on to the next host instead of staying on the first.
    hosts = [Host(f"h{i}", cpus=16, memory_mb=16384, attributes={"zone": "az"[i % 2]}) for i in range(6)]
    mix = {"cpu_binpack": 0.1, "memory_spread": 1.0}
    tasks = [Task(f"t{i}", cpus=0.1, memory_mb=1024, job="j") for i in range(30)]
    results = []
    for make in (engine_class(), reference_class()):
        s = make(fitness=mix, seed=1)
        s.add_hosts(hosts)
        if api == "objects":
            results.append(summary(s.schedule(tasks)))
        else:
            demand = np.tile([0.1, 1024, 0, 0], (30, 1)).astype(np.float64)
            results.append(s.schedule_arrays(demand, np.zeros(30, np.int32), [TaskClass(job="j")]).tolist())
    assert results[0] == results[1]
    if api == "arrays":
        assert len(set(results[0])) == 6  # spread over every host, not packed onto one
