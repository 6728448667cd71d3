"""set_group_limits replaces the limits at any time; add_running refuses a wrong port count or a
scalar no host has, and a refusal leaves ``resources`` as it was (engine and twin alike)."""
import pytest

from titus.scheduler.model import Host, Task

from tests.scheduler.helpers import snapshot


def cluster(make_scheduler, **options):
    hosts = [Host(f"h{i}", cpus=8, memory_mb=8000, ports=[(100, 105)]) for i in range(2)]
    return make_scheduler(hosts, **options)


def test_set_group_limits_applies_to_the_next_calls(make_scheduler):
    s = cluster(make_scheduler, group_limits={"g": {"cpus": 2}})
    r = s.schedule([Task(f"a{i}", cpus=1, group="g") for i in range(3)])
    assert len(r.assignments) == 2 and r.failures["a2"].message
    s.set_group_limits({"g": {"cpus": 4}})
    r = s.schedule([Task(f"b{i}", cpus=1, group="g") for i in range(3)])
    assert sorted(r.assignments) == ["b0", "b1"]      # held a0, a1 still count: 2 + 2 = 4
    s.set_group_limits(None)
    r = s.schedule([Task(f"c{i}", cpus=1, group="g") for i in range(3)])
    assert len(r.assignments) == 3 and not r.failures


def test_set_group_limits_refuses_bad_limits_and_keeps_the_old_ones(make_scheduler):
    s = cluster(make_scheduler, group_limits={"g": {"cpus": 1}})
    with pytest.raises((ValueError, TypeError), match="cpus"):
        s.set_group_limits({"g": {"cpus": -1}})
    r = s.schedule([Task(f"a{i}", cpus=1, group="g") for i in range(2)])
    assert list(r.assignments) == ["a0"]


def test_add_running_with_a_wrong_number_of_ports_is_refused(make_scheduler):
    s = cluster(make_scheduler)
    before = snapshot(s)
    with pytest.raises(ValueError, match="ports"):
        s.add_running(Task("x", cpus=1, ports=2), "h0", ports=[100])
    with pytest.raises(ValueError, match="ports"):
        s.add_running(Task("y", cpus=1), "h0", ports=[100])
    assert snapshot(s) == before
    s.add_running(Task("z", cpus=1, ports=2), "h0", ports=[104, 101])
    assert s.task_host("z") == "h0"


def test_a_refused_add_running_adds_no_resource_name(make_scheduler):
    s = cluster(make_scheduler)
    before = snapshot(s)
    with pytest.raises(ValueError, match="fpga"):
        s.add_running(Task("x", cpus=1, scalars={"fpga": 1}), "h0")
    assert "fpga" not in s.resources
    assert snapshot(s) == before
    # Asking none of it fits capacity 0: held, and the name is noted then.
    s.add_running(Task("y", cpus=1, scalars={"fpga": 0}), "h0")
    assert "fpga" in s.resources and s.task_host("y") == "h0"
