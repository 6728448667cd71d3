"""``titus instance-groups`` against an in-process master."""
import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from titus.cli import main
from titus.master.app import create_app
from tests.master.conftest import make_master, settings, clock  # noqa: F401  (fixtures)


@pytest.fixture
def cli(settings, clock, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv("TITUS_AUTOSCALE_PROVIDER", raising=False)
    master = make_master(settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'c.db'}"}), clock)
    test_client = TestClient(create_app(master=master, start_loop=False))

    class InProcess:  # the CLI's httpx client, answered by the app in-process
        def __init__(self, base_url, headers=None, timeout=None, verify=None):
            self.base_url = base_url
            self.headers = headers or {}

        def request(self, method, path, **kwargs):
            return test_client.request(method, path, headers=self.headers, **kwargs)

    monkeypatch.setattr("titus.cli.client.httpx.Client", InProcess)
    runner = CliRunner()
    yield lambda *args: runner.invoke(main, list(args), catch_exceptions=False)
    master.store.close()


def test_create_rules_list_update_delete(cli):
    r = cli("instance-groups", "create", "batch", "--instance-type", "m5.xlarge", "--cpus", "4",
            "--memory-mb", "16384", "--zone", "a,b", "--max-size", "20", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["zones"] == ["a", "b"]
    r = cli("instance-groups", "rules", "batch", "--min-idle", "1", "--max-idle", "3", "--json")
    assert json.loads(r.output)["rule"]["max_idle"] == 3
    r = cli("instance-groups", "rules", "batch", "--cooldown-sec", "30", "--json")
    rule = json.loads(r.output)["rule"]
    assert (rule["min_idle"], rule["cooldown_sec"]) == (1, 30)
    r = cli("instance-groups", "list")
    assert r.exit_code == 0 and "batch" in r.output and "idle 1-3" in r.output
    r = cli("instance-groups", "update", "batch", "--lifecycle", "PhasedOut", "--json")
    assert json.loads(r.output)["lifecycle"] == "PhasedOut"
    assert cli("instance-groups", "actions", "batch").exit_code == 0
    assert cli("instance-groups", "delete", "batch").exit_code == 0
    assert json.loads(cli("instance-groups", "list", "--json").output) == []


def test_invalid_rule_names_the_field(cli):
    cli("instance-groups", "create", "batch", "--instance-type", "m5", "--cpus", "4", "--memory-mb", "1024",
        "--zone", "a")
    r = CliRunner().invoke(main, ["instance-groups", "rules", "batch", "--min-idle", "5", "--max-idle", "2"])
    assert r.exit_code != 0 and "min_idle" in r.output
