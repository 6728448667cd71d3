"""All or nothing: a call with one bad element raises ValueError and changes nothing.

A random valid state is built (hosts, placed and released tasks, a running task restored, a
host disabled), then one public call is made with a valid batch in which ONE element at a
random position is bad: a lone surrogate in any string, a NaN / infinite / negative / huge
number, an integer out of the native range, a duplicate or unknown id, a wrong type, a
malformed array. The call must raise ValueError naming the bad element, and afterwards every
read-only view, and the placements of a fixed probe batch, must be exactly those of an
untouched copy. The other implementation must refuse the same call with the same message.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task

from tests.conftest import SCHEDULER_CLASSES
from tests.scheduler import strategies as gen
from tests.scheduler.helpers import snapshot, summary

OTHER = {"engine": "reference", "reference": "engine"}
LONE = ("b\ud800", "\udc80", "zone\udfff")  # lone surrogates: no UTF-8 encoding
BAD_NUMBERS = (math.nan, math.inf, -math.inf, 1e999, -1, -0.5, 10**400)
WRONG_NUMBERS = ("1", None, [1], True)
BAD_COUNTS = (-1, 2**31, 2**63, 2**64)      # beyond int32 (and int64) or negative
BAD_PORTS = (-1, 65536, 2**31, 2**63)
BASE = ("cpus", "memory_mb", "disk_mb", "network_mbps")


@dataclasses.dataclass(frozen=True)
class Bad:
    """A call to refuse: method and arguments (printed when a case fails), where its message
    must start, and what else the error must be (TypeError for a wrong type, KeyError for an
    unknown id)."""

    method: str
    args: tuple
    where: str
    also: type | None = None

    def call(self, scheduler):
        return getattr(scheduler, self.method)(*self.args)


# --------------------------------------------------------------------------- the state
@st.composite
def recipes(draw):
    """How to build a state: options, hosts, tasks scheduled, some released, a running task
    restored (it may be refused), maybe a host disabled."""
    hosts = draw(gen.hosts(min_size=2, max_size=6))
    ids = [f"t{i}" for i in range(draw(st.integers(0, 10)))]
    tasks = draw(gen.some_tasks(ids)) if ids else []
    running = draw(gen.tasks(["run0"]))[0]
    return {
        "options": draw(gen.scheduler_options()), "hosts": hosts, "tasks": tasks,
        "released": draw(st.lists(st.sampled_from(ids), unique=True)) if ids else [],
        "running": running, "running_on": draw(st.sampled_from([h.id for h in hosts])),
        "disabled": draw(st.none() | st.sampled_from([h.id for h in hosts])),
    }


def build(impl: str, recipe: dict):
    """The state of ``recipe``, freshly built (the same every time)."""
    s = SCHEDULER_CLASSES[impl]()(**recipe["options"])
    s.add_hosts(recipe["hosts"])
    s.schedule(recipe["tasks"])
    for tid in recipe["released"]:
        if s.task_host(tid) is not None:
            s.release(tid)
    try:
        s.add_running(recipe["running"], recipe["running_on"])
    except ValueError:
        pass  # it did not fit: refused, as it would be anywhere
    if recipe["disabled"]:
        s.disable_host(recipe["disabled"])
    return s


def observe(s) -> dict:
    """Every read-only view: resources, hosts, held tasks, usage and free per host, enabled."""
    out = snapshot(s)
    out["live"] = len(s)
    out["enabled"] = {h: s.is_enabled(h) for h in s.host_ids if h is not None}
    return out


# A probe touching every part of the state: one zero-demand task per host (a host the engine
# held without knowing its id would take one), ports, resource sets, scalars, co-task
# constraints on the recipe's jobs, and group usage.
PROBE = (
    [Task(f"probe-spread{i}", job="probe", hard=[UniqueHostAttr()]) for i in range(8)]
    + [Task(f"probe-port{i}", cpus=0.25, ports=1 + i % 2, job="j1", soft=[BalancedHostAttr("zone", 3)])
       for i in range(4)]
    + [Task(f"probe-set{i}", cpus=0.1, resource_sets={"eni": "xyz"[i % 3], "efa": "x"}, job="j2",
            hard=[UniqueHostAttr("rack")] if i == 0 else []) for i in range(3)]
    + [Task(f"probe-gpu{i}", cpus=0.5, memory_mb=100, scalars={"gpu": 1}, group="g2") for i in range(2)]
    + [Task(f"probe-big{i}", cpus=2, memory_mb=1000, group="g1", job="j3") for i in range(3)]
)


# --------------------------------------------------------------------------- bad elements
def lone() -> st.SearchStrategy:
    """A string with a lone surrogate."""
    return st.sampled_from(LONE)


def bad_quantity() -> st.SearchStrategy:
    """(value, is a wrong type)."""
    return st.one_of(st.sampled_from(BAD_NUMBERS).map(lambda x: (x, None)),
                     st.sampled_from(WRONG_NUMBERS).map(lambda x: (x, TypeError)))


def bad_id(taken) -> st.SearchStrategy:
    """(an id no call may take, is a wrong type): lone surrogate, empty, not a string, taken."""
    options = [lone().map(lambda x: (x, None)), st.just(("", None)),
               st.sampled_from([5, None, b"h0"]).map(lambda x: (x, TypeError))]
    if taken:
        options.append(st.sampled_from(sorted(taken)).map(lambda x: (x, None)))
    return st.one_of(options)


@st.composite
def bad_host(draw, host: Host, taken_ids):
    """``host`` with one bad field: (Host, is a wrong type)."""
    field = draw(st.sampled_from(["id", "quantity", "scalars", "attributes", "ports", "sets"]))
    if field == "id":
        value, also = draw(bad_id(taken_ids))
        return dataclasses.replace(host, id=value), also
    if field == "quantity":
        value, also = draw(bad_quantity())
        return dataclasses.replace(host, **{draw(st.sampled_from(BASE)): value}), also
    if field == "scalars":
        value, also = draw(st.one_of(
            lone().map(lambda x: ({x: 1}, None)), st.just(({"cpus": 1}, None)), st.just(({5: 1}, TypeError)),
            bad_quantity().map(lambda q: ({"gpu": q[0]}, q[1]))))
        return dataclasses.replace(host, scalars=value), also
    if field == "attributes":
        value, also = draw(st.one_of(
            lone().map(lambda x: ({x: "a"}, None)), lone().map(lambda x: ({"zone": x}, None)),
            st.just(({"": "a"}, None)), st.sampled_from([None, 1.5, ("a",)]).map(lambda x: ({"zone": x}, TypeError)),
            st.just((["zone"], TypeError))))
        return dataclasses.replace(host, attributes=value), also
    if field == "ports":
        value, also = draw(st.one_of(
            st.sampled_from([(10, 5), (-1, 5), (1, 65536), (1, 2**31), (2**63, 2**63 + 1)]).map(
                lambda r: ([(80, 81), r], None)),
            st.sampled_from([[(1,)], [("1", "2")], [(1.0, 2.0)], 5, "80-90"]).map(lambda x: (x, TypeError))))
        return dataclasses.replace(host, ports=value), also
    value, also = draw(st.one_of(
        st.sampled_from([(0, 1), (1, 0), (-1, 1), (2**31, 1), (1, 2**31), (1, 2**63), (70000, 1)]).map(
            lambda shape: ({"eni": shape}, None)),
        lone().map(lambda x: ({x: (1, 1)}, None)),
        st.sampled_from([3, (1,), ("1", "1"), None]).map(lambda x: ({"eni": x}, TypeError))))
    return dataclasses.replace(host, resource_sets=value), also


def bad_constraints() -> st.SearchStrategy:
    """(constraint list, is a wrong type)."""
    return st.one_of(
        lone().map(lambda x: ([HostAttrValue("zone", x)], None)),
        lone().map(lambda x: ([UniqueHostAttr(x)], None)),
        lone().map(lambda x: ([BalancedHostAttr(x, 2)], None)),
        st.sampled_from([0, -1, 2**31, 2**63]).map(lambda k: ([BalancedHostAttr("zone", k)], None)),
        st.just(([HostAttrValue("zone")], None)), st.just(([UniqueHostAttr("")], None)),
        st.sampled_from([["zone"], None, "zone", [HostAttrValue("zone", 1.5)], [UniqueHostAttr], [None],
                         [BalancedHostAttr("zone", "2")]]).map(lambda x: (x, TypeError)),
    )


@st.composite
def bad_shape(draw, item):
    """A Task or TaskClass with one bad job / group / constraint / ports / resource-set field."""
    field = draw(st.sampled_from(["job", "group", "hard", "soft", "ports", "resource_sets"]))
    if field in ("job", "group"):
        value, also = draw(st.one_of(lone().map(lambda x: (x, None)), st.just(("", None)),
                                     st.sampled_from([5, b"j"]).map(lambda x: (x, TypeError))))
    elif field in ("hard", "soft"):
        value, also = draw(bad_constraints())
    elif field == "ports":
        value, also = draw(st.one_of(st.sampled_from(BAD_COUNTS).map(lambda x: (x, None)),
                                     st.sampled_from(["1", 1.0, None]).map(lambda x: (x, TypeError))))
    else:
        value, also = draw(st.one_of(
            lone().map(lambda x: ({"eni": x}, None)), lone().map(lambda x: ({x: "x"}, None)),
            st.just(({"eni": ""}, None)), st.sampled_from([{"eni": 5}, ["eni"]]).map(lambda x: (x, TypeError))))
    return dataclasses.replace(item, **{field: value}), also


@st.composite
def bad_task(draw, task: Task, taken_ids):
    """``task`` with one bad field: (Task, is a wrong type)."""
    field = draw(st.sampled_from(["id", "quantity", "scalars", "shape"]))
    if field == "id":
        value, also = draw(bad_id(taken_ids))
        return dataclasses.replace(task, id=value), also
    if field == "quantity":
        value, also = draw(bad_quantity())
        return dataclasses.replace(task, **{draw(st.sampled_from(BASE)): value}), also
    if field == "scalars":
        value, also = draw(st.one_of(
            lone().map(lambda x: ({x: 1}, None)), st.just(({"memory_mb": 1}, None)),
            bad_quantity().map(lambda q: ({"gpu": q[0]}, q[1])),
            bad_quantity().map(lambda q: ({"tpu": q[0]}, q[1]))))
        return dataclasses.replace(task, scalars=value), also
    return draw(bad_shape(task))


def inject(items: list, pos: int, bad) -> list:
    """``items`` with the one at ``pos`` replaced by ``bad``."""
    return items[:pos] + [bad] + items[pos + 1:]


# --------------------------------------------------------------------------- bad calls
@st.composite
def bad_add_hosts(draw, s):
    new = draw(gen.hosts(id_prefix="new", max_size=4))
    pos = draw(st.integers(0, len(new) - 1))
    taken = {h for h in s.host_ids if h is not None} | {h.id for h in new[:pos]}
    host, also = draw(bad_host(new[pos], taken))
    if draw(st.integers(0, 9)) == 0:
        host, also = Task("not a host"), TypeError
    hosts = inject(new, pos, host)
    return Bad("add_hosts", (hosts,), f"hosts[{pos}]", also)


@st.composite
def bad_schedule(draw, s):
    ids = [f"new{i}" for i in range(draw(st.integers(1, 5)))]
    new = draw(gen.some_tasks(ids))
    pos = draw(st.integers(0, len(new) - 1))
    task, also = draw(bad_task(new[pos], set(s.held_tasks()) | set(ids[:pos])))
    tasks = inject(new, pos, task)
    return Bad("schedule", (tasks,), f"tasks[{pos}]", also)


@st.composite
def bad_add_running(draw, s):
    live = [h for h in s.host_ids if h is not None]
    task = Task("new-run", ports=draw(st.sampled_from([0, 1, 2])))
    host = draw(st.sampled_from(live))
    kind = draw(st.sampled_from(["task", "host", "ports", "overcommit"]))
    if kind == "task":
        bad, also = draw(bad_task(task, set(s.held_tasks())))
        return Bad("add_running", (bad, host), "add_running: task", also)
    if kind == "host":
        name = draw(st.sampled_from(["nope", *LONE, 5, None, ("h0",)]))
        return Bad("add_running", (task, name), "unknown host id", KeyError)
    if kind == "overcommit":
        big = dataclasses.replace(task, **{draw(st.sampled_from(BASE)): 1e12})
        return Bad("add_running", (big, host), "add_running: task 'new-run' does not fit")
    n = task.ports
    ports = list(range(100, 100 + n))
    choice = draw(st.sampled_from(["value", "type", "count", "twice"] if n == 2 else ["value", "type", "count"]))
    if choice == "count":
        return Bad("add_running", (task, host, ports + [200]), "add_running: ports:")
    if choice == "twice":
        return Bad("add_running", (task, host, [100, 100]), "add_running: ports[1]")
    pos = draw(st.integers(0, max(n - 1, 0)))
    if choice == "value":
        value, also = draw(st.sampled_from(BAD_PORTS)), None
    else:
        value, also = draw(st.sampled_from(["80", 80.0, None, True])), TypeError
    bad_ports = inject(ports, pos, value) if n else [value]
    task1 = task if n else dataclasses.replace(task, ports=1)
    return Bad("add_running", (task1, host, bad_ports), f"add_running: ports[{pos}]", also)


def array_batch(s, tasks):
    """Valid demand, task_class and classes for ``tasks`` over the scheduler's resources."""
    cols = list(s.resources)
    demand = np.array([[getattr(t, r) if r in BASE else t.scalars.get(r, 0) for r in cols] for t in tasks],
                      dtype=np.float64)
    classes = [gen.task_class_of(t) for t in tasks]
    return demand, np.arange(len(tasks), dtype=np.int32), classes


