"""Bad input is refused with an error naming the field, and a refused call changes nothing.

Each case runs one bad call on a scheduler that already holds tasks, then checks that every
read-only view is as before and that a follow-up schedule places exactly as on a fresh
scheduler that never saw the bad call.
"""
import math

import numpy as np
import pytest

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass

from tests.conftest import reference_class
from tests.scheduler.helpers import snapshot, summary

NAN, INF = math.nan, math.inf
VALUE_OR_TYPE = (ValueError, TypeError)


def build(make_scheduler):
    """A small cluster holding a few tasks, the same every time."""
    hosts = [Host(f"h{i}", cpus=8, memory_mb=8000, ports=[(100, 103)], scalars={"gpu": 2},
                  resource_sets={"eni": (2, 2)}, attributes={"zone": "ab"[i % 2]}) for i in range(3)]
    s = make_scheduler(hosts, group_limits={"g": {"cpus": 6}})
    s.schedule([Task(f"held-{i}", cpus=2, memory_mb=500, ports=1, job="j", group="g",
                     resource_sets={"eni": "sg"}, hard=[UniqueHostAttr()]) for i in range(2)])
    return s


FOLLOW_UP = [Task(f"next-{i}", cpus=1.5, memory_mb=700, ports=1, scalars={"gpu": 1}, job="j", group="g",
                  resource_sets={"eni": "sg2"}, soft=[BalancedHostAttr("zone", 2)]) for i in range(5)]


def host(**kw):
    return Host("new", cpus=kw.pop("cpus", 4), **kw)


def task(**kw):
    return Task("new", cpus=kw.pop("cpus", 1), **kw)


def arrays(demand=None, task_class=None, classes=None, **kw):
    """A schedule_arrays call; defaults are valid for the 5 resources of ``build``."""
    demand = np.ones((2, 5)) if demand is None else demand
    task_class = np.zeros(2, dtype=np.int32) if task_class is None else task_class
    classes = [TaskClass(job="j")] if classes is None else classes
    return lambda s: s.schedule_arrays(demand, task_class, classes, **kw)


