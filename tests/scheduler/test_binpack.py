"""Bin-packing fitness: the most utilised (and the smaller) host is filled first.

After Fenzo's BinPackingScheduler scenarios: utilisation is measured after placing the task
(running + placed this round + this task, over capacity).
"""
import pytest

from titus.scheduler.model import Host, Task


def test_cpu_binpack_fills_the_smaller_host_first(make_scheduler):
    s = make_scheduler([Host("big", cpus=8, memory_mb=1000), Host("small", cpus=4, memory_mb=1000)],
                       fitness="cpu_binpack")
    r = s.schedule([Task(f"t{i}", cpus=1) for i in range(6)])
    # 1/4 > 1/8: the small host takes tasks until it is full, then the big one.
    assert r.assignments == {"t0": "small", "t1": "small", "t2": "small", "t3": "small",
                             "t4": "big", "t5": "big"}
    assert r.failures == {}


def test_binpack_prefers_the_host_already_in_use(make_scheduler):
    s = make_scheduler([Host(f"h{i}", cpus=8, memory_mb=8000) for i in range(4)],
                       fitness="cpu_mem_binpack")
    s.add_running(Task("old", cpus=1, memory_mb=1000), "h2")
    r = s.schedule([Task("new", cpus=1, memory_mb=1000)])
    assert r.assignments == {"new": "h2"}


def test_binpack_packs_one_call_onto_one_host(make_scheduler):
    s = make_scheduler([Host(f"h{i}", cpus=4, memory_mb=4000) for i in range(3)],
                       fitness="cpu_mem_binpack")
    r = s.schedule([Task(f"t{i}", cpus=1, memory_mb=1000) for i in range(4)])
    # Tasks of one call see each other: all four land on the same host.
    assert len(set(r.assignments.values())) == 1
    assert len(r.assignments) == 4


@pytest.mark.parametrize("fitness, expected", [
    ("cpu_binpack", "A"),           # cpus: A 1/4, B 1/8
    ("memory_binpack", "B"),        # memory: A 1000/8000, B 1000/2000
    ("cpu_mem_binpack", "B"),       # means: A 0.1875, B 0.3125
    ("network_binpack", "A"),       # network: A 100/200, B 100/1000
    ("cpu_mem_network_binpack", "A"),  # A (0.25+0.125+0.5)/3=0.29, B (0.125+0.5+0.1)/3=0.24
])
def test_each_binpacker_measures_its_own_resources(make_scheduler, fitness, expected):
    hosts = [Host("A", cpus=4, memory_mb=8000, network_mbps=200),
             Host("B", cpus=8, memory_mb=2000, network_mbps=1000)]
    s = make_scheduler(hosts, fitness=fitness)
    r = s.schedule([Task("t", cpus=1, memory_mb=1000, network_mbps=100)])
    assert r.assignments == {"t": expected}


def test_memory_binpack_ignores_cpus(make_scheduler):
    s = make_scheduler([Host("cpu-rich", cpus=64, memory_mb=4000), Host("mem-rich", cpus=2, memory_mb=64000)],
                       fitness="memory_binpack")
    r = s.schedule([Task("t", cpus=1, memory_mb=1000)])
    assert r.assignments == {"t": "cpu-rich"}


def test_weighted_mix_follows_its_weights(make_scheduler):
    hosts = [Host("A", cpus=2, memory_mb=1000), Host("B", cpus=8, memory_mb=200)]
    task = Task("t", cpus=1, memory_mb=100)
    # A: cpu 0.5, memory 0.1; B: cpu 0.125, memory 0.5.
    cases = [
        ({"cpu_binpack": 1, "memory_binpack": 1}, "B"),    # A 0.3, B 0.3125
        ({"cpu_binpack": 2, "memory_binpack": 1}, "A"),    # A 0.367, B 0.25
        ({"cpu_binpack": 1, "memory_spread": 3}, "A"),     # A 0.8, B 0.406
        ({"cpu_spread": 1, "memory_binpack": 1}, "B"),     # A 0.3, B 0.6875
    ]
    for mix, expected in cases:
        s = make_scheduler(hosts, fitness=mix)
        assert s.schedule([task]).assignments == {"t": expected}, mix


def test_single_name_equals_its_mix_of_one(make_scheduler):
    hosts = [Host(f"h{i}", cpus=4 + i, memory_mb=1000 * (5 - i)) for i in range(4)]
    tasks = [Task(f"t{i}", cpus=1, memory_mb=300) for i in range(8)]
    named = make_scheduler(hosts, fitness="cpu_mem_binpack").schedule(tasks)
    mixed = make_scheduler(hosts, fitness={"cpu_mem_binpack": 1}).schedule(tasks)
    assert named.assignments == mixed.assignments


def test_default_fitness_is_cpu_mem_binpack(make_scheduler):
    hosts = [Host("A", cpus=4, memory_mb=8000), Host("B", cpus=8, memory_mb=2000)]
    task = Task("t", cpus=1, memory_mb=1000)
    assert make_scheduler(hosts).schedule([task]).assignments == {"t": "B"}


def test_a_task_fits_a_host_exactly(make_scheduler):
    s = make_scheduler([Host("h", cpus=1.0, memory_mb=300)], fitness="cpu_binpack")
    r = s.schedule([Task(f"t{i}", cpus=0.1, memory_mb=30) for i in range(10)])
    # 0.1 added ten times is 0.9999999999999999: within the 1e-9 tolerance, all ten fit.
    assert len(r.assignments) == 10
    r = s.schedule([Task("extra", cpus=0.1)])
    assert set(r.failures) == {"extra"}
    assert r.failures["extra"].counts == {"cpus": 1}


def test_zero_capacity_resource_counts_as_zero_utilisation(make_scheduler):
    # network capacity 0 on both hosts: network_binpack is 0 everywhere, so ties decide;
    # cpu then breaks the tie in a mix.
    hosts = [Host("A", cpus=4, memory_mb=1000), Host("B", cpus=2, memory_mb=1000)]
    s = make_scheduler(hosts, fitness={"network_binpack": 1, "cpu_binpack": 1})
    assert s.schedule([Task("t", cpus=1)]).assignments == {"t": "B"}


def test_zero_capacity_everywhere_leaves_the_tie_to_the_tiekey(make_scheduler):
    from tests.scheduler.helpers import by_tiekey

    ids = [f"node{i}" for i in range(6)]
    s = make_scheduler([Host(h, cpus=4 + i) for i, h in enumerate(ids)], fitness="network_binpack", seed=3)
    assert s.schedule([Task("t", cpus=1)]).assignments == {"t": by_tiekey(ids, 3)[0]}
