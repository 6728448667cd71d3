"""task_order: "given" places in the caller's order; "interleave_jobs" spreads each job's tasks
evenly through the call (a permutation only; the placement rules are unchanged)."""
import numpy as np
import pytest

from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.task_order import interleave_jobs


def test_interleave_spreads_each_job_evenly():
    # job 0 has 4 tasks (keys 1/8, 3/8, 5/8, 7/8), job 1 has 2 (1/4, 3/4), job 2 one (1/2)
    codes = np.array([0, 0, 0, 0, 1, 1, 2])
    assert interleave_jobs(codes).tolist() == [0, 4, 1, 6, 2, 5, 3]


def test_equal_keys_go_by_first_appearance_and_jobless_tasks_stand_alone():
    codes = np.array([5, -1, 3, -1])  # every job has one task: key 1/2 each
    assert interleave_jobs(codes).tolist() == [0, 1, 2, 3]
    assert interleave_jobs(np.array([], dtype=np.int64)).tolist() == []


def test_interleave_is_a_permutation():
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 20, size=500)
    assert sorted(interleave_jobs(codes).tolist()) == list(range(500))


def test_unknown_order_is_refused(scheduler_cls):
    with pytest.raises(ValueError, match="task_order must be one of given, interleave_jobs"):
        scheduler_cls(task_order="shuffled")


def two_profiles():
    # job a is cpu-heavy, job b memory-heavy: in the given order each fills hosts on its own
    cpu_heavy = [Task(f"a{i}", job="a", cpus=1, memory_mb=256) for i in range(8)]
    mem_heavy = [Task(f"b{i}", job="b", cpus=0.25, memory_mb=1024) for i in range(8)]
    return cpu_heavy + mem_heavy


def test_interleaving_jobs_uses_fewer_hosts(make_scheduler):
    hosts = [Host(f"h{i}", cpus=5, memory_mb=5120) for i in range(6)]
    given = make_scheduler(hosts, fitness="cpu_mem_fewest_hosts").schedule(two_profiles())
    mixed = make_scheduler(hosts, fitness="cpu_mem_fewest_hosts",
                           task_order="interleave_jobs").schedule(two_profiles())
    assert len(given.assignments) == len(mixed.assignments) == 16
    # given: a's 8 cpus need 2 hosts, b's 8 GiB need 2 more; mixed: 10 cpus, 10 GiB in 2 hosts... and a bit
    assert len(set(mixed.assignments.values())) < len(set(given.assignments.values()))


def test_arrays_come_back_in_the_callers_row_order(make_scheduler):
    hosts = [Host(f"h{i}", cpus=5, memory_mb=5120) for i in range(6)]
    tasks = two_profiles()
    objects = make_scheduler(hosts, fitness="cpu_mem_fewest_hosts", task_order="interleave_jobs")
    arrays = make_scheduler(hosts, fitness="cpu_mem_fewest_hosts", task_order="interleave_jobs")
    by_id = objects.schedule(tasks).assignments
    classes = [TaskClass(job="a"), TaskClass(job="b")]
    demand = np.array([[t.cpus, t.memory_mb, 0, 0] for t in tasks], dtype=np.float64)
    task_class = np.array([0 if t.job == "a" else 1 for t in tasks], dtype=np.int32)
    out = arrays.schedule_arrays(demand, task_class, classes, task_ids=[t.id for t in tasks])
    assert [arrays.host_ids[h] for h in out.tolist()] == [by_id[t.id] for t in tasks]
    assert arrays.held_tasks() == by_id
