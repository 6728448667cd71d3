"""schedule_arrays(..., explain=True) explains every unplaced row as schedule would; largest_free;
HostAttrValue's "one of these values" spellings; port numbers outside 0..65535."""
import numpy as np
import pytest

from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.validation import InputTypeError

from tests.scheduler.helpers import snapshot


def _cluster():
    return [Host(f"h{i}", cpus=4, memory_mb=4096, attributes={"zone": "abc"[i % 3]}) for i in range(6)]


def test_explain_gives_the_failures_schedule_gives_keyed_by_row(make_scheduler):
    rows = np.array([[3, 512, 0, 0], [8, 512, 0, 0], [1, 99999, 0, 0], [3, 512, 0, 0]], dtype=np.float64)
    classes = [TaskClass(job="j", hard=[HostAttrValue("zone", "a")]), TaskClass(job="k")]
    tc = np.array([0, 1, 1, 0], dtype=np.int32)
    s = make_scheduler(_cluster())
    out, failures = s.schedule_arrays(rows, tc, classes, explain=True)
    objects = make_scheduler(_cluster()).schedule(
        [Task(f"t{i}", cpus=r[0], memory_mb=r[1], job=classes[c].job, hard=classes[c].hard)
         for i, (r, c) in enumerate(zip(rows.tolist(), tc.tolist()))])
    assert out.tolist()[1:3] == [-1, -1]
    assert failures == {int(i[1:]): f for i, f in objects.failures.items()}
    assert failures[1].message == "0/6 hosts: 6 cpus"
    assert failures[2].counts == {"memory_mb": 6}


def test_explain_rows_follow_the_caller_order_under_interleaving(make_scheduler):
    s = make_scheduler([Host("h", cpus=2, memory_mb=100)], task_order="interleave_jobs")
    rows = np.array([[1, 0, 0, 0]] * 3 + [[5, 0, 0, 0]], dtype=np.float64)
    out, failures = s.schedule_arrays(rows, np.array([0, 0, 0, 1], np.int32),
                                      [TaskClass(job="a"), TaskClass(job="b")], explain=True)
    assert sorted(failures) == [i for i, h in enumerate(out.tolist()) if h < 0]
    assert failures[3].counts == {"cpus": 1}


def test_explain_must_be_a_flag_and_a_refusal_changes_nothing(make_scheduler):
    s = make_scheduler(_cluster())
    before = snapshot(s)
    with pytest.raises(InputTypeError, match="explain: must be True or False"):
        s.schedule_arrays(np.array([[1.0, 0, 0, 0]]), np.zeros(1, np.int32), [TaskClass()], explain="yes")
    assert snapshot(s) == before
    assert isinstance(s.schedule_arrays(np.array([[1.0, 0, 0, 0]]), np.zeros(1, np.int32), [TaskClass()]),
                      np.ndarray)


def test_largest_free_counts_live_enabled_hosts(make_scheduler):
    s = make_scheduler([Host("a", cpus=16, memory_mb=10), Host("b", cpus=8, memory_mb=20)])
    s.add_running(Task("t", cpus=4), "a")
    assert s.largest_free("cpus") == 12 and s.largest_free("memory_mb") == 20
    s.disable_host("a")
    assert s.largest_free("cpus") == 8
    s.remove_host("b")
    assert s.largest_free("cpus") == 0.0
    with pytest.raises(ValueError, match="unknown resource 'gpu'"):
        s.largest_free("gpu")


@pytest.mark.parametrize("spelling", [["a", "b"], ("a", "b"), {"b", "a"}, frozenset({"a", "b"})])
def test_host_attr_value_takes_a_collection_as_one_of(make_scheduler, spelling):
    c = HostAttrValue("zone", spelling)
    assert c == HostAttrValue("zone", values=["a", "b"]) and repr(c) == "HostAttrValue(zone=a,b)"
    s = make_scheduler(_cluster(), fitness="cpu_spread")
    r = s.schedule([Task(f"t{i}", cpus=1, hard=[c]) for i in range(8)])
    assert {s.host_ids.index(h) % 3 for h in r.assignments.values()} == {0, 1}
    assert HostAttrValue("zone", "ab").values == ("ab",)  # a string stays one value


def test_host_attr_value_one_of_as_soft_and_with_other_constraints(make_scheduler):
    s = make_scheduler(_cluster())
    r = s.schedule([Task(f"t{i}", cpus=1, job="j", soft=[HostAttrValue("zone", ["c"]), BalancedHostAttr("zone", 3)],
                         hard=[UniqueHostAttr()]) for i in range(3)])
    assert len(r.assignments) == 3


@pytest.mark.parametrize("rng, port", [((1, 70000), 70000), ((-5, 3), -5), ((65536, 65536), 65536)])
def test_a_port_outside_the_range_is_named(make_scheduler, rng, port):
    s = make_scheduler()
    with pytest.raises(ValueError, match=rf"hosts\[0\].ports\[0\]: port {port} is outside 0..65535"):
        s.add_hosts([Host("h", cpus=1, ports=[rng])])
    assert len(s) == 0
