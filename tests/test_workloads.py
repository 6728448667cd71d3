"""The trace-shaped workload generator: determinism, trace proportions, heavy tail, bounds."""
import math

import numpy as np
import pytest

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.workloads import (
    RESOURCES,
    WorkloadSpec,
    generate,
    job_sizes,
    lower_bound_hosts,
)
from titus.workloads.trace_facts import GOOGLE_2011_MACHINE_SHAPES


def _same(a, b):
    assert a.host_ids == b.host_ids
    np.testing.assert_array_equal(a.capacity, b.capacity)
    np.testing.assert_array_equal(a.host_zone, b.host_zone)
    np.testing.assert_array_equal(a.host_tier, b.host_tier)
    np.testing.assert_array_equal(a.demand, b.demand)
    np.testing.assert_array_equal(a.task_class, b.task_class)
    assert a.classes == b.classes


def test_same_seed_same_workload():
    spec = WorkloadSpec(hosts=300, tasks=3000, seed=7, constraints="mixed")
    _same(generate(spec), generate(spec))


def test_other_seed_other_workload():
    a = generate(hosts=300, tasks=3000, seed=1)
    b = generate(hosts=300, tasks=3000, seed=2)
    assert not np.array_equal(a.capacity, b.capacity)
    assert not np.array_equal(a.demand, b.demand)


def test_arrays_have_the_documented_shapes_and_dtypes():
    w = generate(hosts=50, tasks=400)
    assert w.resources == RESOURCES == ("cpus", "memory_mb", "disk_mb", "network_mbps")
    assert w.capacity.shape == (50, 4) and w.capacity.dtype == np.float64
    assert w.demand.shape == (400, 4) and w.demand.dtype == np.float64
    assert w.demand.flags.c_contiguous
    assert w.task_class.shape == (400,) and w.task_class.dtype == np.int32
    assert w.task_class.min() >= 0 and w.task_class.max() < len(w.classes)
    assert len(w.host_ids) == len(set(w.host_ids)) == 50
    assert np.all(w.demand > 0)


def test_machine_shapes_follow_the_2011_trace_proportions():
    spec = WorkloadSpec(hosts=20_000, tasks=0, seed=3)
    w = generate(spec)
    counts = np.bincount(w.host_shape, minlength=len(GOOGLE_2011_MACHINE_SHAPES))
    total_share = sum(row[3] for row in GOOGLE_2011_MACHINE_SHAPES)
    for k, (name, cpu, mem, share) in enumerate(GOOGLE_2011_MACHINE_SHAPES):
        assert counts[k] / spec.hosts == pytest.approx(share / total_share, abs=0.015), name
        rows = w.capacity[w.host_shape == k]
        assert np.all(rows[:, 0] == cpu * spec.cpus_per_unit)
        assert np.all(rows[:, 1] == math.floor(mem * spec.memory_mb_per_unit))
    # the common shape is half a large machine: 32 cpus / 128 GiB at the default scale
    assert counts.argmax() == 0
    assert w.capacity[w.host_shape == 0][0, :2].tolist() == [32.0, 131072.0]


def test_scale_knob_sets_real_units():
    w = generate(hosts=200, tasks=10, cpus_per_unit=96, memory_mb_per_unit=384 * 1024)
    assert w.capacity[:, 0].max() == 96.0
    assert w.capacity[:, 1].max() == 384 * 1024


def test_zones_and_tiers_are_host_attributes():
    w = generate(hosts=3000, tasks=10, zones=4, critical_fraction=0.2)
    zones, counts = np.unique(w.host_zone, return_counts=True)
    assert list(zones) == ["zone-0", "zone-1", "zone-2", "zone-3"]
    assert counts.min() > 600
    assert np.mean(w.host_tier == "critical") == pytest.approx(0.2, abs=0.03)
    host = w.hosts()[5]
    assert host.id == "host-5"
    assert host.attributes["zone"] == w.host_zone[5]
    assert host.attributes["tier"] == w.host_tier[5]


def test_job_sizes_are_heavy_tailed():
    sizes = job_sizes(1_000_000, 1000, 0.99, 1.0, np.random.default_rng(0))
    assert sizes.sum() == 1_000_000 and sizes.min() >= 1 and len(sizes) == 1000
    top = np.sort(sizes)[::-1][:10]
    assert top.sum() / sizes.sum() >= 0.99 - 1e-6
    # most jobs are few tasks
    assert np.median(sizes) <= 10


