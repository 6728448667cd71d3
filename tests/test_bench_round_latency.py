"""bench/round_latency.py: the round's figures and the numpy baseline's, on a small cluster."""
import json

import pytest

pytest.importorskip("titus._engine")

from bench import round_latency  # noqa: E402


def test_round_latency_reports_the_engine_and_the_numpy_baseline(tmp_path, capsys):
    assert round_latency.main(["--hosts", "300", "--tasks", "60", "--background", "1500",
                               "--rounds", "5", "--warmup", "1", "--numpy-rounds", "2",
                               "--name", "rl", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "rl.json").read_text())["result"]
    assert result["placed_per_round"] == 60 and result["rounds"] == 5
    assert 0 < result["min_ms"] <= result["median_ms"] <= result["p99_ms"]
    # the same semantics: the baseline places the round exactly as the engine does
    assert result["same_placements_as_numpy"] is True
    assert result["numpy_rounds"] == 2 and result["speedup_vs_numpy"] > 0
    assert "numpy vectorised greedy" in capsys.readouterr().out
