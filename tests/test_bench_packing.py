"""bench/packing.py end to end on tiny instances, and the grid's quality rows it now measures."""
import json

import pytest

from bench.packing import Instance, main as packing_main, parse_instance
from bench.quality import run_quality

FITNESSES = ("cpu_mem_binpack", "cpu_mem_fewest_hosts")


def test_packing_command_writes_rows_json_and_plot(tmp_path, capsys):
    code = packing_main(["--fitness", ",".join(FITNESSES), "--sizes",
                         "20x200,20x200:homogeneous", "--cpsat-seconds", "2",
                         "--no-progress", "--out", str(tmp_path), "--name", "tiny"])
    assert code == 0
    data = json.loads((tmp_path / "tiny.json").read_text())
    assert data["command"].startswith("python bench/packing.py")
    assert data["machine"]["cores"] >= 1
    rows = {(r["cluster"], r["fitness"]): r for r in data["rows"]}
    assert set(rows) == {(c, f) for c in ("google2011", "homogeneous") for f in FITNESSES}
    for row in rows.values():
        assert row["placed"] == 200
        # both are lower bounds: no packing beats them
        assert row["greedy_hosts_used"] >= row["lower_bound_hosts"] > 0
        assert row["greedy_hosts_used"] >= row["cpsat_hosts"] >= row["cpsat_bound"] > 0
        assert row["greedy_over_lower_bound"] >= 1.0
    # on the trace's mix of shapes, opening large hosts first never costs hosts here
    assert (rows["google2011", "cpu_mem_fewest_hosts"]["greedy_hosts_used"]
            <= rows["google2011", "cpu_mem_binpack"]["greedy_hosts_used"])
    # CP-SAT runs once per instance: every fitness row of an instance carries the same figures
    for cluster in ("google2011", "homogeneous"):
        a, b = (rows[cluster, f] for f in FITNESSES)
        assert (a["cpsat_bound"], a["cpsat_seconds"]) == (b["cpsat_bound"], b["cpsat_seconds"])
    assert (tmp_path / "tiny.png").stat().st_size > 0
    assert capsys.readouterr().out.count("20 hosts") == 4


def test_large_instances_skip_cpsat_and_use_the_grid_workload():
    from bench.packing import measure_instance
    from titus.workloads import generate

    instance = Instance(200, 2000, constraints="zone")
    [row] = measure_instance(instance, ("cpu_mem_binpack",), seed=0, cpsat_seconds=1,
                             cpsat=False)
    assert row["cpsat_status"] is None and row["greedy_over_cpsat"] is None
    # the generator's default job count, as the engine grid's cells use
    assert row["jobs"] == len(generate(hosts=200, tasks=2000, constraints="zone", seed=0).classes)


def test_parse_instance():
    assert parse_instance("40x400") == Instance(40, 400, "google2011", "none")
    assert parse_instance("1000x10000:google2011:zone") == Instance(1000, 10000, "google2011",
                                                                     "zone")
    for bad in ("40", "40x400:mars", "ax1", "1x2:google2011:none:extra"):
        with pytest.raises(ValueError):
            parse_instance(bad)


def test_run_quality_keeps_the_grid_rows():
    [row] = run_quality(((20, 200, "google2011"),), fitness="cpu_mem_binpack", seed=0,
                        time_limit=2)
    for key in ("hosts", "tasks", "cluster", "greedy", "greedy_hosts_used", "lower_bound_hosts",
                "lower_bound_method", "cpsat_hosts", "cpsat_bound", "cpsat_status"):
        assert key in row
    assert row["fitness"] == "cpu_mem_binpack" and row["jobs"] == 10
