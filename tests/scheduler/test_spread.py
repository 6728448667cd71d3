"""Spreading fitness (``*_spread`` = 1 - the matching bin-packer): one task per host."""
import pytest

from titus.scheduler.model import Host, Task


@pytest.mark.parametrize("fitness", ["cpu_spread", "memory_spread", "cpu_mem_spread",
                                     "cpu_mem_network_spread"])
def test_spreading_puts_one_task_per_host(make_scheduler, fitness):
    hosts = [Host(f"h{i}", cpus=8, memory_mb=8000, network_mbps=1000) for i in range(5)]
    s = make_scheduler(hosts, fitness=fitness)
    r = s.schedule([Task(f"t{i}", cpus=1, memory_mb=1000, network_mbps=100) for i in range(5)])
    assert sorted(r.assignments.values()) == [f"h{i}" for i in range(5)]


def test_network_spread_puts_one_task_per_host(make_scheduler):
    hosts = [Host(f"h{i}", cpus=8, memory_mb=8000, network_mbps=1000) for i in range(3)]
    s = make_scheduler(hosts, fitness="network_spread")
    r = s.schedule([Task(f"t{i}", network_mbps=100) for i in range(6)])
    per_host = {}
    for host in r.assignments.values():
        per_host[host] = per_host.get(host, 0) + 1
    assert per_host == {"h0": 2, "h1": 2, "h2": 2}


def test_spread_prefers_the_bigger_and_emptier_host(make_scheduler):
    s = make_scheduler([Host("small", cpus=4), Host("big", cpus=8)], fitness="cpu_spread")
    assert s.schedule([Task("t0", cpus=1)]).assignments == {"t0": "big"}
    # With big half used, small is emptier after placing: 1 - 1/4 > 1 - 5/8.
    s.add_running(Task("busy", cpus=3), "big")
    assert s.schedule([Task("t1", cpus=1)]).assignments == {"t1": "small"}


def test_spread_avoids_the_host_already_in_use(make_scheduler):
    s = make_scheduler([Host(f"h{i}", cpus=8, memory_mb=8000) for i in range(3)], fitness="cpu_mem_spread")
    s.add_running(Task("a", cpus=1, memory_mb=100), "h0")
    s.add_running(Task("b", cpus=1, memory_mb=100), "h1")
    assert s.schedule([Task("t", cpus=1, memory_mb=100)]).assignments == {"t": "h2"}


def test_spread_is_the_mirror_of_binpack(make_scheduler):
    hosts = [Host("A", cpus=4, memory_mb=8000), Host("B", cpus=8, memory_mb=2000)]
    task = Task("t", cpus=1, memory_mb=1000)
    packed = make_scheduler(hosts, fitness="cpu_binpack").schedule([task]).assignments["t"]
    spread = make_scheduler(hosts, fitness="cpu_spread").schedule([task]).assignments["t"]
    assert {packed, spread} == {"A", "B"}
