"""The engine's placement policy is a master setting (TITUS_FITNESS, TITUS_TASK_ORDER)."""
import pytest

from titus.master.config import MasterSettings
from tests.master.conftest import make_master


def test_policy_comes_from_the_environment(clock, tmp_path):
    settings = MasterSettings.from_env({"TITUS_FITNESS": "cpu_mem_fewest_hosts",
                                        "TITUS_TASK_ORDER": "interleave_jobs"},
                                       store_url=f"sqlite:///{tmp_path / 'm.db'}")
    assert (settings.fitness, settings.task_order) == ("cpu_mem_fewest_hosts", "interleave_jobs")
    master = make_master(settings, clock)
    try:
        assert master.scheduler._task_order == "interleave_jobs"
        assert [name for name, _ in master.scheduler._fitness] == ["cpu_mem_fewest_hosts"]
    finally:
        master.store.close()


@pytest.mark.parametrize("field, value, message", [
    ("task_order", "random", "task_order must be one of given, interleave_jobs"),
    ("fitness", "most_free", "fitness: unknown fitness 'most_free'"),
])
def test_a_bad_policy_stops_the_master_at_start_naming_it(clock, tmp_path, field, value, message):
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}", **{field: value})
    with pytest.raises(ValueError, match=message):
        make_master(settings, clock)
