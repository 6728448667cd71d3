"""Group limits: a group may not hold more than its limit; the task over it fails."""
from titus.scheduler.model import Host, Task


def cluster(n=3):
    return [Host(f"h{i}", cpus=16, memory_mb=16000) for i in range(n)]


def test_group_limit_stops_the_fifth_task(make_scheduler):
    s = make_scheduler(cluster(3), group_limits={"g1": {"cpus": 4}})
    r = s.schedule([Task(f"t{i}", cpus=1, group="g1") for i in range(5)])
    assert sorted(r.assignments) == ["t0", "t1", "t2", "t3"]
    assert r.failures["t4"].counts == {"group_limit": 3}
    # The message may name the group: "group_limit(g1)".
    assert r.failures["t4"].message.startswith("0/3 hosts: 3 group_limit")


def test_release_frees_group_capacity(make_scheduler):
    s = make_scheduler(cluster(2), group_limits={"g1": {"cpus": 4}})
    s.schedule([Task(f"t{i}", cpus=1, group="g1") for i in range(4)])
    assert "late" in s.schedule([Task("late", cpus=1, group="g1")]).failures
    s.release("t2")
    assert "again" in s.schedule([Task("again", cpus=1, group="g1")]).assignments


def test_other_groups_and_ungrouped_tasks_are_not_limited(make_scheduler):
    s = make_scheduler(cluster(2), group_limits={"g1": {"cpus": 2}})
    r = s.schedule([Task("a", cpus=2, group="g1"), Task("b", cpus=2, group="g2"), Task("c", cpus=2)])
    assert sorted(r.assignments) == ["a", "b", "c"]


def test_only_the_limited_resources_count(make_scheduler):
    s = make_scheduler(cluster(2), group_limits={"g1": {"memory_mb": 3000}})
    r = s.schedule([Task(f"t{i}", cpus=4, memory_mb=1000, group="g1") for i in range(4)])
    assert sorted(r.assignments) == ["t0", "t1", "t2"]
    assert r.failures["t3"].counts == {"group_limit": 2}


def test_a_large_task_can_fail_while_a_small_one_still_fits(make_scheduler):
    s = make_scheduler(cluster(1), group_limits={"g1": {"cpus": 3}})
    r = s.schedule([Task("a", cpus=2, group="g1"), Task("big", cpus=2, group="g1"),
                    Task("small", cpus=1, group="g1")])
    assert sorted(r.assignments) == ["a", "small"]
    assert set(r.failures) == {"big"}


def test_limit_is_reached_exactly_with_float_sums(make_scheduler):
    s = make_scheduler(cluster(1), group_limits={"g1": {"cpus": 0.3}})
    r = s.schedule([Task(f"t{i}", cpus=0.1, group="g1") for i in range(4)])
    # 0.1 + 0.1 + 0.1 > 0.3 in floating point, but within the 1e-9 tolerance.
    assert sorted(r.assignments) == ["t0", "t1", "t2"]


def test_group_limit_counts_hosts_that_are_disabled_but_not_removed(make_scheduler):
    s = make_scheduler(cluster(4), group_limits={"g1": {"cpus": 1}})
    s.disable_host("h0")
    s.remove_host("h1")
    r = s.schedule([Task("a", cpus=1, group="g1"), Task("b", cpus=1, group="g1")])
    assert r.failures["b"].counts == {"group_limit": 3}


def test_group_limit_is_checked_before_hosts(make_scheduler):
    # The task fits no host either, but the group limit is the reason given.
    s = make_scheduler(cluster(2), group_limits={"g1": {"cpus": 1}})
    r = s.schedule([Task("huge", cpus=100, group="g1")])
    assert r.failures["huge"].counts == {"group_limit": 2}


def test_failed_tasks_do_not_use_group_capacity(make_scheduler):
    s = make_scheduler([Host("h", cpus=2, memory_mb=100)], group_limits={"g1": {"cpus": 4}})
    r = s.schedule([Task("nofit", cpus=1, memory_mb=1000, group="g1")]
                   + [Task(f"t{i}", cpus=1, group="g1") for i in range(2)])
    assert r.failures["nofit"].counts == {"memory_mb": 1}
    assert sorted(r.assignments) == ["t0", "t1"]
    s.add_hosts([Host("h2", cpus=8)])
    r = s.schedule([Task(f"u{i}", cpus=1, group="g1") for i in range(3)])
    assert sorted(r.assignments) == ["u0", "u1"]
