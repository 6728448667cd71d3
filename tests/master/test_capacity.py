"""Tiers and capacity groups: Critical first, weighted dominant share, limits."""
from titus.master.capacity import CapacityGroup, CapacityGroups
from titus.master.queue import PendingQueue

CLUSTER = {"cpus": 100.0, "memory_mb": 100_000.0, "disk_mb": 0.0, "network_mbps": 0.0, "gpu": 0.0}
ONE_CPU = {"cpus": 1.0, "memory_mb": 100.0}


def batch(queue, groups, usage=None, limit=100, demand=None):
    return queue.next_batch(groups=groups, usage=usage or {}, cluster=CLUSTER,
                            demand_of=demand or (lambda tid: ONE_CPU),
                            eligible=lambda tid: not tid.startswith("later"), limit=limit)


def fill(queue, group, n, prefix=None):
    for i in range(n):
        queue.add(group, f"{prefix or group}-{i}")


def test_critical_tier_goes_first():
    groups = CapacityGroups()
    groups.put(CapacityGroup("crit", "Critical"))
    q = PendingQueue()
    fill(q, "flex", 3)
    fill(q, "crit", 3)
    order, _ = batch(q, groups)
    assert order[:3] == ["crit-0", "crit-1", "crit-2"]
    assert order[3:] == ["flex-0", "flex-1", "flex-2"]


def test_groups_share_by_dominant_share_weighted_by_guarantee():
    groups = CapacityGroups()
    groups.put(CapacityGroup("big", "Flex", {"cpus": 30.0}))
    groups.put(CapacityGroup("small", "Flex", {"cpus": 10.0}))
    q = PendingQueue()
    fill(q, "big", 40)
    fill(q, "small", 40)
    order, _ = batch(q, groups, limit=40)
    big = sum(1 for t in order if t.startswith("big"))
    assert big == 30  # 3:1, as the guarantees


def test_current_usage_counts():
    groups = CapacityGroups()
    q = PendingQueue()
    fill(q, "a", 5)
    fill(q, "b", 5)
    order, _ = batch(q, groups, usage={"a": {"cpus": 3.0}}, limit=4)
    # b catches up with a first; at equal shares the name breaks the tie
    assert order == ["b-0", "b-1", "b-2", "a-0"]


def test_limit_bounds_what_a_group_holds_and_delayed_tasks_wait():
    groups = CapacityGroups()
    groups.put(CapacityGroup("g", "Flex", {}, limit={"cpus": 4.0}))
    q = PendingQueue()
    fill(q, "g", 6)
    q.add("g", "later-1")
    order, held = batch(q, groups, usage={"g": {"cpus": 1.0}})
    assert order == ["g-0", "g-1", "g-2"]
    assert set(held) == {"g-3", "g-4", "g-5"}
    assert "limit" in held["g-3"] and "cpus" in held["g-3"]


def test_queue_bookkeeping():
    q = PendingQueue()
    q.add("g", "t1")
    q.add("g", "t1")
    assert len(q) == 1
    q.discard("g", "t1")
    q.discard("g", "t1")
    assert len(q) == 0 and q.by_group == {}
