"""The benchmark's baselines and grid: exact where they claim to be, and runnable end to end."""
import json

import numpy as np
import pytest

from bench.baselines.cpsat_packing import min_hosts
from bench.baselines.numpy_greedy import NumpyGreedy
from bench.common import native_scheduler_class, timed_prefix, workload_greedy
from bench.engine_grid import main as grid_main
from bench.grid_cells import run_cell
from titus.scheduler.reference import ReferenceScheduler
from titus.workloads import generate


def _reference(workload, fitness, seed):
    s = ReferenceScheduler(fitness=fitness, seed=seed)
    s.add_hosts(workload.hosts())
    return s.schedule_arrays(workload.demand, workload.task_class, workload.classes)


@pytest.mark.parametrize("constraints", ["none", "zone", "unique", "mixed"])
@pytest.mark.parametrize("fitness", ["cpu_mem_binpack", "cpu_mem_spread",
                                     {"cpu_binpack": 2.0, "memory_spread": 1.0}])
@pytest.mark.parametrize("seed", [0, 3])
def test_numpy_greedy_places_exactly_like_the_reference_twin(constraints, fitness, seed):
    # overloaded on purpose (3000 small-cluster tasks), so tasks also fail and constraints bite
    w = generate(hosts=30, tasks=1500, jobs=120, constraints=constraints, seed=seed,
                 order="shuffled", zones=4)
    expected = _reference(w, fitness, seed)
    got, done = workload_greedy(w, fitness, seed).schedule_arrays(w.demand, w.task_class,
                                                                 w.classes)
    assert done == len(w.demand)
    assert 0 < np.count_nonzero(expected >= 0)
    np.testing.assert_array_equal(got, expected)


def test_numpy_greedy_time_budget_stops_on_a_prefix():
    w = generate(hosts=50, tasks=4000, seed=1)
    greedy = workload_greedy(w, "cpu_mem_binpack", 0)
    out, done = greedy.schedule_arrays(w.demand, w.task_class, w.classes, time_budget=0.0)
    assert done == 256  # checks the clock every 256 rows
    assert np.all(out[done:] == -1)
    assert greedy.hosts_used == len(np.unique(out[:done][out[:done] >= 0]))


def test_numpy_greedy_breaks_ties_by_tie_key_like_the_twin():
    # identical empty hosts: the first placement is decided by the tie key alone
    from titus.scheduler.model import Host, TaskClass

    hosts = [Host(f"h{i}", cpus=8, memory_mb=1024) for i in range(20)]
    for seed in range(5):
        ref = ReferenceScheduler(seed=seed)
        ref.add_hosts(hosts)
        demand = np.array([[1.0, 64.0, 0.0, 0.0]])
        expected = ref.schedule_arrays(demand, np.array([0], dtype=np.int32), [TaskClass()])
        greedy = NumpyGreedy(np.array([[8, 1024, 0, 0]] * 20, dtype=float),
                             [h.id for h in hosts], {}, ref.resources, seed=seed)
        got, _ = greedy.schedule_arrays(demand, np.array([0]), [TaskClass()])
        assert got.tolist() == expected.tolist()


def test_timed_prefix_returns_a_prefix_of_the_full_placement():
    w = generate(hosts=40, tasks=3000, constraints="zone", seed=2)
    full = _reference(w, "cpu_mem_binpack", 0)
    s = ReferenceScheduler()
    s.add_hosts(w.hosts())
    placement, rows, seconds = timed_prefix(s, w, budget=0.0, first=100)
    assert rows == 100 and seconds > 0
    np.testing.assert_array_equal(placement, full[:100])


def test_cpsat_finds_the_optimum_greedy_misses():
    # two hosts of 10 cpus; items 6,4,6,4: optimal pairs (6+4) twice -> 2 hosts
    capacity = np.array([[10.0, 10.0]] * 4)
    demand = np.array([[6.0, 1.0], [6.0, 1.0], [4.0, 1.0], [4.0, 1.0]])
    result = min_hosts(capacity, demand, time_limit=10, workers=1)
    assert result.optimal and result.hosts == 2 and result.bound == 2


def test_cpsat_respects_every_resource_and_fractional_units():
    # memory forces three hosts although cpu alone would fit on one
    capacity = np.array([[16.0, 100.0]] * 5)
    demand = np.array([[0.25, 60.0]] * 3)
    result = min_hosts(capacity, demand, time_limit=10, workers=1)
    assert result.optimal and result.hosts == 3


def test_cpsat_accepts_a_hint_and_never_beats_the_lower_bound():
    w = generate(hosts=30, tasks=300, jobs=15, seed=5)
    hint = _reference(w, "cpu_mem_binpack", 0)
    placed = hint >= 0
    result = min_hosts(w.capacity, w.demand[placed], time_limit=10, workers=1,
                       hint=hint[placed])
    assert result.hosts is not None
    assert w.lower_bound(placed).hosts <= result.hosts <= len(np.unique(hint[placed]))


def test_grid_cell_checks_baselines_against_the_engine():
    cell = run_cell(60, 600, "zone", fitness="cpu_mem_binpack", seed=0,
                    methods=("engine", "numpy", "reference", "full_scan"), budget=5.0,
                    reference_max_hosts=100)
    methods = cell["methods"]
    assert methods["numpy"]["speedup_vs_numpy"] == pytest.approx(1.0)
    if native_scheduler_class() is None:
        assert "engine" not in methods
        return
    for name in ("numpy", "reference"):
        assert methods[name]["same_placements_as_engine"] is True
        assert methods[name]["rows"] == 600
    engine = methods["engine"]
    assert engine["hosts_used"] >= cell["lower_bound_hosts"] > 0
    assert "placement" not in engine


def test_grid_command_writes_json_and_plots(tmp_path, capsys):
    code = grid_main(["--hosts", "40", "--tasks", "300", "--constraints", "none",
                      "--methods", "engine,numpy", "--budget", "2", "--no-quality",
                      "--out", str(tmp_path), "--name", "tiny"])
    assert code == 0
    data = json.loads((tmp_path / "tiny.json").read_text())
    assert [c["tasks"] for c in data["cells"]] == [300]
    assert data["machine"]["cores"] >= 1
    assert (tmp_path / "tiny_speed.png").stat().st_size > 0
    assert (tmp_path / "tiny_quality.png").stat().st_size > 0
    assert "40 hosts" in capsys.readouterr().out