@st.composite
def bad_schedule_arrays(draw, s):
    n = draw(st.integers(1, 5))
    ids = [f"new{i}" for i in range(n)]
    demand, tc, classes = array_batch(s, draw(gen.some_tasks(ids)))
    task_ids = ids if draw(st.booleans()) else None
    pos = draw(st.integers(0, n - 1))
    R = demand.shape[1]
    kind = draw(st.sampled_from(["cell", "demand", "row", "task_class", "class", "task_id"]))
    also, where = None, None
    if kind == "cell":
        col = draw(st.integers(0, R - 1))
        demand = demand.copy()
        demand[pos, col] = draw(st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300]))
        where = f"demand[{pos}, {col}]"
    elif kind == "demand":
        demand, also = draw(st.sampled_from([
            (np.ones((n, R + 1)), None), (np.ones((n, R - 1)), None), (np.ones(R), None),
            (np.ones((n, R, 1)), None), ([[1.0] * R, [1.0]] * n, None),
            (np.ones((n, R), dtype=bool), TypeError), (np.ones((n, R), dtype=complex), TypeError),
            (np.array([["1"] * R] * n, dtype=object), TypeError), (None, TypeError)]))
        where = "demand"
    elif kind == "row":  # task_class and demand disagree on the number of rows
        tc = np.arange(n + 1, dtype=np.int32) % n
        where = "task_class"
    elif kind == "task_class":
        value = draw(st.sampled_from([-1, n, 2**31, 2**40]))
        tc = tc.astype(np.int64)
        tc[pos] = value
        where = f"task_class[{pos}]"
        if draw(st.booleans()):  # or the wrong dtype altogether
            tc, also, where = tc.astype(np.float64), TypeError, "task_class"
    elif kind == "class":
        bad, also = draw(bad_shape(classes[pos]))
        if draw(st.integers(0, 4)) == 0:
            bad, also = Task("x"), TypeError
        classes = inject(classes, pos, bad)
        where = f"classes[{pos}]"
    else:
        held = set(s.held_tasks())
        value, also = draw(bad_id(held | set(ids[:pos])))
        task_ids = inject(ids, pos, value)
        where = f"task_ids[{pos}]"
        if draw(st.integers(0, 5)) == 0:
            task_ids, also, where = ids + ["extra"], None, "task_ids"
    return Bad("schedule_arrays", (demand, tc, classes, task_ids), where, also)


