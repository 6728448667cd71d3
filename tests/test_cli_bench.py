"""``titus bench``: runs end to end at small sizes and reports consistent figures."""
import json

import pytest
from click.testing import CliRunner

import titus
from titus.cli import main

ENGINES = ["reference"] + (["native"] if hasattr(titus, "Scheduler") else [])


def _bench(*args):
    result = CliRunner().invoke(main, ["bench", *args])
    return result


def _json(*args):
    result = _bench(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_bench_is_a_titus_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "bench" in result.output


@pytest.mark.parametrize("engine", ENGINES)
def test_human_output_names_the_figures(engine):
    result = _bench("--hosts", "60", "--tasks", "600", "--engine", engine)
    assert result.exit_code == 0, result.output
    for words in ("600 tasks", "60 hosts", "placed", "placements/s", "hosts used", "lower bound"):
        assert words in result.output


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("constraints", ["none", "zone", "unique", "mixed"])
def test_json_figures_are_consistent(engine, constraints):
    f = _json("--hosts", "50", "--tasks", "800", "--constraints", constraints, "--engine", engine)
    assert f["placed"] + f["unplaced"] == f["tasks"] == 800
    assert f["placed"] > 0
    assert 0 < f["lower_bound_hosts"] <= f["hosts_used"] <= 50
    assert f["hosts_used_over_lower_bound"] == pytest.approx(
        f["hosts_used"] / f["lower_bound_hosts"])
    assert f["placements_per_second"] == pytest.approx(f["placed"] / f["schedule_seconds"])
    assert f["constraints"] == constraints and f["engine"] == engine


@pytest.mark.parametrize("engine", ENGINES)
def test_same_seed_same_packing_and_apis_agree(engine):
    args = ("--hosts", "40", "--tasks", "500", "--seed", "3", "--engine", engine)
    a = _json(*args)
    b = _json(*args)
    objects = _json(*args, "--api", "objects")
    batched = _json(*args, "--batch", "64")
    for other in (b, objects, batched):
        assert (other["placed"], other["hosts_used"]) == (a["placed"], a["hosts_used"])


@pytest.mark.parametrize("engine", ENGINES)
def test_full_scan_places_the_same(engine):
    args = ("--hosts", "40", "--tasks", "500", "--constraints", "mixed", "--engine", engine)
    indexed = _json(*args)
    scanned = _json(*args, "--full-scan")
    assert scanned["full_scan"] is True and indexed["full_scan"] is False
    assert (scanned["placed"], scanned["hosts_used"]) == (indexed["placed"], indexed["hosts_used"])


def test_spread_uses_more_hosts_than_binpack():
    args = ("--hosts", "80", "--tasks", "400", "--constraints", "none", "--engine", "reference")
    packed = _json(*args, "--fitness", "cpu_mem_binpack")
    spread = _json(*args, "--fitness", "cpu_mem_spread")
    assert spread["hosts_used"] > packed["hosts_used"]


def test_workload_is_an_alias_of_constraints():
    f = _json("--hosts", "20", "--tasks", "100", "--workload", "unique", "--engine", "reference")
    assert f["constraints"] == "unique"


@pytest.mark.parametrize("args, field", [
    (("--hosts", "0"), "--hosts"),
    (("--tasks", "-5"), "--tasks"),
    (("--constraints", "zonal"), "--constraints"),
    (("--fitness", "best_fit"), "--fitness"),
    (("--api", "rest"), "--api"),
])
def test_bad_flags_are_rejected_naming_the_flag(args, field):
    result = _bench(*args)
    assert result.exit_code == 2
    assert field in result.output


def test_bench_names_the_cpu_and_runs_the_pareto_shape():
    result = _bench("--shape", "pareto", "--hosts", "300", "--tasks", "3000")
    assert result.exit_code == 0, result.output
    assert "shape=pareto, constraints=pinned" in result.output
    assert "  cpu            " in result.output
    figures = _json("--shape", "pareto", "--hosts", "300", "--tasks", "3000")
    assert figures["shape"] == "pareto" and figures["cpu"] and figures["placed"] + figures["unplaced"] == 3000
