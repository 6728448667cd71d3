"""Differential test: the native engine and the reference twin agree on random call sequences.

Random clusters (heterogeneous hosts, zones, racks, ports, gpus, resource sets), random tasks
(jobs, groups, hard and soft constraints), random fitness / good_enough / group limits / seed,
then a random sequence of schedule, schedule_arrays, release, add_running, add/remove/disable/
enable host and reset calls. After every call both must have returned the same thing (or
raised the same error type) and show the same state.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titus.scheduler.model import Task

from tests.conftest import engine_class, reference_class
from tests.scheduler import strategies as gen
from tests.scheduler.helpers import held_ids, plain, snapshot, summary

# Passing runs take seconds; a failing one may shrink for up to 5 minutes before it reports
# the minimal case, which is worth the wait.
pytestmark = pytest.mark.timeout(900)

OPERATIONS = ["schedule"] * 4 + ["schedule_arrays"] * 2 + ["release"] * 2 + [
    "add_running", "add_hosts", "remove_host", "disable_host", "enable_host", "reset",
    "schedule_gangs", "schedule_gangs", "arrays_gangs", "set_eviction_quota"]


def outcome(scheduler, method, *args, **kwargs):
    """What a call gives, as comparable data: ("ok", value) or ("raised", error type)."""
    try:
        value = getattr(scheduler, method)(*args, **kwargs)
    except (ValueError, TypeError, KeyError) as exc:
        return ("raised", type(exc).__name__)
    if hasattr(value, "assignments"):
        return ("ok", summary(value))
    return ("ok", plain(value))


class Pair:
    """The engine and the twin, driven through the same calls and compared after each."""

    def __init__(self, options):
        self.engine = engine_class()(**options)
        self.twin = reference_class()(**options)
        self.log = []
        self.hosts = {}  # every Host ever added, by id (for port ranges)

    def call(self, method, *args, **kwargs):
        self.log.append((method, args, kwargs))
        if method == "add_hosts":
            self.hosts.update({h.id: h for h in args[0]})
        got = outcome(self.engine, method, *args, **kwargs)
        want = outcome(self.twin, method, *args, **kwargs)
        assert got == want, f"{method} differs after {len(self.log)} calls"
        assert snapshot(self.engine) == snapshot(self.twin), f"state differs after {method}"
        return want

    def live_hosts(self):
        """Ids of the hosts not removed."""
        return [h for h in self.twin.host_ids if h is not None]


def array_inputs(tasks, resources):
    """demand, task_class and classes for ``tasks``; a task's scalar with no column is dropped."""
    demand = np.array([[t.cpus, t.memory_mb, t.disk_mb, t.network_mbps,
                        *[t.scalars.get(name, 0) for name in resources[4:]]] for t in tasks],
                      dtype=np.float64).reshape(len(tasks), len(resources))
    classes = [gen.task_class_of(t) for t in tasks]
    return demand, np.arange(len(tasks), dtype=np.int32), classes


