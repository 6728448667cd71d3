"""The native parts are built and answer: titus._engine places a task, titus._codec packs hosts."""
import math

import numpy as np
import pytest

from titus import _codec, _engine
from titus.scheduler.tiekey import tiekey


def test_engine_module_places_one_task_on_the_only_host_that_fits():
    engine = _engine.Engine(4, 0, [3], [1.0], 0.5, 0.35, math.nan, True)
    caps = np.array([[2.0, 1024, 0, 0], [8.0, 4096, 0, 0]])
    fnv = np.array([_codec.fnv1a64("small"), _codec.fnv1a64("big")], dtype=np.uint64)
    none3 = np.zeros((0, 3), np.int32)
    assert engine.add_hosts(caps, fnv, none3, none3, np.zeros((0, 4), np.int32)) == 0
    cls = np.zeros(1, dtype=_engine.CLASS_DTYPE)
    cls[0]["job"] = cls[0]["group"] = -1
    hosts, slots, fail_rows, fail_counts, *_ = engine.schedule(
        np.array([[4.0, 512, 0, 0], [16.0, 512, 0, 0]]), np.zeros(2, np.int32), cls,
        np.zeros(0, _engine.CONSTRAINT_DTYPE), np.zeros(0, np.int32), np.zeros(0, _engine.SET_REQUEST_DTYPE),
        np.zeros(0, np.int32), np.zeros((0, 4)), False, True)
    assert hosts.tolist() == [1, -1]          # 4 cpus fit only the big host; 16 fit none
    assert fail_rows.tolist() == [1]
    assert fail_counts[0, _engine.REASON_RESOURCE0] == 2  # both hosts rejected it for cpus
    assert engine.used(1).tolist() == [4.0, 512.0, 0.0, 0.0]
    engine.release(int(slots[0]))
    assert engine.used(1).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_constants_come_from_the_engine_and_python_restates_none():
    from titus.resources import BASE_RESOURCES
    from titus.scheduler import failures, validation
    from titus.scheduler.scheduler import FITNESS_CODES

    assert _engine.BASE_RESOURCES == BASE_RESOURCES == ("cpus", "memory_mb", "disk_mb", "network_mbps")
    assert validation.FITNESS_NAMES == tuple(_engine.FITNESS_KINDS) == tuple(FITNESS_CODES)
    assert validation.BINPACKERS["cpu_mem_binpack"] == ("cpus", "memory_mb")
    assert FITNESS_CODES["cpu_spread"] == FITNESS_CODES["cpu_binpack"] + _engine.SPREAD_OFFSET
    assert validation.EPS == _engine.EPS == 1e-9
    assert _engine.CLASS_DTYPE.names == ("job", "group", "ports", "hard_off", "hard_cnt", "soft_off",
                                         "soft_cnt", "rs_off", "rs_cnt")
    assert _engine.FIXED_REASONS == (failures.GROUP_LIMIT, "disabled", "constraint:ExclusiveHost")
    assert _engine.CONSTRAINT_KINDS == {"HostAttrValue": 0, "UniqueHostAttr": 1, "ExclusiveHost": 2,
                                        "BalancedHostAttr": 3}


def test_engine_tiekey_matches_the_documented_formula():
    for host_id, seed in [("h1", 0), ("host-ü", 7), ("", 2**64 - 1)]:
        assert _engine.tiekey(host_id, seed) == tiekey(host_id, seed)


def test_codec_fnv_matches_python():
    from titus.scheduler.tiekey import fnv1a64

    assert _codec.fnv1a64("zone-a/ü") == fnv1a64("zone-a/ü".encode())


