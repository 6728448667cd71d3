"""The scheduler's own state: hosts come and go, tasks are held until released."""
import pytest

from titus.scheduler.model import Host, Task

from tests.scheduler.helpers import held_ids, plain, snapshot


def test_contract_names_are_importable():
    from titus import Host as H, Scheduler, Task as T, TaskClass  # noqa: F401
    from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr  # noqa: F401
    from titus.scheduler.reference import ReferenceScheduler  # noqa: F401


def test_host_ids_are_indices_never_reused(make_scheduler):
    s = make_scheduler([Host("a", cpus=1), Host("b", cpus=1)])
    assert list(s.host_ids) == ["a", "b"]
    s.remove_host("a")
    s.add_hosts([Host("c", cpus=1)])
    assert list(s.host_ids) == [None, "b", "c"]
    # A removed id may come back, under a new index.
    s.add_hosts([Host("a", cpus=1)])
    assert list(s.host_ids) == [None, "b", "c", "a"]


def test_held_tasks_persist_across_calls(make_scheduler):
    s = make_scheduler([Host("h", cpus=4, memory_mb=4000)])
    s.schedule([Task("a", cpus=3)])
    r = s.schedule([Task("b", cpus=2), Task("c", cpus=1)])
    assert r.assignments == {"c": "h"}
    assert r.failures["b"].counts == {"cpus": 1}
    assert held_ids(s) == ["a", "c"]
    assert s.task_host("a") == "h"


def test_release_returns_resources(make_scheduler):
    s = make_scheduler([Host("h", cpus=4, memory_mb=4000, scalars={"gpu": 1}, ports=[(1, 1)])])
    s.schedule([Task("a", cpus=4, memory_mb=100, scalars={"gpu": 1}, ports=1)])
    before = plain(s.host_usage("h"))
    s.release("a")
    assert held_ids(s) == []
    assert plain(s.host_usage("h")) != before
    r = s.schedule([Task("b", cpus=4, memory_mb=4000, scalars={"gpu": 1}, ports=1)])
    assert r.assignments == {"b": "h"} and r.ports == {"b": [1]}


def test_released_and_unplaced_ids_can_be_used_again(make_scheduler):
    s = make_scheduler([Host("h", cpus=1)])
    r = s.schedule([Task("a", cpus=1), Task("b", cpus=1)])
    assert set(r.failures) == {"b"}
    assert s.schedule([Task("b", cpus=0)]).assignments == {"b": "h"}
    s.release("a")
    assert s.schedule([Task("a", cpus=1)]).assignments == {"a": "h"}


def test_remove_host_drops_its_tasks(make_scheduler):
    s = make_scheduler([Host("h1", cpus=2), Host("h2", cpus=2)])
    s.add_running(Task("a", cpus=1), "h1")
    s.add_running(Task("b", cpus=1), "h1")
    s.add_running(Task("c", cpus=1), "h2")
    dropped = s.remove_host("h1")
    assert sorted(dropped) == ["a", "b"]
    assert held_ids(s) == ["c"]
    r = s.schedule([Task("a", cpus=1), Task("d", cpus=1)])
    assert r.assignments == {"a": "h2"}
    assert r.failures["d"].counts == {"cpus": 1}


def test_disabled_host_takes_no_task_but_keeps_its_own(make_scheduler):
    s = make_scheduler([Host("h1", cpus=8), Host("h2", cpus=4)], fitness="cpu_binpack")
    s.add_running(Task("a", cpus=1), "h1")
    s.disable_host("h1")
    assert held_ids(s) == ["a"]
    r = s.schedule([Task("b", cpus=1), Task("c", cpus=8)])
    assert r.assignments == {"b": "h2"}
    assert r.failures["c"].counts == {"disabled": 1, "cpus": 1}
    s.enable_host("h1")
    r = s.schedule([Task("d", cpus=7)])
    assert r.assignments == {"d": "h1"}


def test_disabled_is_the_first_reason(make_scheduler):
    s = make_scheduler([Host("h", cpus=1)])
    s.disable_host("h")
    assert s.schedule([Task("t", cpus=5)]).failures["t"].counts == {"disabled": 1}


