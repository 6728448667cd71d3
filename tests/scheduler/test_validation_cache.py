"""The validator's fast path (verdicts kept per constraint, a compiled loop over classes) says
"valid" exactly when the full check does, whatever was checked before: equal values of other
types (1 == 1.0 == True) or other classes never borrow a verdict."""
import pytest
from hypothesis import given, settings, strategies as st

from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr
from titus.scheduler import validation as v
from titus.scheduler.model import TaskClass


def _valid(c) -> bool:
    try:
        v.check_constraint(c, "c")
        return True
    except (TypeError, ValueError, AttributeError):
        return False


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
