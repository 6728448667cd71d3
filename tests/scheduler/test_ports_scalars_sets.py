"""Ports (lowest free first), named scalars (gpu) and labelled resource sets (ENIs)."""
from titus.scheduler.model import Host, Task


def test_ports_are_given_lowest_first_and_run_out(make_scheduler):
    s = make_scheduler([Host("h", cpus=8, ports=[(31000, 31002)])])
    r = s.schedule([Task("a", ports=2), Task("b", ports=2), Task("c", ports=1), Task("d")])
    assert r.ports == {"a": [31000, 31001], "c": [31002]}
    assert r.assignments == {"a": "h", "c": "h", "d": "h"}
    assert r.failures["b"].counts == {"ports": 1}
    assert r.failures["b"].message == "0/1 hosts: 1 ports"


def test_released_ports_are_reused_lowest_first(make_scheduler):
    s = make_scheduler([Host("h", cpus=8, ports=[(100, 104)])])
    s.schedule([Task("a", ports=2), Task("b", ports=2)])
    s.release("a")
    r = s.schedule([Task("c", ports=3)])
    assert r.ports == {"c": [100, 101, 104]}


def test_ports_span_several_ranges_in_numeric_order(make_scheduler):
    s = make_scheduler([Host("h", cpus=8, ports=[(200, 201), (100, 100)])])
    r = s.schedule([Task("a", ports=2), Task("b", ports=1), Task("c", ports=1)])
    assert r.ports == {"a": [100, 200], "b": [201]}
    assert r.failures["c"].counts == {"ports": 1}


def test_ports_steer_tasks_to_hosts_with_free_ports(make_scheduler):
    s = make_scheduler([Host("noports", cpus=8), Host("web", cpus=64, ports=[(8080, 8080)])],
                       fitness="cpu_binpack")
    r = s.schedule([Task("a", cpus=1, ports=1), Task("b", cpus=1, ports=1)])
    assert r.assignments == {"a": "web"}
    assert r.ports == {"a": [8080]}
    assert r.failures["b"].counts == {"ports": 2}


def test_restored_task_holds_the_ports_it_names(make_scheduler):
    s = make_scheduler([Host("h", cpus=8, ports=[(10, 13)])])
    s.add_running(Task("old", ports=2), "h", ports=[10, 12])
    r = s.schedule([Task("new", ports=2)])
    assert r.ports == {"new": [11, 13]}


def test_scalars_run_out(make_scheduler):
    s = make_scheduler([Host("gpu-box", cpus=16, memory_mb=16000, scalars={"gpu": 2}),
                        Host("plain", cpus=16, memory_mb=16000)])
    r = s.schedule([Task(f"t{i}", cpus=1, scalars={"gpu": 1}) for i in range(3)])
    assert sorted(r.assignments) == ["t0", "t1"]
    assert set(r.assignments.values()) == {"gpu-box"}
    assert r.failures["t2"].counts == {"gpu": 2}
    assert "gpu" in s.resources


def test_resources_list_scalars_in_the_order_first_seen(make_scheduler):
    s = make_scheduler([Host("h", cpus=4, scalars={"gpu": 1}), Host("k", cpus=4, scalars={"fpga": 1, "gpu": 2})])
    assert tuple(s.resources) == ("cpus", "memory_mb", "disk_mb", "network_mbps", "gpu", "fpga")
    r = s.schedule([Task("t", cpus=1, scalars={"tpu": 1})])
    assert tuple(s.resources)[-1] == "tpu"
    assert r.failures["t"].counts == {"tpu": 2}


def test_resource_set_reuses_a_set_with_the_same_label(make_scheduler):
    s = make_scheduler([Host("h", cpus=8, resource_sets={"eni": (2, 2)})])
    r = s.schedule([Task("a", resource_sets={"eni": "sg-1"}),
                    Task("b", resource_sets={"eni": "sg-1"}),
                    Task("c", resource_sets={"eni": "sg-2"}),
                    Task("d", resource_sets={"eni": "sg-2"}),
                    Task("e", resource_sets={"eni": "sg-3"}),
                    Task("f", resource_sets={"eni": "sg-1"})])
    assert r.resource_sets == {"a": {"eni": 0}, "b": {"eni": 0}, "c": {"eni": 1}, "d": {"eni": 1}}
    assert r.failures["e"].counts == {"resource_set:eni": 1}
    assert r.failures["f"].counts == {"resource_set:eni": 1}


def test_a_freed_set_loses_its_label(make_scheduler):
    s = make_scheduler([Host("h", cpus=8, resource_sets={"eni": (2, 2)})])
    s.schedule([Task("a", resource_sets={"eni": "sg-1"}), Task("b", resource_sets={"eni": "sg-1"}),
                Task("c", resource_sets={"eni": "sg-2"})])
    s.release("a")
    # Set 0 still carries sg-1 (b holds a slot): sg-3 cannot have it.
    assert "x" in s.schedule([Task("x", resource_sets={"eni": "sg-3"})]).failures
    s.release("b")
    r = s.schedule([Task("y", resource_sets={"eni": "sg-3"}), Task("z", resource_sets={"eni": "sg-2"})])
    assert r.resource_sets == {"y": {"eni": 0}, "z": {"eni": 1}}


def test_resource_sets_of_several_names(make_scheduler):
    s = make_scheduler([Host("h", cpus=8, resource_sets={"eni": (1, 4), "sgx": (1, 1)})])
    r = s.schedule([Task("a", resource_sets={"sgx": "p", "eni": "n1"}),
                    Task("b", resource_sets={"sgx": "q", "eni": "n1"})])
    assert r.resource_sets == {"a": {"eni": 0, "sgx": 0}}
    assert r.failures["b"].counts == {"resource_set:sgx": 1}


def test_host_without_the_set_rejects_the_task(make_scheduler):
    s = make_scheduler([Host("h", cpus=8)])
    r = s.schedule([Task("a", resource_sets={"eni": "sg"})])
    assert r.failures["a"].counts == {"resource_set:eni": 1}