def _random_cluster_run(index: bool, seed: int):
    """A few rounds of mixed work on a random cluster; returns everything the scheduler showed."""
    import random

    from titus import Host, Scheduler, Task, TaskClass
    from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr

    rnd = random.Random(seed)
    shapes = [(4, 8192), (8, 16384), (16, 65536)]
    hosts = []
    for i in range(150):
        cpus, mem = rnd.choice(shapes)
        hosts.append(Host(f"h{i}", cpus=cpus, memory_mb=mem, network_mbps=1000,
                          ports=[(9000, 9003)] if i % 7 == 0 else [],
                          scalars={"gpu": 2} if i % 11 == 0 else {},
                          attributes={"zone": "abc"[i % 3], "rack": f"r{i % 10}"}))
    s = Scheduler(fitness=rnd.choice(["cpu_mem_binpack", "cpu_spread", {"memory_binpack": 2, "cpu_spread": 1},
                                      "cpu_mem_fewest_hosts", {"cpu_mem_fewest_hosts": 2, "cpu_binpack": 1}]),
                  good_enough=rnd.choice([None, 0.6]), group_limits={"g0": {"cpus": 120}}, seed=seed, index=index,
                  task_order=rnd.choice(["given", "interleave_jobs"]))
    s.add_hosts(hosts)
    constraints = [HostAttrValue("zone", "a"), UniqueHostAttr("rack"), BalancedHostAttr("zone", 3),
                   ExclusiveHost(), UniqueHostAttr(), HostAttrValue("rack", values=["r1", "r2", "r3"]),
                   HostAttrValue("hostname", values=["h1", "h5", "h9", "h30"]), BalancedHostAttr("hostname", 50)]
    seen = []
    for rnd_no in range(4):
        tasks = [Task(f"t{rnd_no}-{i}", cpus=rnd.choice([0.5, 1, 2, 3]), memory_mb=rnd.choice([256, 1024, 4096]),
                      ports=rnd.choice([0, 0, 0, 1]), scalars={"gpu": 1} if rnd.random() < 0.05 else {},
                      job=f"j{rnd.randrange(5)}", group=rnd.choice([None, "g0"]),
                      hard=rnd.sample(constraints, rnd.choice([0, 0, 1])),
                      soft=rnd.sample(constraints, rnd.choice([0, 1, 2])))
                 for i in range(250)]
        r = s.schedule(tasks)
        seen.append((r.assignments, r.ports, {t: f.message for t, f in r.failures.items()}))
        classes = [TaskClass(job=f"j{j}", soft=[BalancedHostAttr("zone", 3)]) for j in range(3)]
        demand = np.zeros((200, len(s.resources)))
        demand[:, 0] = [rnd.choice([0.5, 1, 2]) for _ in range(200)]
        demand[:, 1] = 512
        seen.append(s.schedule_arrays(demand, np.arange(200, dtype=np.int32) % 3, classes).tolist())
        for tid in list(s.held_tasks())[::3]:
            s.release(tid)
        s.disable_host(f"h{rnd_no}")
        s.enable_host(f"h{rnd_no + 3}")
        seen.append(s.remove_host(f"h{100 + rnd_no}"))
        s.add_hosts([Host(f"n{rnd_no}-{i}", cpus=8, memory_mb=16384, attributes={"zone": "abc"[i], "rack": "r1"})
                     for i in range(3)])
    seen.append({h: s.host_usage(h) for h in s.host_ids if h is not None})
    return seen


def test_engine_index_gives_exactly_the_full_scan_results():
    for seed in range(6):
        assert _random_cluster_run(True, seed) == _random_cluster_run(False, seed)


@pytest.mark.parametrize("fitness, constraints", [("cpu_mem_binpack", "zone"), ("cpu_mem_fewest_hosts", "zone"),
                                                  ("cpu_mem_fewest_hosts", "mixed")])
def test_index_and_full_scan_agree_on_a_trace_shaped_workload(fitness, constraints):
    # the branch-and-bound prunes by a score bound: on realistic data it must never cut a winner
    from titus import Scheduler
    from titus.workloads import generate

    w = generate(hosts=1500, tasks=12000, constraints=constraints, seed=7)
    out = []
    for index in (True, False):
        s = Scheduler(fitness=fitness, seed=7, index=index)
        s.add_hosts(w.hosts())
        out.append(s.schedule_arrays(w.demand, w.task_class, w.classes).tolist())
    assert out[0] == out[1]


def _hosts_with_instance_ids(n: int):
    from titus import Host

    return [Host(f"h{i}", cpus=16, memory_mb=65536, attributes={"instance_id": f"i-{i}", "zone": "abc"[i % 3]})
            for i in range(n)]


def _one_task(s, task_class):
    demand = np.zeros((1, len(s.resources)))
    demand[0, :2] = [1, 512]
    return s.schedule_arrays(demand, np.zeros(1, np.int32), [task_class])


def test_an_attribute_no_constraint_reads_does_not_split_host_classes():
    from titus import Scheduler, TaskClass

    s = Scheduler()
    s.add_hosts(_hosts_with_instance_ids(500))
    _one_task(s, TaskClass(job="j"))
    # 500 identical empty hosts: one class looked at, not one per instance id.
    assert s._engine.last_evaluated <= 2
    assert s._engine.n_host_classes <= 2