def test_top_one_percent_of_jobs_holds_most_resources():
    w = generate(hosts=1000, tasks=200_000, seed=4)
    per_job = np.zeros(len(w.classes))
    np.add.at(per_job, w.task_class, w.demand[:, 0])
    top = np.sort(per_job)[::-1][: max(1, len(per_job) // 100)]
    assert top.sum() / per_job.sum() > 0.9


def test_top_share_knob_moves_the_tail():
    light = job_sizes(100_000, 1000, 0.2, 1.0, np.random.default_rng(0))
    heavy = job_sizes(100_000, 1000, 0.99, 1.0, np.random.default_rng(0))
    assert light[:10].sum() < heavy[:10].sum()
    # the top 1% hold at least top_share (the Zipf tail's own head can add to it)
    assert 0.2 <= light[:10].sum() / 100_000 < 0.5


def test_tasks_are_small_beside_a_machine():
    w = generate(hosts=500, tasks=20_000, seed=5)
    largest = w.capacity.max(axis=0)
    assert np.all(w.demand[:, 0] <= largest[0] * w.spec.task_max + 1e-9)
    assert np.all(w.demand[:, 1] <= largest[1] * w.spec.task_max + 1e-9)
    assert np.median(w.demand[:, 0] / largest[0]) < 0.05


def test_tasks_of_a_job_share_one_demand():
    w = generate(hosts=100, tasks=5000, seed=6)
    for c in range(len(w.classes)):
        rows = w.demand[w.task_class == c]
        assert np.all(rows == rows[0])


def test_jobs_order_keeps_each_job_together_and_shuffled_interleaves():
    grouped = generate(hosts=10, tasks=2000, jobs=40, order="jobs").task_class
    changes = np.count_nonzero(np.diff(grouped))
    assert changes == 39
    mixed = generate(hosts=10, tasks=2000, jobs=40, order="shuffled").task_class
    assert np.count_nonzero(np.diff(mixed)) > 39
    assert np.array_equal(np.bincount(grouped, minlength=40), np.bincount(mixed, minlength=40))


def test_objects_match_arrays():
    w = generate(hosts=20, tasks=300, constraints="zone", seed=8)
    tasks = w.tasks()
    assert [t.id for t in tasks] == w.task_ids
    for i in (0, 17, 299):
        t = tasks[i]
        assert [t.cpus, t.memory_mb, t.disk_mb, t.network_mbps] == w.demand[i].tolist()
        cls = w.classes[w.task_class[i]]
        assert (t.job, t.hard, t.soft) == (cls.job, tuple(cls.hard), tuple(cls.soft))
    assert [t.id for t in w.tasks(10, 12)] == ["task-10", "task-11"]
    hosts = w.hosts()
    assert [[h.cpus, h.memory_mb, h.disk_mb, h.network_mbps] for h in hosts] == w.capacity.tolist()


def test_constraint_mixes():
    zone = generate(hosts=100, tasks=1000, constraints="zone", zones=3)
    for cls in zone.classes:
        assert cls.hard == (HostAttrValue("tier", "flex"),)
        assert cls.soft == (BalancedHostAttr("zone", 3),)
    assert np.array_equal(zone.eligible_hosts, zone.host_tier == "flex")

    none = generate(hosts=100, tasks=1000, constraints="none")
    assert all(not c.hard and not c.soft for c in none.classes)
    assert none.eligible_hosts.all()

    unique = generate(hosts=100, tasks=1000, constraints="unique")
    for cls, size in zip(unique.classes, unique.job_sizes):
        where = cls.hard if size <= 25 else cls.soft
        assert where == (UniqueHostAttr("hostname"),)

    mixed = generate(hosts=1000, tasks=100_000, jobs=2000, constraints="mixed", seed=1)
    kinds = {type(c) for cls in mixed.classes for c in (*cls.hard, *cls.soft)}
    assert kinds == {HostAttrValue, BalancedHostAttr, UniqueHostAttr, ExclusiveHost}
    assert sum(1 for c in mixed.classes if not c.hard and not c.soft) > 800


@pytest.mark.parametrize("field, value, error", [
    ("hosts", 0, ValueError),
    ("tasks", -1, ValueError),
    ("hosts", 1.5, TypeError),
    ("constraints", "zones", ValueError),
    ("order", "random", ValueError),
    ("top_share", 1.5, ValueError),
    ("critical_fraction", 1.0, ValueError),
    ("task_cpu_median", float("nan"), ValueError),
    ("cpus_per_unit", 0, ValueError),
    ("machine_shapes", (("x", 0.5, -1, 1.0),), ValueError),
])
def test_bad_knobs_name_the_field(field, value, error):
    with pytest.raises(error, match=field):
        WorkloadSpec(**{field: value})


def test_homogeneous_bound_is_max_of_per_resource_ceilings():
    capacity = np.tile([[32.0, 128.0, 100.0, 10.0]], (50, 1))
    demand = np.array([320.5, 640.0, 0.0, 30.0])
    expected = max(math.ceil(320.5 / 32), math.ceil(640 / 128), math.ceil(30 / 10))
    for method in ("lp", "greedy"):
        bound = lower_bound_hosts(capacity, demand, method)
        assert (bound.hosts, bound.method) == (expected, method)


def test_lp_bound_is_tighter_than_greedy_on_mixed_hosts():
    # cpu-heavy hosts and memory-heavy hosts: each resource alone fits on the big-in-it hosts,
    # but covering both at once needs more of them.
    capacity = np.array([[10.0, 1.0]] * 10 + [[1.0, 10.0]] * 10)
    demand = np.array([50.0, 50.0])
    greedy = lower_bound_hosts(capacity, demand, "greedy").hosts
    lp = lower_bound_hosts(capacity, demand, "lp").hosts
    assert greedy == 5
    assert lp == 10  # 5 + 5 hosts give 55/55; the LP optimum is 100/11 -> 10 after rounding up


def test_bound_never_exceeds_a_real_packing():
    w = generate(hosts=200, tasks=2000, seed=9)
    used = np.zeros_like(w.capacity)
    placed = np.zeros(len(w.demand), dtype=bool)
    for i, d in enumerate(w.demand):  # first fit
        fits = np.flatnonzero(np.all(used + d <= w.capacity, axis=1))
        if len(fits):
            used[fits[0]] += d
            placed[i] = True
    hosts_used = int(np.count_nonzero(used[:, 0]))
    bound = w.lower_bound(placed)
    assert 0 < bound.hosts <= hosts_used
    assert bound.hosts >= lower_bound_hosts(w.capacity, w.demand[placed].sum(0), "greedy").hosts


def test_bound_is_none_when_demand_exceeds_the_cluster():
    capacity = np.ones((3, 2))
    assert lower_bound_hosts(capacity, np.array([4.0, 1.0])).hosts is None
    assert lower_bound_hosts(capacity, np.zeros(2)).hosts == 0


def test_bound_rejects_bad_shapes_and_methods():
    with pytest.raises(ValueError, match="total_demand"):
        lower_bound_hosts(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="method"):
        lower_bound_hosts(np.ones((3, 2)), np.ones(2), "exact")


def test_used_host_utilisation_is_the_bottleneck_share_of_used_capacity():
    w = generate(hosts=4, tasks=3, jobs=1, machine_shapes=(("half-half", 0.5, 0.5, 1.0),))
    placement = np.array([0, 0, 2])
    used = w.capacity[[0, 2]].sum(axis=0)
    expected = max(w.demand.sum(axis=0) / used)
    assert w.used_host_utilisation(placement) == pytest.approx(expected)
    assert w.used_host_utilisation(np.array([-1, -1, -1])) is None
    assert 0 < w.used_host_utilisation(placement) <= 1


def test_pareto_job_sizes_are_heavy_tailed_capped_and_sum_to_tasks():
    from titus.workloads import pareto_job_sizes

    sizes = pareto_job_sizes(110_000, 1.1, 20_000, np.random.default_rng(0))
    assert sizes.sum() == 110_000 and sizes.min() >= 1 and sizes.max() <= 20_000
    # heavy tail: most jobs are tiny, the largest 1% hold a large share of the tasks
    top = np.sort(sizes)[::-1][:max(1, len(sizes) // 100)]
    assert np.median(sizes) <= 3 and top.sum() > 0.3 * sizes.sum()
    assert pareto_job_sizes(5, 1.1, 2, np.random.default_rng(1)).max() <= 2


def test_pareto_shape_three_instance_types_three_zones_and_the_pinned_mix():
    from titus.workloads import THREE_INSTANCE_TYPES, pareto_spec

    w = generate(pareto_spec(hosts=3000, tasks=30_000, seed=3))
    assert len(w.demand) == 30_000 and set(w.host_zone.tolist()) == {"zone-0", "zone-1", "zone-2"}
    assert sorted(set(w.host_shape.tolist())) == [0, 1, 2] and len(THREE_INSTANCE_TYPES) == 3
    pinned = [c for c in w.classes if c.hard]
    balanced = [c for c in w.classes if c.soft]
    n = len(w.classes)
    assert 0.07 * n < len(pinned) < 0.13 * n and 0.26 * n < len(balanced) < 0.34 * n
    for c in pinned:
        (rule,) = c.hard
        assert isinstance(rule, HostAttrValue) and rule.attr == "zone" and len(set(rule.values)) == 2
    for c in balanced:
        assert c.soft == (BalancedHostAttr("zone", 3),)
    # jobs arrive in random order, each job's tasks together
    starts = [int(np.argmax(w.task_class == k)) for k in range(min(50, n))]
    assert starts != sorted(starts)
    runs = int(np.count_nonzero(np.diff(w.task_class))) + 1
    assert runs == n
