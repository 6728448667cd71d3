"""BalancedHostAttr: co-tasks spread evenly over the values of an attribute (e.g. zones).

Hard: a value may hold at most ceil((n + 1) / k) co-tasks after placing, n = co-tasks held.
Soft: score 1 / (1 + max(0, c[v] - m)), m the least non-zero count once k values are in use.
"""
from collections import Counter

from titus.constraints import BalancedHostAttr
from titus.scheduler.model import Host, Task

from tests.scheduler.helpers import score, zone_hosts, zone_of


def job_tasks(job, count, prefix=None, **kw):
    prefix = prefix or job
    return [Task(f"{prefix}-{i}", cpus=1, memory_mb=100, job=job, **kw) for i in range(count)]


def zone_counts(assignments):
    return Counter(zone_of(h) for h in assignments.values())


def test_hard_balanced_zone_evens_nine_tasks_three_by_three(make_scheduler):
    # Bin-packing would pile all nine into one zone.
    s = make_scheduler(zone_hosts("abc", per_zone=2), fitness="cpu_mem_binpack")
    r = s.schedule(job_tasks("j1", 9, hard=[BalancedHostAttr("zone", 3)]))
    assert not r.failures
    assert zone_counts(r.assignments) == {"a": 3, "b": 3, "c": 3}


def test_hard_balanced_keeps_every_prefix_even(make_scheduler):
    s = make_scheduler(zone_hosts("abc"), fitness="cpu_binpack")
    for i in range(7):
        s.schedule(job_tasks("j1", 1, prefix=f"t{i}", hard=[BalancedHostAttr("zone", 3)]))
        counts = Counter(zone_of(s.task_host(f"t{k}-0")) for k in range(i + 1))
        assert max(counts.values()) - min(counts.get(z, 0) for z in "abc") <= 1


def test_hard_balanced_fails_when_a_zone_is_missing(make_scheduler):
    # Expecting 3 zones but only 2 exist: after one task in each, a third would make a zone
    # hold 2 > ceil(3/3).
    s = make_scheduler(zone_hosts("ab"))
    r = s.schedule(job_tasks("j1", 3, hard=[BalancedHostAttr("zone", 3)]))
    assert zone_counts(r.assignments) == {"a": 1, "b": 1}
    assert r.failures["j1-2"].counts == {"constraint:BalancedHostAttr": 2}
    assert r.failures["j1-2"].message == "0/2 hosts: 2 constraint:BalancedHostAttr(zone,3)"


def test_hard_balanced_rejects_hosts_without_the_attribute(make_scheduler):
    s = make_scheduler([Host("bare", cpus=8, memory_mb=8000)])
    r = s.schedule(job_tasks("j1", 1, hard=[BalancedHostAttr("zone", 2)]))
    assert r.failures["j1-0"].counts == {"constraint:BalancedHostAttr": 1}


def test_other_jobs_do_not_count(make_scheduler):
    s = make_scheduler(zone_hosts("ab"), fitness="cpu_binpack")
    s.add_running(Task("other", cpus=1, job="j2"), "h-a-0")
    s.add_running(Task("other2", cpus=1, job="j2"), "h-a-0")
    r = s.schedule(job_tasks("j1", 2, hard=[BalancedHostAttr("zone", 2)]))
    assert zone_counts(r.assignments) == {"a": 1, "b": 1}


def test_soft_balanced_prefers_the_emptier_zone(make_scheduler):
    s = make_scheduler(zone_hosts("ab", cpus=10), fitness="cpu_binpack")
    s.add_running(Task("held", cpus=1, job="j1"), "h-a-0")
    # a: soft 1/(1+1) = 0.5, fit 0.2; b: soft 1, fit 0.1 -> b wins despite packing.
    assert score(0.5, 0.2) < score(1.0, 0.1)
    r = s.schedule(job_tasks("j1", 1, soft=[BalancedHostAttr("zone", 2)]))
    assert r.assignments == {"j1-0": "h-b-0"}


def test_soft_balanced_still_places_when_only_the_fuller_zone_is_left(make_scheduler):
    s = make_scheduler(zone_hosts("ab", cpus=10), fitness="cpu_binpack")
    s.add_running(Task("held", cpus=1, job="j1"), "h-a-0")
    s.disable_host("h-b-0")
    r = s.schedule(job_tasks("j1", 1, soft=[BalancedHostAttr("zone", 2)]))
    assert r.assignments == {"j1-0": "h-a-0"}


def test_soft_balanced_evens_out_a_batch(make_scheduler):
    s = make_scheduler(zone_hosts("abc", cpus=64, memory_mb=64000), fitness="cpu_mem_binpack")
    r = s.schedule(job_tasks("j1", 12, soft=[BalancedHostAttr("zone", 3)]))
    assert zone_counts(r.assignments) == {"a": 4, "b": 4, "c": 4}
