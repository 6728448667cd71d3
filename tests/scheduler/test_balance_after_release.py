"""The engine equals the twin when co-task counts go down as well as up: soft and hard
BalancedHostAttr (on hostname and on zone) and UniqueHostAttr across releases, with a host
attribute unique to each host present and constraints changing from call to call."""
import random

import numpy as np

from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass

from tests.conftest import engine_class, reference_class
from tests.scheduler.helpers import snapshot


def _run(cls, seed: int):
    rnd = random.Random(seed)
    s = cls(seed=seed)
    s.add_hosts([Host(f"h{i}", cpus=rnd.choice([4, 8]), memory_mb=16000,
                      attributes={"zone": "abc"[i % 3], "instance_id": f"i-{i}"}) for i in range(40)])
    rules = [[BalancedHostAttr("hostname", 40)], [BalancedHostAttr("zone", 3)], [UniqueHostAttr()],
             [UniqueHostAttr("instance_id")], [HostAttrValue("instance_id", values=["i-1", "i-2", "i-30"])], []]
    seen = []
    for round_no in range(12):
        tasks = []
        for i in range(rnd.randrange(5, 40)):
            hard = rnd.choice(rules) if rnd.random() < 0.3 else []
            tasks.append(Task(f"t{round_no}-{i}", cpus=rnd.choice([0.5, 1, 2]), memory_mb=512,
                              job=f"j{rnd.randrange(3)}", hard=hard, soft=rnd.choice(rules)))
        # One job with many tasks: its counts per zone climb well above 1, then fall on release.
        tasks += [Task(f"z{round_no}-{i}", cpus=rnd.choice([0.25, 1, 3]), memory_mb=rnd.choice([64, 4000]), job="z",
                       soft=[BalancedHostAttr("zone", 3)] + ([UniqueHostAttr()] if i % 2 else []))
                  for i in range(rnd.randrange(10, 30))]
        r = s.schedule(tasks)
        seen.append((r.assignments, sorted(r.failures)))
        classes = [TaskClass(job="j0", soft=rnd.choice(rules)), TaskClass(job="j1", hard=rnd.choice(rules))]
        demand = np.zeros((30, len(s.resources)))
        demand[:, 0] = 0.5
        demand[:, 1] = 256
        ids = [f"a{round_no}-{i}" for i in range(30)]
        tc = np.array([rnd.randrange(2) for _ in range(30)], dtype=np.int32)
        seen.append(list(s.schedule_arrays(demand, tc, classes, task_ids=ids)))
        held = sorted(s.held_tasks())
        for tid in rnd.sample(held, len(held) // 2):
            s.release(tid)
    seen.append(snapshot(s))
    return seen


def test_engine_equals_twin_across_releases():
    for seed in range(4):
        assert _run(engine_class(), seed) == _run(reference_class(), seed)