@st.composite
def bad_release(draw, s):
    name = draw(st.sampled_from(["nope", *LONE, 5, None, ["t0"], ("anon", 1)]))
    return Bad("release", (name,), "unknown task id", KeyError)


@st.composite
def bad_host_call(draw, s):
    """remove_host / disable_host / enable_host of a host that is not there."""
    method = draw(st.sampled_from(["remove_host", "disable_host", "enable_host"]))
    name = draw(st.sampled_from(["nope", *LONE, 5, None, ["h0"]]))
    return Bad(method, (name,), "unknown host id", KeyError)


@st.composite
def bad_remove_hosts(draw, s):
    live = [h for h in s.host_ids if h is not None]
    ids = draw(st.lists(st.sampled_from(live), min_size=1, unique=True))
    pos = draw(st.integers(0, len(ids)))
    choices = ["nope", *LONE, 5, None]
    value = draw(st.sampled_from(choices + ids[:pos]))  # unknown, or named twice
    also = None if value in ids[:pos] else KeyError
    if draw(st.integers(0, 9)) == 0:
        return Bad("remove_hosts", ("h0",), "host_ids", TypeError)
    batch = ids[:pos] + [value] + ids[pos:]
    return Bad("remove_hosts", (batch,), f"host_ids[{pos}]", also)


