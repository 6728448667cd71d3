"""Failures: one reason per host (the first failing check), counts summing to the host count,
and one readable line: reasons by count descending, then by name."""
from titus.constraints import UniqueHostAttr
from titus.scheduler.model import Host, Task


def test_counts_and_message_name_each_reason(make_scheduler):
    s = make_scheduler([Host("c1", cpus=1, memory_mb=8000), Host("c2", cpus=1, memory_mb=8000),
                        Host("m1", cpus=8, memory_mb=100)])
    r = s.schedule([Task("t", cpus=2, memory_mb=500)])
    assert r.failures["t"].counts == {"cpus": 2, "memory_mb": 1}
    assert r.failures["t"].message == "0/3 hosts: 2 cpus, 1 memory_mb"
    assert str(r.failures["t"]) == r.failures["t"].message


def test_first_failing_check_is_the_reason(make_scheduler):
    # Fails memory, disk, network, gpu and ports at once: cpus comes first in resources order.
    hosts = [Host("all", cpus=1), Host("none"), Host("mem", cpus=8), Host("disk", cpus=8, memory_mb=8000),
             Host("net", cpus=8, memory_mb=8000, disk_mb=8000),
             Host("gpu", cpus=8, memory_mb=8000, disk_mb=8000, network_mbps=100),
             Host("ports", cpus=8, memory_mb=8000, disk_mb=8000, network_mbps=100, scalars={"gpu": 1}),
             Host("eni", cpus=8, memory_mb=8000, disk_mb=8000, network_mbps=100, scalars={"gpu": 1},
                  ports=[(1, 2)], attributes={"zone": "a"}),
             Host("zone", cpus=8, memory_mb=8000, disk_mb=8000, network_mbps=100, scalars={"gpu": 1},
                  ports=[(1, 2)], resource_sets={"eni": (1, 1)})]
    s = make_scheduler(hosts)
    task = Task("t", cpus=2, memory_mb=10, disk_mb=10, network_mbps=10, scalars={"gpu": 1}, ports=2,
                resource_sets={"eni": "x"}, hard=[UniqueHostAttr("zone")])
    r = s.schedule([task])
    assert r.failures["t"].counts == {
        "cpus": 2, "memory_mb": 1, "disk_mb": 1, "network_mbps": 1, "gpu": 1, "ports": 1,
        "resource_set:eni": 1, "constraint:UniqueHostAttr": 1}
    assert sum(r.failures["t"].counts.values()) == len(hosts)
    assert r.failures["t"].message == (
        "0/9 hosts: 2 cpus, 1 constraint:UniqueHostAttr(zone), 1 disk_mb, 1 gpu, 1 memory_mb, "
        "1 network_mbps, 1 ports, 1 resource_set:eni")


def test_hard_constraints_are_checked_in_the_order_given(make_scheduler):
    from titus.constraints import HostAttrValue

    s = make_scheduler([Host("h", cpus=8, attributes={"zone": "a"})])
    # The host fails both constraints of each task: the first one listed is the reason.
    r = s.schedule([Task("t", hard=[HostAttrValue("rack", "r1"), UniqueHostAttr("rack")]),
                    Task("u", hard=[UniqueHostAttr("rack"), HostAttrValue("rack", "r1")])])
    assert r.failures["t"].counts == {"constraint:HostAttrValue": 1}
    assert r.failures["u"].counts == {"constraint:UniqueHostAttr": 1}


def test_removed_hosts_are_not_counted(make_scheduler):
    s = make_scheduler([Host(f"h{i}", cpus=1) for i in range(5)])
    s.remove_host("h0")
    s.remove_host("h3")
    r = s.schedule([Task("t", cpus=2)])
    assert r.failures["t"].counts == {"cpus": 3}
    assert r.failures["t"].message == "0/3 hosts: 3 cpus"


def test_counts_sum_to_the_host_count_on_a_mixed_cluster(make_scheduler):
    hosts = [Host(f"h{i}", cpus=i % 4, memory_mb=1000 * (i % 3), attributes={"zone": "abc"[i % 3]})
             for i in range(30)]
    s = make_scheduler(hosts)
    s.disable_host("h7")
    r = s.schedule([Task(f"t{i}", cpus=2, memory_mb=1500, job="j", hard=[UniqueHostAttr("zone")])
                    for i in range(5)])
    assert r.failures
    for failure in r.failures.values():
        assert sum(failure.counts.values()) == 30
        assert failure.message.startswith("0/30 hosts: ")


def test_unplaced_tasks_are_not_held(make_scheduler):
    from tests.scheduler.helpers import held_ids

    s = make_scheduler([Host("h", cpus=1)])
    s.schedule([Task("big", cpus=2)])
    assert held_ids(s) == []
