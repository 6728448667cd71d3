"""The validator's fast path (verdicts kept per constraint, a compiled loop over classes) says
"valid" exactly when the full check does, whatever was checked before: equal values of other
types (1 == 1.0 == True) or other classes never borrow a verdict."""
import pytest
from hypothesis import given, settings, strategies as st

from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr
from titus.scheduler import validation as v
from titus.scheduler.model import TaskClass


def _accepted(check, x, errors=(TypeError, ValueError)) -> bool:
    """Whether the full check ``check(x, where)`` accepts ``x`` (raising one of ``errors`` if not)."""
    try:
        check(x, "x")
        return True
    except errors:
        return False


def _valid(c) -> bool:
    return _accepted(v.check_constraint, c, (TypeError, ValueError, AttributeError))


CANDIDATES = [
    HostAttrValue("zone", "1"), HostAttrValue("zone", 1), HostAttrValue("zone", 1.0),
    HostAttrValue("zone", True), HostAttrValue("zone", ["a", "b"]), HostAttrValue("zone", ["a", 1]),
    HostAttrValue("", "a"), HostAttrValue("zone", "\ud800"), HostAttrValue("zone", "a\x00"),
    HostAttrValue("zone", values=[]), HostAttrValue("z" * 100_000, "a"),
    BalancedHostAttr("zone", 3), BalancedHostAttr("zone", 3.0), BalancedHostAttr("zone", True),
    BalancedHostAttr("zone", 0), BalancedHostAttr("zone", -1), BalancedHostAttr("zone", 2**40),
    BalancedHostAttr(1, 3), UniqueHostAttr("zone"), UniqueHostAttr(""),
]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(len(CANDIDATES))))
def test_fast_verdicts_equal_the_full_check_in_any_order(order):
    v._VALID_CONSTRAINTS.clear()
    for i in order:
        c = CANDIDATES[i]
        assert v._plain_constraints([c]) == _valid(c), c
        assert v._plain_constraints((c,)) == _valid(c), c  # and again, from the cache


def test_not_a_list_or_tuple_is_not_plain():
    assert not v._plain_constraints({HostAttrValue("zone", "a")})
    assert not v._plain_constraints(None)
    assert v._plain_constraints([]) and v._plain_constraints(())


@pytest.mark.parametrize("bad, message", [
    (TaskClass(job=""), r"classes\[1\]\.job"),
    (TaskClass(job="j", ports=-1), r"classes\[1\]\.ports"),
    (TaskClass(job="j", priority=2**31), r"classes\[1\]\.priority"),
    (TaskClass(job="j", hard=[HostAttrValue("zone", "\ud800")]), r"classes\[1\]\.hard"),
    (TaskClass(job="j", soft=[BalancedHostAttr("zone", 0)]), r"classes\[1\]\.soft"),
    (TaskClass(job="j\ud800"), r"classes\[1\]\.job"),
])
def test_a_bad_class_among_good_ones_is_named(bad, message):
    good = TaskClass(job="ok", hard=[HostAttrValue("zone", "a")], soft=[BalancedHostAttr("zone", 3)])
    with pytest.raises(ValueError, match=message):
        v.check_classes([good, bad, good])


def test_a_bool_ports_or_priority_takes_the_full_check():
    # True == 1, but a bool is not a count: the compiled fast path must not wave it through.
    for bad in (TaskClass(job="j", ports=True), TaskClass(job="j", priority=True)):
        with pytest.raises((ValueError, TypeError)):
            v.check_classes([bad])


class _Str(str):
    pass


_ODD = [0, 1, 2.5, -1, -0.0, float("nan"), float("inf"), 1e308, 1e309, True, False, None, "1",
        _Str("a"), 2**31, 2**63, -2**31 - 1]
_NAMES = [None, "", "j", "j\ud800", "é", _Str("j"), 1, "x" * 10_000, "a\x00"]


@settings(max_examples=300, deadline=None)
@given(st.builds(dict, cpus=st.sampled_from(_ODD), memory_mb=st.sampled_from(_ODD),
                 ports=st.sampled_from(_ODD), priority=st.sampled_from(_ODD),
                 job=st.sampled_from(_NAMES), group=st.sampled_from(_NAMES),
                 tid=st.sampled_from(["t", "", _Str("t"), "t\ud800", 7])))
def test_the_compiled_task_fast_path_passes_only_what_the_full_check_accepts(f):
    from titus._codec import plain_task_prefix
    from titus.scheduler.model import Task

    try:
        t = Task(f["tid"], cpus=f["cpus"], memory_mb=f["memory_mb"], ports=f["ports"],
                 priority=f["priority"], job=f["job"], group=f["group"])
    except (TypeError, ValueError):
        return
    fast = plain_task_prefix([t], Task, v.MAX_COUNT, v.MIN_PRIORITY, v.MAX_PRIORITY, v._plain_constraints)
    ok = _accepted(v.check_task, t)
    assert not fast or ok, t
    assert fast == v._plain_task(t), t  # the one-task form gives the batch form's verdict


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_ODD), st.sampled_from(_ODD),
       st.sampled_from([[], [(1, 2)], [(2, 1)], [(0, 65536)], [(True, 2)], [[1, 2]], [(1, 2, 3)], ((5, 5),)]),
       st.sampled_from([{}, {"zone": "a"}, {"": "a"}, {"zone": 1}, {"zone": "é"}, {_Str("z"): "a"}]),
       st.sampled_from(["h", "", _Str("h"), "h\ud800", 3]))
def test_the_compiled_host_fast_path_passes_only_what_the_full_check_accepts(cpus, mem, ports, attrs, hid):
    from titus._codec import plain_host_prefix
    from titus.scheduler.model import Host

    try:
        h = Host(hid, cpus=cpus, memory_mb=mem, ports=ports, attributes=attrs)
    except (TypeError, ValueError):
        return
    fast = plain_host_prefix([h], Host, v.MAX_PORT)
    ok = _accepted(v.check_host, h)
    assert not fast or ok, h
    assert fast == v._plain_host(h), h  # the one-host form gives the batch form's verdict


def test_a_bad_task_after_many_good_ones_is_named_and_nothing_is_placed(make_scheduler):
    from titus.scheduler.model import Host, Task

    s = make_scheduler([Host("h", cpus=1000)])
    tasks = [Task(f"t{i}", cpus=1) for i in range(500)] + [Task("bad", cpus=float("nan"))]
    with pytest.raises(ValueError, match=r"tasks\[500\]\.cpus"):
        s.schedule(tasks)
    assert s.host_usage("h")["cpus"] == 0.0