@st.composite
def bad_group_limits(draw, s):
    good = {"g1": {"cpus": 2.0}, "g2": {"memory_mb": 512, "gpu": 1}}
    kind = draw(st.sampled_from(["group", "resource", "value", "shape"]))
    also = None
    if kind == "group":
        key, also = draw(bad_id(set()))
        limits = {**good, key: {"cpus": 1}}
    elif kind == "resource":
        key, also = draw(bad_id(set()))
        limits = {**good, "g1": {"cpus": 2.0, key: 1}}
    elif kind == "value":
        value, also = draw(bad_quantity())
        limits = {**good, "g2": {"memory_mb": value}}
    else:
        limits, also = draw(st.sampled_from([{**good, "g1": 5}, {**good, "g1": [("cpus", 1)]}, ["g1"], "g1"])), TypeError
    return Bad("set_group_limits", (limits,), "group_limits", also)


BAD_CALLS = {
    "add_hosts": bad_add_hosts, "schedule": bad_schedule, "schedule_arrays": bad_schedule_arrays,
    "add_running": bad_add_running, "release": bad_release, "host_call": bad_host_call,
    "remove_hosts": bad_remove_hosts, "set_group_limits": bad_group_limits,
}


# --------------------------------------------------------------------------- the property
def refused(s, bad: Bad) -> ValueError:
    with pytest.raises(ValueError) as err:
        bad.call(s)
    exc = err.value
    assert str(exc).startswith(bad.where), f"{exc!s} should start with {bad.where!r}"
    if bad.also is not None:
        assert isinstance(exc, bad.also), f"{type(exc).__name__} is not a {bad.also.__name__}"
    return exc