CASES = {
    # hosts: quantities
    "host negative cpus": (lambda s: s.add_hosts([host(cpus=-1)]), ValueError, "cpus"),
    "host nan memory": (lambda s: s.add_hosts([host(memory_mb=NAN)]), ValueError, "memory_mb"),
    "host inf disk": (lambda s: s.add_hosts([host(disk_mb=INF)]), ValueError, "disk_mb"),
    "host negative network": (lambda s: s.add_hosts([host(network_mbps=-0.5)]), ValueError, "network_mbps"),
    "host negative scalar": (lambda s: s.add_hosts([host(scalars={"gpu": -1})]), ValueError, "gpu"),
    "host nan scalar": (lambda s: s.add_hosts([host(scalars={"fpga": NAN})]), ValueError, "fpga"),
    "host string cpus": (lambda s: s.add_hosts([host(cpus="4")]), TypeError, "cpus"),
    "host port range reversed": (lambda s: s.add_hosts([host(ports=[(10, 5)])]), ValueError, "port"),
    "host port out of range": (lambda s: s.add_hosts([host(ports=[(0, 70000)])]), ValueError, "port"),
    "host empty resource set": (lambda s: s.add_hosts([host(resource_sets={"eni": (0, 2)})]), ValueError, "eni"),
    "host zero slots": (lambda s: s.add_hosts([host(resource_sets={"eni": (2, 0)})]), ValueError, "eni"),
    "host batch with one bad": (lambda s: s.add_hosts([Host("ok", cpus=1), Host("bad", cpus=-1)]),
                                ValueError, "cpus"),
    # hosts: ids
    "host id twice in batch": (lambda s: s.add_hosts([Host("dup", cpus=1), Host("dup", cpus=1)]),
                               ValueError, "dup"),
    "host id already known": (lambda s: s.add_hosts([Host("h1", cpus=1)]), ValueError, "h1"),
    "host id empty": (lambda s: s.add_hosts([Host("", cpus=1)]), ValueError, "id"),
    # tasks: quantities
    "task negative cpus": (lambda s: s.schedule([task(cpus=-1)]), ValueError, "cpus"),
    "task nan memory": (lambda s: s.schedule([task(memory_mb=NAN)]), ValueError, "memory_mb"),
    "task inf disk": (lambda s: s.schedule([task(disk_mb=INF)]), ValueError, "disk_mb"),
    "task -inf network": (lambda s: s.schedule([task(network_mbps=-INF)]), ValueError, "network_mbps"),
    "task inf scalar": (lambda s: s.schedule([task(scalars={"gpu": INF})]), ValueError, "gpu"),
    "task negative new scalar": (lambda s: s.schedule([task(scalars={"tpu": -2})]), ValueError, "tpu"),
    "task negative ports": (lambda s: s.schedule([task(ports=-1)]), ValueError, "ports"),
    "task string cpus": (lambda s: s.schedule([task(cpus="1")]), TypeError, "cpus"),
    "task batch bad last": (lambda s: s.schedule([Task("ok", cpus=1), Task("bad", cpus=NAN)]),
                            ValueError, "cpus"),
    # tasks: ids
    "task id twice in batch": (lambda s: s.schedule([Task("dup"), Task("dup")]), ValueError, "dup"),
    "task id already held": (lambda s: s.schedule([Task("fresh"), Task("held-1")]), ValueError, "held-1"),
    "task id empty": (lambda s: s.schedule([Task("")]), ValueError, "id"),
    # tasks: constraints
    "HostAttrValue empty attr": (lambda s: s.schedule([task(hard=[HostAttrValue("", "a")])]),
                                 VALUE_OR_TYPE, "HostAttrValue"),
    "HostAttrValue no values": (lambda s: s.schedule([task(hard=[HostAttrValue("zone")])]),
                                VALUE_OR_TYPE, "HostAttrValue"),
    "UniqueHostAttr empty attr": (lambda s: s.schedule([task(soft=[UniqueHostAttr("")])]),
                                  VALUE_OR_TYPE, "UniqueHostAttr"),
    "Balanced expected 0": (lambda s: s.schedule([task(hard=[BalancedHostAttr("zone", 0)])]),
                            VALUE_OR_TYPE, "expected_values"),
    "Balanced expected -1 soft": (lambda s: s.schedule([task(soft=[BalancedHostAttr("zone", -1)])]),
                                  VALUE_OR_TYPE, "expected_values"),
    "Balanced empty attr": (lambda s: s.schedule([task(hard=[BalancedHostAttr("", 2)])]),
                            VALUE_OR_TYPE, "BalancedHostAttr"),
    "string in hard list": (lambda s: s.schedule([task(hard=[UniqueHostAttr(), "zone"])]),
                            VALUE_OR_TYPE, "hard"),
    "number in soft list": (lambda s: s.schedule([task(soft=[42])]), VALUE_OR_TYPE, "soft"),
    "hard not a list": (lambda s: s.schedule([task(hard="zone")]), VALUE_OR_TYPE, "hard"),
    "constraint class not instance": (lambda s: s.schedule([task(hard=[ExclusiveHost])]),
                                      VALUE_OR_TYPE, "hard"),
    "empty resource set label": (lambda s: s.schedule([task(resource_sets={"eni": ""})]),
                                 VALUE_OR_TYPE, "eni"),
    # unknown ids
    "release unknown": (lambda s: s.release("nope"), KeyError, "nope"),
    "remove unknown host": (lambda s: s.remove_host("nope"), KeyError, "nope"),
    "disable unknown host": (lambda s: s.disable_host("nope"), KeyError, "nope"),
    "enable unknown host": (lambda s: s.enable_host("nope"), KeyError, "nope"),
    "host_usage unknown host": (lambda s: s.host_usage("nope"), KeyError, "nope"),
    "add_running unknown host": (lambda s: s.add_running(Task("new"), "nope"), KeyError, "nope"),
    # add_running
    "add_running held id": (lambda s: s.add_running(Task("held-0"), "h2"), ValueError, "held-0"),
    "add_running nan cpus": (lambda s: s.add_running(task(cpus=NAN), "h2"), ValueError, "cpus"),
    "add_running over cpus": (lambda s: s.add_running(task(cpus=7), s.task_host("held-0")),
                              ValueError, "cpus"),
    "add_running over gpu": (lambda s: s.add_running(task(scalars={"gpu": 3}), "h2"), ValueError, "gpu"),
    "add_running taken port": (lambda s: s.add_running(task(ports=1), s.task_host("held-0"), ports=[100]),
                               ValueError, "100"),
    # arrays
    "demand wrong columns": (arrays(demand=np.ones((2, 3))), ValueError, "demand"),
    "demand one-dimensional": (arrays(demand=np.ones(5), task_class=np.zeros(5, np.int32)),
                               ValueError, "demand"),
    "demand three-dimensional": (arrays(demand=np.ones((2, 5, 1))), ValueError, "demand"),
    "demand nan": (arrays(demand=np.array([[1, 1, 0, 0, 0], [NAN, 1, 0, 0, 0]])), ValueError, "demand"),
    "demand negative": (arrays(demand=np.array([[1, 1, 0, 0, 0], [1, -1, 0, 0, 0]])), ValueError, "demand"),
    "demand inf": (arrays(demand=np.array([[1, 1, 0, 0, INF], [1, 1, 0, 0, 0]])), ValueError, "demand"),
    "demand strings": (arrays(demand=np.array([["a"] * 5] * 2, dtype=object)), VALUE_OR_TYPE, "demand"),
    "task_class too short": (arrays(task_class=np.zeros(1, np.int32)), ValueError, "task_class"),
    "task_class two-dimensional": (arrays(task_class=np.zeros((2, 1), np.int32)), ValueError, "task_class"),
    "task_class out of range": (arrays(task_class=np.array([0, 1], np.int32)), ValueError, "task_class"),
    "task_class negative": (arrays(task_class=np.array([0, -1], np.int32)), ValueError, "task_class"),
    "task_class floats": (arrays(task_class=np.array([0.0, 0.5])), VALUE_OR_TYPE, "task_class"),
    "class not a TaskClass": (arrays(classes=[Task("x")]), VALUE_OR_TYPE, "classes"),
    "class bad constraint": (arrays(classes=[TaskClass(hard=[BalancedHostAttr("zone", 0)])]),
                             VALUE_OR_TYPE, "expected_values"),
    "class negative ports": (arrays(classes=[TaskClass(ports=-1)]), ValueError, "ports"),
    "task_ids duplicate": (arrays(task_ids=["a", "a"]), ValueError, "'a'"),
    "task_ids held": (arrays(task_ids=["a", "held-0"]), ValueError, "held-0"),
    "task_ids wrong length": (arrays(task_ids=["a"]), ValueError, "task_ids"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_call_is_refused_and_changes_nothing(make_scheduler, case):
    call, error, field = CASES[case]
    s = build(make_scheduler)
    before = snapshot(s)
    with pytest.raises(error, match=field):
        call(s)
    assert snapshot(s) == before
    after = summary(s.schedule(FOLLOW_UP))
    fresh = build(make_scheduler)
    assert after == summary(fresh.schedule(FOLLOW_UP))
    assert snapshot(s) == snapshot(fresh)
    # And the same as the reference twin that never saw the bad call.
    twin = build(lambda hosts, **options: make_reference(hosts, **options))
    assert after == summary(twin.schedule(FOLLOW_UP))


def make_reference(hosts, **options):
    """A reference twin with ``hosts`` added."""
    twin = reference_class()(**options)
    twin.add_hosts(list(hosts))
    return twin


@pytest.mark.parametrize("options, field", [
    ({"fitness": "nope"}, "nope"),
    ({"fitness": {"cpu_binpack": 1, "bogus_spread": 1}}, "bogus_spread"),
    ({"fitness": {"cpu_binpack": -1}}, "cpu_binpack"),
    ({"fitness": {"cpu_binpack": NAN}}, "cpu_binpack"),
    ({"fitness": {"cpu_binpack": 0, "memory_spread": 0}}, "fitness"),
    ({"group_limits": {"g": {"cpus": -1}}}, "cpus"),
    ({"group_limits": {"g": {"memory_mb": NAN}}}, "memory_mb"),
    ({"good_enough": NAN}, "good_enough"),
])
def test_bad_options_are_refused(scheduler_cls, options, field):
    with pytest.raises(VALUE_OR_TYPE, match=field):
        scheduler_cls(**options)


def test_a_refused_add_running_keeps_ports_and_sets(make_scheduler):
    s = build(make_scheduler)
    before = snapshot(s)
    with pytest.raises(ValueError):
        s.add_running(Task("x", ports=2, resource_sets={"eni": "other"}), s.task_host("held-0"), ports=[101, 100])
    with pytest.raises(ValueError):
        s.add_running(Task("y", ports=5), "h2")
    assert snapshot(s) == before
