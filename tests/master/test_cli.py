"""The job/task/hosts/capacity-groups commands against an in-process master."""
import json

import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient

from titus.cli import main
from titus.master.app import create_app

from tests.master.conftest import ScriptedAgent, make_master


@pytest.fixture
def cli(settings, clock, tmp_path, monkeypatch):
    s = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'cli.db'}"})
    master = make_master(s, clock)
    app = create_app(master=master, start_loop=False)
    test_client = TestClient(app)

    class PatchedClient:  # the CLI's httpx client, answered by the app in-process
        def __init__(self, base_url, headers=None, timeout=None, verify=None):
            self.base_url = base_url
            self.headers = headers or {}

        def request(self, method, path, headers=None, **kwargs):
            return test_client.request(method, path, headers={**self.headers, **(headers or {})},
                                       **kwargs)

    monkeypatch.setattr("titus.cli.client.httpx.Client", PatchedClient)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    run.master = master
    yield run
    master.store.close()


def test_submit_yaml_list_get_kill(cli, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump({"applicationName": "demo",
                                    "container": {"image": {"name": "busybox", "tag": "1"}},
                                    "batch": {"size": 2, "runtimeLimitSec": "60"}}))
    r = cli("job", "submit", str(spec))
    assert r.exit_code == 0, r.output
    job_id = r.output.strip()
    r = cli("job", "list", "--json")
    assert [j["id"] for j in json.loads(r.output)] == [job_id]
    assert "demo" in cli("job", "list").output
    assert "Accepted" in cli("job", "get", job_id).output
    tasks = json.loads(cli("task", "list", "--job", job_id, "--json").output)
    assert len(tasks) == 2
    assert json.loads(cli("task", "get", tasks[0]["id"], "--json").output)["jobId"] == job_id
    assert "Finished" in cli("job", "kill", job_id).output


def test_bad_spec_names_fields_and_exits_non_zero(cli, tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"applicationName": "", "container": {"image": {"name": "x"},
                                                                     "resources": {"cpu": 0}},
                                "batch": {"size": 1}}))
    r = cli("job", "submit", str(spec))
    assert r.exit_code != 0
    assert "applicationName" in r.output and "container.resources.cpu" in r.output


def test_scale_hosts_and_capacity_groups(cli, tmp_path):
    ScriptedAgent(cli.master, hosts=2).register()
    spec = tmp_path / "svc.json"
    spec.write_text(json.dumps({"applicationName": "svc", "container": {"image": {"name": "x"}},
                                "service": {"capacity": {"min": 0, "desired": 1, "max": 3}}}))
    job_id = cli("job", "submit", str(spec)).output.strip()
    assert "desired 3" in cli("job", "scale", job_id, "--desired", "3").output
    hosts = json.loads(cli("hosts", "--json").output)
    assert len(hosts) == 2
    assert "agent-1-h0" in cli("hosts").output
    r = cli("capacity-groups", "set", "gold", "--tier", "Critical", "--cpu", "8")
    assert r.exit_code == 0, r.output
    groups = json.loads(cli("capacity-groups", "list", "--json").output)
    assert groups[0]["name"] == "gold" and groups[0]["tier"] == "Critical"
    assert cli("capacity-groups", "delete", "gold").exit_code == 0


@pytest.mark.parametrize("content,says", [
    (b"\xff", "not UTF-8"),
    (b'{"applicationName": "x", "cpu": NaN}', "cpu: must be a finite number"),
    (b'{"applicationName": "x\\ud800"}', "applicationName: not valid Unicode"),
    (b"a: &a [1, 2]\nb: *a\n", "aliases"),
    (b"when: 2020-01-01\n", "not JSON data"),
    (b"[1, 2]", "must be a mapping"),
    (b"[" * 100 + b"]" * 100, "nested deeper"),
    (b"{: nope", "neither JSON nor YAML"),
])
def test_a_bad_spec_file_is_named_before_anything_is_sent(tmp_path, content, says):
    spec = tmp_path / "job.spec"
    spec.write_bytes(content)
    result = CliRunner().invoke(main, ["job", "submit", str(spec), "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and says in result.output, result.output
    assert "Traceback" not in result.output and "cannot reach" not in result.output


def test_a_missing_spec_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["job", "submit", str(tmp_path / "nope.json")])
    assert result.exit_code == 1 and "cannot read it" in result.output


@pytest.mark.parametrize("content,says", [
    (b"size: " + b"9" * 5000 + b"\n", "digits"),
    (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper"),
    # YAML's own spellings of NaN and infinity, and its escapes for a lone surrogate: named
    (b"container: {resources: {cpu: .nan}}\n", "container.resources.cpu: must be a finite"),
    (b"retries: -.inf\n", "retries: must be a finite"),
    (b'applicationName: "x\\ud800"\n', "applicationName: not valid Unicode"),
])
def test_a_hostile_yaml_file_is_a_clear_error(tmp_path, content, says):
    spec = tmp_path / "job.yaml"
    spec.write_bytes(content)
    result = CliRunner().invoke(main, ["job", "submit", str(spec), "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and says in result.output, result.output


def test_an_endless_spec_file_is_not_read_whole():
    result = CliRunner().invoke(main, ["job", "submit", "/dev/zero", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "more than" in result.output, result.output


@pytest.mark.parametrize("args", [
    ["local", "--cpus", "nan"], ["local", "--memory-mb", "inf"],
    ["local", "--cpus", "1e300"],  # beyond a host's bound: the agents exited at once
    ["agent", "--cpus", "nan"], ["agent", "--max-backoff-sec", "nan"],
    ["agent", "--network-mbps", "1e13"],
    ["hosts", "drain", "h1", "--deadline", "nan"],
    ["capacity-groups", "set", "g", "--cpu", "nan"],
    ["instance-groups", "rules", "g", "--cooldown-sec", "nan"],
    ["master", "--lease-sec", "inf"]])
def test_non_finite_numbers_are_usage_errors_before_anything_runs(args):
    # click's FloatRange let nan through: titus local --cpus nan started agents that exited
    # at once, titus agent --cpus nan printed a validation trace
    from click.testing import CliRunner

    from titus.cli import main

    out = CliRunner().invoke(main, args)
    assert out.exit_code == 2, (args, out.output)
    assert "not a finite number" in out.output or "is not in the range" in out.output, \
        out.output
