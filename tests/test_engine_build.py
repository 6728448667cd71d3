"""The native parts are built and answer: titus._engine places a task, titus._codec packs hosts."""
import math

import numpy as np

from titus import _codec, _engine
from titus.scheduler.tiekey import tiekey


def test_engine_module_places_one_task_on_the_only_host_that_fits():
    engine = _engine.Engine(4, 0, [3], [1.0], 0.5, 0.35, math.nan, True)
    caps = np.array([[2.0, 1024, 0, 0], [8.0, 4096, 0, 0]])
    fnv = np.array([_codec.fnv1a64("small"), _codec.fnv1a64("big")], dtype=np.uint64)
    none3 = np.zeros((0, 3), np.int32)
    assert engine.add_hosts(caps, fnv, none3, none3, np.zeros((0, 4), np.int32)) == 0
    cls = np.array([[-1, -1, 0, 0, 0, 0, 0, 0, 0]], dtype=np.int32)
    hosts, slots, fail_rows, fail_counts, *_ = engine.schedule(
        np.array([[4.0, 512, 0, 0], [16.0, 512, 0, 0]]), np.zeros(2, np.int32), cls,
        np.zeros((0, 5), np.int32), np.zeros(0, np.int32), np.zeros((0, 2), np.int32),
        np.zeros(0, np.int32), np.zeros((0, 4)), False, True)
    assert hosts.tolist() == [1, -1]          # 4 cpus fit only the big host; 16 fit none
    assert fail_rows.tolist() == [1]
    assert fail_counts[0, 3] == 2              # both hosts rejected it for cpus (slot 3)
    assert engine.used(1).tolist() == [4.0, 512.0, 0.0, 0.0]
    engine.release(int(slots[0]))
    assert engine.used(1).tolist() == [0.0, 0.0, 0.0, 0.0]


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
    s = Scheduler(fitness=rnd.choice(["cpu_mem_binpack", "cpu_spread", {"memory_binpack": 2, "cpu_spread": 1}]),
                  good_enough=rnd.choice([None, 0.6]), group_limits={"g0": {"cpus": 120}}, seed=seed, index=index)
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
    for seed in range(3):
        assert _random_cluster_run(True, seed) == _random_cluster_run(False, seed)
