"""titus.scheduler.factory: one place builds either engine, with the options applied; and one
resource list (titus.resources) that the engine, the workloads and the autoscaler share."""
import numpy as np
import pytest

import titus
from titus import resources
from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler import factory
from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.reference import ReferenceScheduler

from tests.scheduler.helpers import by_tiekey, snapshot, summary, zone_hosts

build = factory.make_scheduler


def with_hosts(engine, hosts, **options):
    scheduler = build(engine, **options)
    scheduler.add_hosts(list(hosts))
    return scheduler


# ---------------------------------------------------------------- engine names
def test_engines_are_native_then_reference():
    assert factory.ENGINES == ("native", "reference")


def test_native_is_the_compiled_scheduler():
    assert type(build()) is titus.Scheduler
    assert type(build("native")) is titus.Scheduler


def test_reference_is_the_twin():
    assert type(build("reference")) is ReferenceScheduler


@pytest.mark.parametrize("name", ["Native", "compiled", "", None, "reference "])
def test_an_unknown_engine_is_refused_naming_the_choices(name):
    with pytest.raises(ValueError, match=r"engine must be one of native, reference, got ") as err:
        build(name)
    assert repr(name) in str(err.value)


def test_the_workload_runner_and_the_master_use_the_factory():
    from titus.master.config import MasterSettings
    from titus.master.engine_adapter import EngineAdapter
    from titus.master.state import ClusterState
    from titus.workloads import runner

    assert runner.make_scheduler is factory.make_scheduler and runner.ENGINES is factory.ENGINES
    settings = MasterSettings(store_url="sqlite://")
    assert type(EngineAdapter(settings, ClusterState(settings)).scheduler) is titus.Scheduler


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("engine", factory.ENGINES)
def test_fitness_is_applied(engine):
    hosts = [Host("big", cpus=8, memory_mb=1000), Host("small", cpus=4, memory_mb=1000)]
    task = Task("t", cpus=1)
    packed = with_hosts(engine, hosts, fitness="cpu_binpack").schedule([task])
    spread = with_hosts(engine, hosts, fitness="cpu_spread").schedule([task])
    assert packed.assignments == {"t": "small"} and spread.assignments == {"t": "big"}


@pytest.mark.parametrize("engine", factory.ENGINES)
def test_the_default_fitness_is_cpu_mem_binpack(engine):
    # cpu alone would pick A (fuller after the task), cpu and memory together pick B
    hosts = [Host("A", cpus=4, memory_mb=16000), Host("B", cpus=8, memory_mb=2000)]
    task = Task("t", cpus=1, memory_mb=1000)
    assert with_hosts(engine, hosts, fitness="cpu_binpack").schedule([task]).assignments == {"t": "A"}
    assert with_hosts(engine, hosts).schedule([task]).assignments == {"t": "B"}


@pytest.mark.parametrize("engine", factory.ENGINES)
def test_seed_and_good_enough_are_applied(engine):
    ids = [f"host-{i:02d}" for i in range(12)]
    hosts = [Host(h, cpus=4 + i, memory_mb=1000) for i, h in enumerate(ids)]
    task = Task("t", cpus=1)
    for seed in (0, 5, 99):
        first = by_tiekey(ids, seed)[0]
        s = with_hosts(engine, hosts, fitness="cpu_binpack", good_enough=0.0, seed=seed)
        assert s.schedule([task]).assignments == {"t": first}
    # without good_enough the best host wins whatever the seed
    s = with_hosts(engine, hosts, fitness="cpu_binpack", seed=5)
    assert s.schedule([task]).assignments == {"t": "host-00"}


def two_profiles():
    cpu_heavy = [Task(f"a{i}", job="a", cpus=1, memory_mb=256) for i in range(8)]
    mem_heavy = [Task(f"b{i}", job="b", cpus=0.25, memory_mb=1024) for i in range(8)]
    return cpu_heavy + mem_heavy


@pytest.mark.parametrize("engine", factory.ENGINES)
def test_task_order_is_applied(engine):
    hosts = [Host(f"h{i}", cpus=5, memory_mb=5120) for i in range(6)]
    given = with_hosts(engine, hosts, fitness="cpu_mem_fewest_hosts").schedule(two_profiles())
    mixed = with_hosts(engine, hosts, fitness="cpu_mem_fewest_hosts",
                       task_order="interleave_jobs").schedule(two_profiles())
    assert len(given.assignments) == len(mixed.assignments) == 16
    assert len(set(mixed.assignments.values())) < len(set(given.assignments.values()))


