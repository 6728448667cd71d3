"""UniqueHostAttr: no two co-tasks (held tasks of the same job) on the same attribute value."""
from titus.constraints import UniqueHostAttr
from titus.scheduler.model import Host, Task

from tests.scheduler.helpers import zone_hosts, zone_of


def job_tasks(job, count, prefix=None, **kw):
    prefix = prefix or job
    return [Task(f"{prefix}-{i}", cpus=1, memory_mb=100, job=job, **kw) for i in range(count)]


def test_unique_zone_spreads_co_tasks_over_zones(make_scheduler):
    # Bin-packing alone would stack them on one host; the constraint forces one per zone.
    s = make_scheduler(zone_hosts("abc", per_zone=2), fitness="cpu_mem_binpack")
    r = s.schedule(job_tasks("j1", 3, hard=[UniqueHostAttr("zone")]))
    assert sorted(zone_of(h) for h in r.assignments.values()) == ["a", "b", "c"]


def test_unique_zone_fails_the_fourth_task_with_three_zones(make_scheduler):
    s = make_scheduler(zone_hosts("abc", per_zone=2))
    r = s.schedule(job_tasks("j1", 4, hard=[UniqueHostAttr("zone")]))
    assert len(r.assignments) == 3
    assert set(r.failures) == {"j1-3"}
    failure = r.failures["j1-3"]
    assert failure.counts == {"constraint:UniqueHostAttr": 6}
    assert failure.message == "0/6 hosts: 6 constraint:UniqueHostAttr(zone)"


def test_unique_host_is_one_co_task_per_host(make_scheduler):
    s = make_scheduler([Host(f"h{i}", cpus=16, memory_mb=16000) for i in range(3)])
    r = s.schedule(job_tasks("j1", 4, hard=[UniqueHostAttr()]))
    assert sorted(r.assignments.values()) == ["h0", "h1", "h2"]
    assert r.failures["j1-3"].counts == {"constraint:UniqueHostAttr": 3}
    assert r.failures["j1-3"].message == "0/3 hosts: 3 constraint:UniqueHostAttr(hostname)"


def test_tasks_of_different_jobs_are_not_co_tasks(make_scheduler):
    s = make_scheduler(zone_hosts("a"))
    r = s.schedule(job_tasks("j1", 1, hard=[UniqueHostAttr("zone")])
                   + job_tasks("j2", 1, hard=[UniqueHostAttr("zone")]))
    assert r.assignments == {"j1-0": "h-a-0", "j2-0": "h-a-0"}


def test_a_task_without_a_job_has_no_co_tasks(make_scheduler):
    s = make_scheduler([Host("h", cpus=4, memory_mb=1000)])
    r = s.schedule([Task(f"t{i}", cpus=1, hard=[UniqueHostAttr()]) for i in range(3)])
    assert r.assignments == {"t0": "h", "t1": "h", "t2": "h"}


def test_co_tasks_include_tasks_held_from_earlier_calls_and_restored(make_scheduler):
    s = make_scheduler(zone_hosts("abc"))
    s.add_running(Task("old-a", cpus=1, job="j1"), "h-a-0")
    s.schedule(job_tasks("j1", 1, prefix="first", hard=[UniqueHostAttr("zone")]))
    r = s.schedule(job_tasks("j1", 2, prefix="second", hard=[UniqueHostAttr("zone")]))
    # One zone left (not a, not the first call's): one placed, one failed.
    assert len(r.assignments) == 1 and len(r.failures) == 1
    zones = {zone_of(s.task_host(t)) for t in ["old-a", "first-0", *r.assignments]}
    assert zones == {"a", "b", "c"}


def test_release_frees_the_zone_for_a_co_task(make_scheduler):
    s = make_scheduler(zone_hosts("ab"))
    r = s.schedule(job_tasks("j1", 2, hard=[UniqueHostAttr("zone")]))
    assert len(r.assignments) == 2
    assert s.schedule(job_tasks("j1", 1, prefix="late", hard=[UniqueHostAttr("zone")])).failures
    s.release("j1-0")
    r = s.schedule(job_tasks("j1", 1, prefix="again", hard=[UniqueHostAttr("zone")]))
    assert r.assignments == {"again-0": s.task_host("again-0")}
    assert zone_of(r.assignments["again-0"]) != zone_of(s.task_host("j1-1"))


def test_host_without_the_attribute_is_rejected(make_scheduler):
    s = make_scheduler([Host("no-zone", cpus=8, memory_mb=8000)])
    r = s.schedule(job_tasks("j1", 1, hard=[UniqueHostAttr("zone")]))
    assert r.failures["j1-0"].counts == {"constraint:UniqueHostAttr": 1}


def test_soft_unique_prefers_a_new_zone_but_still_places(make_scheduler):
    s = make_scheduler(zone_hosts("ab"), fitness="cpu_mem_binpack")
    r = s.schedule(job_tasks("j1", 4, soft=[UniqueHostAttr("zone")]))
    assert len(r.assignments) == 4 and not r.failures
    first_two = {zone_of(r.assignments[f"j1-{i}"]) for i in range(2)}
    assert first_two == {"a", "b"}