def test_host_attr_value_splits_only_the_values_it_names():
    from titus import Scheduler, TaskClass
    from titus.constraints import BalancedHostAttr, HostAttrValue

    s = Scheduler()
    s.add_hosts(_hosts_with_instance_ids(500))
    assert _one_task(s, TaskClass(job="j", hard=[HostAttrValue("instance_id", "i-7")])).tolist() == [7]
    # The host holding the task, the empty "i-7" (none left) and the empty others: few classes.
    assert s._engine.n_host_classes <= 3
    assert s._engine.last_evaluated <= 3
    # A constraint reading every value of zone splits by zone only.
    _one_task(s, TaskClass(job="k", soft=[BalancedHostAttr("zone", 3)]))
    assert s._engine.last_evaluated <= 5


def test_hostname_unique_jobs_evaluate_a_bounded_number_of_hosts():
    from titus import Scheduler, TaskClass
    from titus.constraints import UniqueHostAttr

    s = Scheduler()
    s.add_hosts(_hosts_with_instance_ids(400))
    demand = np.zeros((300, len(s.resources)))
    demand[:, :2] = [1, 512]
    for rule in ("hard", "soft"):
        cls = TaskClass(job=rule, **{rule: [UniqueHostAttr()]})
        assert (s.schedule_arrays(demand, np.zeros(300, np.int32), [cls]) >= 0).all()
        # Hosts holding the job's tasks form their own classes: a few hosts per task, not hundreds.
        assert s._engine.last_evaluated <= 300 * 4


def _unique_attr_run(index: bool):
    from titus import Scheduler, TaskClass
    from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr

    s = Scheduler(index=index, seed=3)
    s.add_hosts(_hosts_with_instance_ids(120))
    rnd = np.random.default_rng(5)
    classes = [TaskClass(job="a", hard=[HostAttrValue("instance_id", values=["i-3", "i-40", "i-77"])]),
               TaskClass(job="b", soft=[UniqueHostAttr("instance_id")]),
               TaskClass(job="c", hard=[UniqueHostAttr()], soft=[BalancedHostAttr("zone", 3)]),
               TaskClass(job="d", soft=[UniqueHostAttr(), HostAttrValue("hostname", "h9")]),
               TaskClass(job="e")]
    seen = []
    for round_no in range(8):
        n = 150
        demand = np.zeros((n, len(s.resources)))
        demand[:, 0] = rnd.choice([0.5, 1, 2, 4], n)
        demand[:, 1] = rnd.choice([256, 1024, 8192], n)
        pick = [round_no % 5, (round_no + 2) % 5]
        tc = rnd.choice(len(pick), n).astype(np.int32)
        seen.append(s.schedule_arrays(demand, tc, [classes[k] for k in pick],
                                      task_ids=[f"r{round_no}-{i}" for i in range(n)]).tolist())
        for tid in list(s.held_tasks())[::4]:
            s.release(tid)
    return seen


def test_index_with_a_unique_valued_attribute_gives_the_full_scan_results():
    assert _unique_attr_run(True) == _unique_attr_run(False)


def _crowded_run(index: bool):
    """Many identical tasks on a cluster too small for them: most fail, with the same reasons."""
    from titus import Host, Scheduler, Task
    from titus.constraints import BalancedHostAttr, HostAttrValue

    s = Scheduler(index=index, group_limits={"g": {"cpus": 30}})
    s.add_hosts([Host(f"h{i}", cpus=4, memory_mb=4096, attributes={"zone": "ab"[i % 2]}) for i in range(10)])
    tasks = []
    for i in range(120):
        kind = i % 4
        tasks.append(Task(f"t{i}", cpus=[1, 2, 3, 0.5][kind], memory_mb=512, job=f"j{kind % 2}",
                          group="g" if kind == 3 else None,
                          hard=[HostAttrValue("zone", "a")] if kind == 1 else [],
                          soft=[BalancedHostAttr("zone", 2)]))
    r = s.schedule(tasks)
    for tid in list(s.held_tasks())[::5]:
        s.release(tid)
    r2 = s.schedule([Task(f"u{i}", cpus=2, memory_mb=512, job="j0") for i in range(30)])
    return [(x.assignments, {t: f.message for t, f in x.failures.items()}) for x in (r, r2)]


def test_repeated_failures_give_the_full_scan_reasons():
    assert _crowded_run(True) == _crowded_run(False)