@pytest.mark.parametrize("api", sorted(BAD_CALLS))
@pytest.mark.parametrize("impl", ["engine", "reference"])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_call_with_one_bad_element_changes_nothing(impl, api, data):
    recipe = data.draw(recipes(), label="recipe")
    s = build(impl, recipe)
    bad = data.draw(BAD_CALLS[api](s), label="bad call")
    before = observe(s)
    exc = refused(s, bad)
    assert observe(s) == before
    untouched = build(impl, recipe)
    assert summary(s.schedule(PROBE)) == summary(untouched.schedule(PROBE))
    assert observe(s) == observe(untouched)
    # The other implementation refuses the same call with the same error and message.
    other = refused(build(OTHER[impl], recipe), bad)
    assert (type(other), str(other)) == (type(exc), str(exc))


# --------------------------------------------------------------------------- the known cases
@pytest.mark.parametrize("impl", ["engine", "reference"])
def test_a_host_id_with_a_lone_surrogate_adds_no_host(impl):
    s = SCHEDULER_CLASSES[impl]()()
    s.add_hosts([Host("keep", cpus=1)])
    with pytest.raises(ValueError) as err:
        s.add_hosts([Host("a", cpus=1), Host("b\ud800", cpus=1)])
    assert str(err.value) == "hosts[1].id: 'b\\ud800' is not encodable as UTF-8 (lone surrogate)"
    assert (s.host_ids, len(s)) == (["keep"], 1)
    with pytest.raises(KeyError):
        s.remove_host("a")
    s.add_hosts([Host("a", cpus=1)])  # a clean retry is taken
    assert s.remove_host("a") == [] and s.host_ids == ["keep", None]


@pytest.mark.parametrize("impl", ["engine", "reference"])
@pytest.mark.parametrize("port", [2**31, 2**63, -1, 65536])
def test_a_running_task_on_a_port_out_of_range_is_refused(impl, port):
    s = SCHEDULER_CLASSES[impl]()()
    s.add_hosts([Host("h", cpus=1, ports=[(100, 110)])])
    with pytest.raises(ValueError) as err:
        s.add_running(Task("t", ports=1), "h", ports=[port])
    assert str(err.value) == f"add_running: ports[0]: must be an integer in 0..65535, got {port}"
    assert s.held_tasks() == {} and s.host_usage("h")["cpus"] == 0
    s.add_running(Task("t", ports=1), "h", ports=[105])
    assert s.schedule([Task("u", ports=1)]).ports == {"u": [100]}


@pytest.mark.parametrize("impl", ["engine", "reference"])
def test_remove_hosts_is_all_or_nothing(impl):
    s = SCHEDULER_CLASSES[impl]()()
    s.add_hosts([Host(f"h{i}", cpus=1) for i in range(3)])
    s.schedule([Task("t", cpus=1, hard=[HostAttrValue("hostname", "h1")])])
    with pytest.raises(KeyError, match=r"host_ids\[2\]: unknown host id 'nope'"):
        s.remove_hosts(["h0", "h1", "nope"])
    with pytest.raises(ValueError, match=r"host_ids\[1\]: duplicate host id 'h0' \(host_ids\[0\] has it\)"):
        s.remove_hosts(["h0", "h0"])
    assert s.host_ids == ["h0", "h1", "h2"] and s.held_tasks() == {"t": "h1"}
    assert s.remove_hosts(["h1", "h0"]) == ["t"]
    assert s.host_ids == [None, None, "h2"]
