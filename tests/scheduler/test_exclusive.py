"""ExclusiveHost: a task that needs an empty host and, as a hard constraint, keeps it."""
from titus.constraints import ExclusiveHost
from titus.scheduler.model import Host, Task


def hosts(n=3, **kw):
    kw.setdefault("cpus", 16)
    kw.setdefault("memory_mb", 16000)
    return [Host(f"h{i}", **kw) for i in range(n)]


def test_no_other_task_lands_on_an_exclusive_host(make_scheduler):
    s = make_scheduler(hosts(2), fitness="cpu_mem_binpack")
    r = s.schedule([Task("solo", cpus=1, hard=[ExclusiveHost()])])
    solo_host = r.assignments["solo"]
    # Bin-packing would pick the used host; exclusivity forbids it.
    r = s.schedule([Task(f"t{i}", cpus=1) for i in range(4)])
    assert solo_host not in r.assignments.values()
    assert len(r.assignments) == 4


def test_exclusive_host_is_reported_as_the_reason(make_scheduler):
    s = make_scheduler(hosts(1))
    s.schedule([Task("solo", cpus=1, hard=[ExclusiveHost()])])
    r = s.schedule([Task("t", cpus=1)])
    assert r.failures["t"].counts == {"constraint:ExclusiveHost": 1}
    # Whether a reason with no arguments reads "ExclusiveHost" or "ExclusiveHost()" is open.
    assert r.failures["t"].message.startswith("0/1 hosts: 1 constraint:ExclusiveHost")


def test_exclusive_reason_comes_before_resources(make_scheduler):
    s = make_scheduler(hosts(1, cpus=2))
    s.schedule([Task("solo", cpus=1, hard=[ExclusiveHost()])])
    r = s.schedule([Task("big", cpus=5)])
    assert r.failures["big"].counts == {"constraint:ExclusiveHost": 1}


def test_exclusive_task_needs_an_empty_host(make_scheduler):
    s = make_scheduler(hosts(3), fitness="cpu_mem_binpack")
    s.add_running(Task("a", cpus=1), "h0")
    s.add_running(Task("b", cpus=1), "h2")
    r = s.schedule([Task("solo", cpus=1, hard=[ExclusiveHost()])])
    assert r.assignments == {"solo": "h1"}


def test_exclusive_task_fails_when_every_host_is_busy(make_scheduler):
    s = make_scheduler(hosts(2))
    s.add_running(Task("a", cpus=1), "h0")
    s.add_running(Task("b", cpus=1), "h1")
    r = s.schedule([Task("solo", cpus=1, hard=[ExclusiveHost()])])
    assert r.failures["solo"].counts == {"constraint:ExclusiveHost": 2}


def test_two_exclusive_tasks_take_two_hosts(make_scheduler):
    s = make_scheduler(hosts(3))
    r = s.schedule([Task(f"solo{i}", cpus=1, hard=[ExclusiveHost()]) for i in range(4)])
    assert len(set(r.assignments.values())) == 3
    assert list(r.failures) == ["solo3"]


def test_releasing_the_exclusive_task_opens_the_host(make_scheduler):
    s = make_scheduler(hosts(1))
    s.schedule([Task("solo", cpus=1, hard=[ExclusiveHost()])])
    s.release("solo")
    assert s.schedule([Task("t", cpus=1)]).assignments == {"t": "h0"}


def test_soft_exclusive_prefers_an_empty_host_but_does_not_reserve_it(make_scheduler):
    s = make_scheduler(hosts(2), fitness="cpu_mem_binpack")
    s.add_running(Task("a", cpus=1), "h0")
    r = s.schedule([Task("shy", cpus=1, soft=[ExclusiveHost()])])
    assert r.assignments == {"shy": "h1"}
    s.disable_host("h0")
    r = s.schedule([Task("t", cpus=1)])
    assert r.assignments == {"t": "h1"}


def test_soft_exclusive_still_places_on_a_busy_host(make_scheduler):
    s = make_scheduler(hosts(1))
    s.add_running(Task("a", cpus=1), "h0")
    assert s.schedule([Task("shy", cpus=1, soft=[ExclusiveHost()])]).assignments == {"shy": "h0"}
