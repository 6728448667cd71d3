"""The engine's index never changes a placement, also where one bucket holds so many host classes
that its chunks form several groups sharing a room bound (host_groups.hpp): the engine with its
index, the engine scanning every host (``index=False``) and the reference twin place alike,
through runs of equal demands (a scarce second resource, so that whole groups are passed),
releases, gangs, preemption, host removals and a new resource column; and once every task is
gone every host holds exactly nothing."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from titus import Scheduler
from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.reference import ReferenceScheduler

from tests.scheduler.helpers import snapshot, summary

pytestmark = pytest.mark.timeout(300)

CPUS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 0.5, 7.5, 96]
MEMORY = [512, 1024, 2048, 4096, 8192, 16384, 32768, 1000.5, 65536]
FITNESS = ["cpu_binpack", "memory_binpack", "cpu_mem_binpack", "cpu_mem_spread", "cpu_mem_fewest_hosts",
           {"cpu_binpack": 2, "memory_spread": 1}]
RUN_CPUS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 16]
RUN_MEMORY = [0, 256, 1024, 4096, 8192, 20000, 40000]  # the last ones fit few hosts: groups are passed

host_shapes = st.tuples(st.sampled_from(CPUS), st.sampled_from(MEMORY), st.sampled_from([0, 1000, 10000]),
                        st.sampled_from([0, 0, 0, 1, 4]))
constraint_sets = st.sampled_from([
    ((), ()), ((), ()), ((), ()), ((UniqueHostAttr("hostname"),), ()), ((ExclusiveHost(),), ()),
    ((), (BalancedHostAttr("rack", 2),)), ((HostAttrValue("rack", "r1"),), ())])
runs = st.tuples(st.sampled_from(RUN_CPUS), st.sampled_from(RUN_MEMORY), st.integers(1, 25),
                 st.sampled_from([None, "j1", "j2"]), st.sampled_from([-1, 0, 0, 1, 2]), constraint_sets,
                 st.sampled_from([0, 0, 0, 1]))
operations = st.one_of(
    st.tuples(st.just("schedule"), runs, st.booleans(), st.booleans()),
    st.tuples(st.just("arrays"), runs, st.booleans(), st.booleans()),
    st.tuples(st.just("release"), st.integers(0, 10**6), st.integers(1, 30)),
    st.tuples(st.just("remove_host"), st.integers(0, 10**6)),
    st.tuples(st.just("new_scalar"), st.sampled_from(CPUS)),
)


def _tasks(run, first: int, gang: bool):
    cpus, mem, n, job, prio, (hard, soft), gpu = run
    return [Task(f"t{first + i}", cpus=cpus, memory_mb=mem, scalars={"gpu": gpu} if gpu else {}, job=job,
                 priority=prio, hard=hard, soft=soft, gang="g" if gang else None) for i in range(n)]


def _outcome(s, method, *args, **kwargs):
    try:
        value = getattr(s, method)(*args, **kwargs)
    except (ValueError, KeyError, TypeError) as exc:
        return ("raised", type(exc).__name__)
    if hasattr(value, "assignments"):
        return summary(value)
    if isinstance(value, tuple):
        return tuple(v.tolist() if isinstance(v, np.ndarray) else v for v in value)
    return value.tolist() if isinstance(value, np.ndarray) else value


@settings(max_examples=6, deadline=None)
@given(shapes=st.lists(host_shapes, min_size=150, max_size=260), fitness=st.sampled_from(FITNESS),
       seed=st.integers(0, 2**64 - 1), ops=st.lists(operations, min_size=5, max_size=14))
def test_index_scan_and_twin_place_alike_over_many_classes_in_one_bucket(shapes, fitness, seed, ops):
    trio = [Scheduler(fitness=fitness, seed=seed), Scheduler(fitness=fitness, seed=seed, index=False),
            ReferenceScheduler(fitness=fitness, seed=seed)]
    hosts = [Host(f"h{i}", cpus=c, memory_mb=m, network_mbps=n, disk_mb=1000, scalars={"gpu": g} if g else {},
                  attributes={"rack": "r1" if i % 2 else "r2"} if i < 20 else {})
             for i, (c, m, n, g) in enumerate(shapes)]
    for s in trio:
        s.add_hosts(hosts)
        s.set_eviction_quota("j1", 5)
    next_id = 0

    def same(method, *args, **kwargs):
        got = [_outcome(s, method, *args, **kwargs) for s in trio]
        assert got[0] == got[1] == got[2], method
        shot = snapshot(trio[2])
        assert snapshot(trio[0]) == shot and snapshot(trio[1]) == shot, f"state after {method}"

    for k, op in enumerate(ops):
        if op[0] == "schedule":
            _, run, gang, preempt = op
            tasks = _tasks(run, next_id, gang)
            next_id += len(tasks)
            same("schedule", tasks, preempt=preempt)
        elif op[0] == "arrays":
            _, run, gang, preempt = op
            tasks = _tasks(run, next_id, False)
            next_id += len(tasks)
            resources = trio[0].resources
            demand = np.array([[t.cpus, t.memory_mb, 0, 0, *[t.scalars.get(r, 0) for r in resources[4:]]]
                               for t in tasks], dtype=np.float64)
            t0 = tasks[0]
            cls = TaskClass(job=t0.job, hard=t0.hard, soft=t0.soft, priority=t0.priority, gang=gang)
            same("schedule_arrays", demand, np.zeros(len(tasks), np.int32), [cls],
                 task_ids=[t.id for t in tasks], explain=True, preempt=preempt)
        elif op[0] == "release":
            held = sorted(trio[2].held_tasks())
            for tid in held[op[1] % max(len(held), 1):][:op[2]]:
                same("release", tid)
        elif op[0] == "remove_host":
            live = [h for h in trio[2].host_ids if h is not None]
            same("remove_host", live[op[1] % len(live)])
        else:
            same("add_hosts", [Host(f"x{k}", cpus=op[1], memory_mb=65536, scalars={f"fpga{k}": 2})])
    for tid in sorted(trio[2].held_tasks()):
        same("release", tid)
    for s in trio:
        for h in s.host_ids:
            if h is not None:
                assert set(s.host_usage(h).values()) == {0.0}, h
