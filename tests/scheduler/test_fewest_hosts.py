"""cpu_mem_fewest_hosts: hosts in use first, empty hosts largest first.

On a cluster of mixed machine shapes a plain binpacker opens the smallest hosts first (a task
fills more of a small host); this fitness opens the largest, so fewer hosts hold the work.
"""
import pytest

from titus.scheduler.model import Host, Task

FEWEST = "cpu_mem_fewest_hosts"


def mixed_shapes():
    return [Host("small", cpus=4, memory_mb=4096), Host("big", cpus=16, memory_mb=65536),
            Host("mid", cpus=8, memory_mb=16384)]


def test_empty_hosts_open_largest_first(make_scheduler):
    s = make_scheduler(mixed_shapes(), fitness=FEWEST)
    r = s.schedule([Task(f"t{i}", cpus=1, memory_mb=1024) for i in range(20)])
    # big holds 16 one-cpu tasks, then the next largest opens.
    assert [r.assignments[f"t{i}"] for i in range(20)] == ["big"] * 16 + ["mid"] * 4


def test_binpack_opens_the_smallest_where_fewest_hosts_opens_the_largest(make_scheduler):
    tasks = [Task(f"t{i}", cpus=1, memory_mb=1024) for i in range(16)]
    packed = make_scheduler(mixed_shapes(), fitness="cpu_mem_binpack").schedule(tasks)
    fewest = make_scheduler(mixed_shapes(), fitness=FEWEST).schedule(tasks)
    assert len(set(packed.assignments.values())) == 3   # small, then mid, then big
    assert set(fewest.assignments.values()) == {"big"}


def test_a_host_in_use_outranks_any_empty_host(make_scheduler):
    s = make_scheduler(mixed_shapes(), fitness=FEWEST)
    s.add_running(Task("old", cpus=1, memory_mb=1024), "small")
    r = s.schedule([Task(f"t{i}", cpus=1, memory_mb=1024) for i in range(4)])
    # small has room for three more; the fourth opens big.
    assert r.assignments == {"t0": "small", "t1": "small", "t2": "small", "t3": "big"}


def test_hosts_in_use_are_ranked_by_cpu_mem_utilisation(make_scheduler):
    s = make_scheduler([Host("a", cpus=8, memory_mb=8192), Host("b", cpus=8, memory_mb=8192)],
                       fitness=FEWEST)
    s.add_running(Task("x", cpus=1, memory_mb=1024), "a")
    s.add_running(Task("y", cpus=4, memory_mb=4096), "b")
    assert s.schedule([Task("t", cpus=1, memory_mb=1024)]).assignments == {"t": "b"}


def test_a_released_host_counts_as_empty_again(make_scheduler):
    s = make_scheduler(mixed_shapes(), fitness=FEWEST)
    # 0.1 + 0.2 - 0.1 - 0.2 leaves a rounding residue: still empty
    s.add_running(Task("a", cpus=0.1, memory_mb=0.1), "small")
    s.add_running(Task("b", cpus=0.2, memory_mb=0.2), "small")
    s.release("a")
    s.release("b")
    assert s.host_usage("small")["cpus"] == 0.0
    assert s.schedule([Task("t", cpus=1, memory_mb=1024)]).assignments == {"t": "big"}


@pytest.mark.parametrize("weight", [1, 3])
def test_mixes_with_other_fitness_functions(make_scheduler, weight):
    s = make_scheduler(mixed_shapes(), fitness={FEWEST: weight, "cpu_mem_binpack": 1})
    r = s.schedule([Task("t", cpus=1, memory_mb=1024)])
    # fewest: big 0.5*(16*65536)/(1+...) ~0.5, small ~0.5; binpack favours small (0.25+0.25)/2 =
    # 0.25 vs big ~0.039: the mix lands on small for any weight here.
    assert r.assignments == {"t": "small"}


def test_no_spread_mirror(make_scheduler):
    with pytest.raises(ValueError, match="cpu_mem_fewest_spread"):
        make_scheduler(mixed_shapes(), fitness="cpu_mem_fewest_spread")