@pytest.mark.parametrize("engine", factory.ENGINES)
def test_other_options_are_passed_on(engine):
    s = with_hosts(engine, [Host("h", cpus=8)], group_limits={"g": {"cpus": 2}}, index=False)
    result = s.schedule([Task(f"t{i}", cpus=1, group="g") for i in range(3)])
    assert sorted(result.assignments) == ["t0", "t1"]
    assert result.failures["t2"].counts == {"group_limit": 1}


@pytest.mark.parametrize("engine", factory.ENGINES)
def test_bad_options_are_the_schedulers_errors(engine):
    with pytest.raises(ValueError, match="unknown fitness 'best'"):
        build(engine, fitness="best")
    with pytest.raises(ValueError, match="task_order must be one of given, interleave_jobs"):
        build(engine, task_order="shuffled")
    with pytest.raises(TypeError):
        build(engine, colour="blue")


# ---------------------------------------------------------------- same placements
def small_case():
    hosts = zone_hosts("abc", per_zone=2, cpus=8, memory_mb=16000, ports=[(31000, 31003)])
    hosts += [Host("gpu-1", cpus=16, memory_mb=64000, scalars={"gpu": 2},
                   attributes={"zone": "a", "type": "p3"})]
    tasks = [Task(f"web-{i}", job="web", cpus=1, memory_mb=1000, ports=1,
                  hard=[UniqueHostAttr("zone")]) for i in range(3)]
    tasks += [Task(f"batch-{i}", job="batch", cpus=2, memory_mb=4000,
                   soft=[BalancedHostAttr("zone", 3)]) for i in range(7)]
    tasks += [Task("train", job="train", cpus=4, memory_mb=8000, scalars={"gpu": 2},
                   hard=[HostAttrValue("type", "p3")])]
    tasks += [Task("alone", cpus=1, hard=[ExclusiveHost()]), Task("huge", cpus=64)]
    return hosts, tasks


@pytest.mark.parametrize("options", [{}, {"fitness": "cpu_spread", "seed": 7},
                                     {"fitness": "cpu_mem_fewest_hosts", "task_order": "interleave_jobs"}])
def test_both_engines_place_the_same_tasks_identically(options):
    hosts, tasks = small_case()
    native = with_hosts("native", hosts, **options)
    twin = with_hosts("reference", hosts, **options)
    placed = summary(native.schedule(tasks))
    assert placed == summary(twin.schedule(tasks))
    assert "huge" in placed["failures"] and len(placed["assignments"]) >= len(tasks) - 3
    assert snapshot(native) == snapshot(twin)


def test_both_engines_place_the_same_arrays_identically():
    hosts, _ = small_case()
    rng = np.random.default_rng(3)
    # the gpu host makes gpu the fifth column: demand in PLATFORM_RESOURCES order
    demand = np.column_stack([rng.integers(1, 4, 40), rng.integers(500, 3000, 40),
                              np.zeros(40), np.zeros(40), rng.integers(0, 2, 40) * (np.arange(40) < 2)])
    task_class = rng.integers(0, 2, 40).astype(np.int32)
    classes = [TaskClass(job="x", soft=(BalancedHostAttr("zone", 3),)), TaskClass(job="y")]
    native, twin = (with_hosts(e, hosts) for e in factory.ENGINES)
    assert native.resources == twin.resources == resources.PLATFORM_RESOURCES
    out = native.schedule_arrays(demand.astype(np.float64), task_class, classes)
    assert out.tolist() == twin.schedule_arrays(demand.astype(np.float64), task_class, classes).tolist()
    assert (out >= 0).sum() > 30


# ---------------------------------------------------------------- resource names
def test_the_platform_resources_are_the_base_ones_and_gpu():
    assert resources.BASE_RESOURCES == ("cpus", "memory_mb", "disk_mb", "network_mbps")
    assert resources.PLATFORM_RESOURCES == resources.BASE_RESOURCES + ("gpu",)


@pytest.mark.parametrize("engine", factory.ENGINES)
def test_base_resources_are_the_engines_fixed_columns(engine):
    s = build(engine)
    assert s.resources[:4] == resources.BASE_RESOURCES == s.resources
    s.add_hosts([Host("h", cpus=4, scalars={"gpu": 1})])
    assert s.resources[:4] == resources.BASE_RESOURCES
    assert s.resources == resources.PLATFORM_RESOURCES


def test_the_old_names_are_the_shared_lists():
    from titus.autoscale import shortfall
    from titus.master import capacity
    from titus.scheduler import validation
    from titus.workloads import RESOURCES as WORKLOAD_RESOURCES

    assert WORKLOAD_RESOURCES is resources.BASE_RESOURCES
    assert validation.BASE_RESOURCES is resources.BASE_RESOURCES
    assert shortfall.RESOURCES is resources.PLATFORM_RESOURCES
    assert capacity.RESOURCES is resources.PLATFORM_RESOURCES