def test_add_running_ignores_constraints_and_disabled(make_scheduler):
    from titus.constraints import HostAttrValue

    s = make_scheduler([Host("h", cpus=2, attributes={"zone": "a"})])
    s.disable_host("h")
    s.add_running(Task("t", cpus=1, hard=[HostAttrValue("zone", "b")]), "h")
    assert s.task_host("t") == "h"


def test_add_running_refuses_to_over_commit(make_scheduler):
    s = make_scheduler([Host("h", cpus=2, memory_mb=100, ports=[(5, 6)], scalars={"gpu": 1},
                             resource_sets={"eni": (1, 1)})])
    s.add_running(Task("a", cpus=1, ports=1, scalars={"gpu": 1}, resource_sets={"eni": "x"}), "h")
    before = snapshot(s)
    for bad in [Task("b", cpus=1.5), Task("b", memory_mb=101), Task("b", ports=2),
                Task("b", scalars={"gpu": 1}), Task("b", resource_sets={"eni": "x"})]:
        with pytest.raises(ValueError):
            s.add_running(bad, "h")
        assert snapshot(s) == before
    with pytest.raises(ValueError):
        s.add_running(Task("b", ports=1), "h", ports=[5])  # 5 is taken by "a"
    with pytest.raises(ValueError):
        s.add_running(Task("b", ports=1), "h", ports=[7])  # not in the host's ranges
    assert snapshot(s) == before
    s.add_running(Task("b", cpus=1, memory_mb=100, ports=1), "h", ports=[6])
    assert held_ids(s) == ["a", "b"]


def test_add_running_counts_toward_placement(make_scheduler):
    s = make_scheduler([Host("h", cpus=4, ports=[(1, 3)])])
    s.add_running(Task("a", cpus=3, ports=1), "h")
    r = s.schedule([Task("b", cpus=2), Task("c", cpus=1, ports=2)])
    assert r.failures["b"].counts == {"cpus": 1}
    assert r.ports == {"c": [2, 3]}


def test_host_usage_and_free_follow_placements(make_scheduler):
    s = make_scheduler([Host("h", cpus=4, memory_mb=1000)])
    free0, used0 = plain(s.host_free("h")), plain(s.host_usage("h"))
    s.schedule([Task("a", cpus=1, memory_mb=250)])
    assert plain(s.host_usage("h")) != used0
    assert plain(s.host_free("h")) != free0
    s.release("a")
    assert plain(s.host_usage("h")) == used0
    assert plain(s.host_free("h")) == free0


def test_reset_drops_every_held_task(make_scheduler):
    s = make_scheduler([Host("h", cpus=1)])
    s.schedule([Task("a", cpus=1)])
    s.reset()
    assert held_ids(s) == []


def test_hosts_and_tasks_are_read_never_changed(make_scheduler):
    import copy

    from titus.constraints import UniqueHostAttr

    hosts = [Host("h", cpus=4, ports=[(1, 4)], scalars={"gpu": 2}, attributes={"zone": "a"},
                  resource_sets={"eni": (1, 2)})]
    tasks = [Task(f"t{i}", cpus=1, ports=1, scalars={"gpu": 1}, job="j", resource_sets={"eni": "x"},
                  soft=[UniqueHostAttr("zone")]) for i in range(2)]
    hosts_before, tasks_before = copy.deepcopy(hosts), copy.deepcopy(tasks)
    s = make_scheduler(hosts)
    s.schedule(tasks)
    s.release("t0")
    assert hosts == hosts_before and tasks == tasks_before


def test_the_scheduler_keeps_its_own_copy_of_hosts(make_scheduler):
    ports, scalars = [(1, 1)], {"gpu": 1}
    s = make_scheduler([Host("h", cpus=4, ports=ports, scalars=scalars)])
    # Changing the caller's containers afterwards does not change the scheduler's hosts.
    ports.append((2, 9))
    scalars["gpu"] = 9
    r = s.schedule([Task("a", ports=2), Task("b", scalars={"gpu": 2})])
    assert r.failures["a"].counts == {"ports": 1}
    assert r.failures["b"].counts == {"gpu": 1}