def step(pair: Pair, data, fresh_ids, round_no: int) -> None:
    """Draw one operation and run it on both."""
    live = pair.live_hosts()
    op = data.draw(st.sampled_from(OPERATIONS), label="op")
    if op == "schedule":
        ids = [next(fresh_ids) for _ in range(data.draw(st.integers(1, 10)))]
        pair.call("schedule", data.draw(gen.some_tasks(ids)))
    elif op == "schedule_arrays":
        ids = [next(fresh_ids) for _ in range(data.draw(st.integers(1, 10)))]
        tasks = data.draw(gen.some_tasks(ids))
        demand, task_class, classes = array_inputs(tasks, pair.twin.resources)
        named = data.draw(st.booleans())
        pair.call("schedule_arrays", demand, task_class, classes, task_ids=ids if named else None)
    elif op == "schedule_gangs":
        ids = [next(fresh_ids) for _ in range(data.draw(st.integers(1, 10)))]
        pair.call("schedule", data.draw(gen.gang_tasks(ids)), preempt=data.draw(st.booleans()))
    elif op == "arrays_gangs":
        ids = [next(fresh_ids) for _ in range(data.draw(st.integers(1, 10)))]
        tasks = data.draw(gen.gang_tasks(ids))
        demand, task_class, _ = array_inputs(tasks, pair.twin.resources)
        classes = [gen.gang_class_of(t, data.draw(st.booleans())) for t in tasks]
        # rows of one class share it: a gang class covers several rows
        task_class = np.array([data.draw(st.integers(0, i)) for i in range(len(tasks))], dtype=np.int32)
        named = data.draw(st.booleans())
        pair.call("schedule_arrays", demand, task_class, classes, task_ids=ids if named else None,
                  explain=data.draw(st.booleans()), preempt=data.draw(st.booleans()))
    elif op == "set_eviction_quota":
        pair.call("set_eviction_quota", data.draw(st.sampled_from(gen.JOBS[1:])),
                  data.draw(st.sampled_from([None, 0, 1, 2, 5])))
    elif op == "release" and held_ids(pair.twin):
        pair.call("release", data.draw(st.sampled_from(held_ids(pair.twin))))
    elif op == "add_running" and live:
        task = data.draw(gen.gang_tasks([next(fresh_ids)]))[0]
        host = data.draw(st.sampled_from(live))
        ports = None
        if task.ports and data.draw(st.booleans()):
            # Name the ports it holds; they may be taken already (then both must refuse).
            offered = sorted({p for lo, hi in pair.hosts[host].ports for p in range(lo, hi + 1)} | {9})
            ports = data.draw(st.lists(st.sampled_from(offered), min_size=task.ports, max_size=task.ports))
        pair.call("add_running", task, host, ports=ports)
    elif op == "add_hosts":
        new = data.draw(gen.hosts(id_prefix=f"n{round_no}-", max_size=3))
        pair.call("add_hosts", new)
    elif op in ("remove_host", "disable_host", "enable_host") and live:
        pair.call(op, data.draw(st.sampled_from(live)))
    elif op == "reset" and data.draw(st.integers(0, 3)) == 0:
        pair.call("reset")


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_engine_and_twin_agree_on_random_call_sequences(data):
    options = data.draw(gen.scheduler_options(), label="options")
    pair = Pair(options)
    pair.call("add_hosts", data.draw(gen.hosts(), label="hosts"))
    fresh_ids = (f"t{i}" for i in itertools.count())
    for round_no in range(data.draw(st.integers(1, 8), label="steps")):
        step(pair, data, fresh_ids, round_no)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_engine_and_twin_agree_on_larger_batches(data):
    options = data.draw(gen.scheduler_options(), label="options")
    pair = Pair(options)
    cluster = data.draw(gen.hosts(max_size=30), label="hosts")
    pair.call("add_hosts", cluster)
    ids = [f"t{i}" for i in range(data.draw(st.integers(10, 60)))]
    pair.call("schedule", data.draw(gen.some_tasks(ids), label="tasks"))
    for tid in ids[::3]:
        if tid in held_ids(pair.twin):
            pair.call("release", tid)
    more = [f"u{i}" for i in range(20)]
    pair.call("schedule", data.draw(gen.some_tasks(more), label="more"))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_engine_and_twin_agree_on_near_ties(data):
    # Near-identical hosts and repeated identical tasks: the choice hangs on tiny score gaps.
    options = data.draw(gen.scheduler_options(), label="options")
    pair = Pair(options)
    cluster = data.draw(gen.near_twin_hosts(), label="hosts")
    pair.call("add_hosts", cluster)
    shape = data.draw(gen.task_shapes(), label="shape")
    demand = data.draw(gen.demands(), label="demand")
    batch = [Task(f"t{i}", **demand, **shape) for i in range(data.draw(st.integers(1, 25)))]
    pair.call("schedule", batch)
    pair.call("schedule", data.draw(gen.tasks([f"u{i}" for i in range(10)]), label="mixed"))


@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_engine_and_twin_report_the_same_failures(data):
    # Crowded clusters with many hard constraints: most tasks fail, for many reasons.
    options = data.draw(gen.scheduler_options(), label="options")
    pair = Pair(options)
    cluster = data.draw(gen.hosts(max_size=12), label="hosts")
    pair.call("add_hosts", cluster)
    live = [h.id for h in cluster]
    if data.draw(st.booleans()):
        pair.call("disable_host", data.draw(st.sampled_from(live)))
    tasks = []
    for i in range(data.draw(st.integers(1, 12))):
        task = data.draw(gen.tasks([f"t{i}"]))[0]
        hard = data.draw(st.lists(gen.constraints(), min_size=1, max_size=3))
        tasks.append(Task(**{**task.__dict__, "hard": hard, "cpus": task.cpus * 4}))
    pair.call("schedule", tasks)
