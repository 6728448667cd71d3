"""The short form of ``bench/autoscale_day.py``: two simulated hours, one group deleted."""
import pytest

from bench.autoscale_day import simulate

pytestmark = pytest.mark.moto


def test_short_day_places_the_work_and_never_terminates_a_busy_host(moto_url):
    result = simulate(moto_url, hours=2, step_sec=300, seed=3, never_join_share=0.3,
                      delete_at=3600)
    f = result["figures"]
    assert f["submitted"] > 0 and f["placed"] == f["submitted"] - f["waiting_at_end"]
    assert f["busy_terminated"] == 0
    assert "alpha" in f["errors"] and "does not exist" in f["errors"]["alpha"]
    assert "beta" not in f["errors"]
    late = [p for p in result["series"] if p["t"] >= 3600 + 600]
    assert all(p["alpha"]["failing"] for p in late)
