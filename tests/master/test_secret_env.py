"""Secret env values: redacted in every view (REST, observe stream, CLI), real in the store and
in the launch order the agent gets."""
import json
import threading

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from titus.cli import main
from titus.master.app import create_app
from titus.master.config import MasterSettings
from titus.master.secret_env import (DEFAULT_SECRET_ENV_PATTERN, REDACTED, SECRET_ENV_ATTRIBUTE,
                                     redact_descriptor, redact_job_view, secret_names)
from titus.master.validation import parse_job
from titus.master.views import job_view

from tests.master.conftest import ScriptedAgent, make_master

ENV = {"DB_PASSWORD": "hunter2", "api_key": "k-123", "GITHUB_TOKEN": "ghp-1",
       "CLIENT_SECRET": "s-1", "CUSTOM": "c-1", "PLAIN": "visible"}
HIDDEN_VALUES = ("hunter2", "k-123", "ghp-1", "s-1", "c-1")


def spec(env=None, listed="CUSTOM", service=False) -> dict:
    container = {"image": {"name": "alpine"}, "env": dict(ENV if env is None else env)}
    if listed is not None:
        container["attributes"] = {SECRET_ENV_ATTRIBUTE: listed}
    kind = ({"service": {"capacity": {"min": 0, "desired": 1, "max": 2}}} if service
            else {"batch": {"size": 1}})
    return {"applicationName": "app", "container": container, **kind}


def expected_view_env() -> dict:
    return {**{k: REDACTED for k in ENV}, "PLAIN": "visible"}


@pytest.fixture
def master(settings, clock, tmp_path):
    m = make_master(settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 's.db'}"}),
                    clock)
    yield m
    m.store.close()


@pytest.fixture
def client(master):
    with TestClient(create_app(master=master, start_loop=False)) as c:
        yield c


def test_rest_views_redact_secret_values_and_keep_the_rest(client):
    job_id = client.post("/api/v3/jobs", json=spec()).json()["id"]
    for body in (client.get(f"/api/v3/jobs/{job_id}").text, client.get("/api/v3/jobs").text):
        assert not any(v in body for v in HIDDEN_VALUES)
    job = client.get(f"/api/v3/jobs/{job_id}").json()
    container = job["jobDescriptor"]["container"]
    assert container["env"] == expected_view_env()
    assert container["attributes"] == {SECRET_ENV_ATTRIBUTE: "CUSTOM"}  # echoed as sent
    listed = client.get("/api/v3/jobs").json()["items"][0]
    assert listed["jobDescriptor"]["container"]["env"] == expected_view_env()


def test_kill_resize_and_archived_views_are_redacted(client):
    svc = client.post("/api/v3/jobs", json=spec(service=True)).json()["id"]
    resized = client.put(f"/api/v3/jobs/{svc}/instances", json={"desired": 2}).json()
    assert resized["jobDescriptor"]["container"]["env"] == expected_view_env()
    batch = client.post("/api/v3/jobs", json=spec()).json()["id"]
    killed = client.delete(f"/api/v3/jobs/{batch}").json()
    assert killed["jobDescriptor"]["container"]["env"] == expected_view_env()
    archived = client.get("/api/v3/jobs", params={"jobState": "Finished"})
    assert [j["id"] for j in archived.json()["items"]] == [batch]
    assert not any(v in archived.text for v in HIDDEN_VALUES)
    assert client.get(f"/api/v3/jobs/{batch}").json()["jobDescriptor"]["container"]["env"] == \
        expected_view_env()


def read_events(client, master, job_id) -> list:
    """The observe stream of one job: its snapshot, then the live changes of a kill."""
    events, kind = [], None
    with client.stream("GET", "/api/v3/observe", params={"jobId": job_id, "limit": 2}) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                assert not any(v in line for v in HIDDEN_VALUES)
                events.append((kind, json.loads(line[6:])))
                if kind == "snapshotEnd":
                    threading.Thread(target=master.kill_job, args=(job_id,)).start()
    return events


def test_observe_snapshot_and_live_job_updates_are_redacted(master, client):
    job_id = client.post("/api/v3/jobs", json=spec()).json()["id"]
    events = read_events(client, master, job_id)
    jobs = [p for k, p in events if k == "jobUpdate"]
    assert len(jobs) >= 2  # one from the snapshot, at least one live
    assert [k for k, _ in events].index("snapshotEnd") < len(events) - 1
    for job in jobs:
        assert job["jobDescriptor"]["container"]["env"] == expected_view_env()


def test_the_launch_order_and_the_store_keep_the_real_values(master, client):
    agent = ScriptedAgent(master, hosts=1)
    agent.register()
    job_id = client.post("/api/v3/jobs", json=spec()).json()["id"]
    client.get(f"/api/v3/jobs/{job_id}")  # a view first: it must not change what is launched
    master.scheduling.run_round(force=True)
    (order,) = [o for o in agent.heartbeat() if o.type == "launch"]
    assert order.env == ENV
    job, _ = master.queries.job(job_id)
    assert job.descriptor.container.env == ENV
    (row,) = [r for r in master.store.load_jobs() if r["id"] == job_id]
    assert json.loads(row["descriptor"])["container"]["env"] == ENV


def test_the_pattern_is_a_setting(settings, clock, tmp_path):
    s = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'p.db'}",
                                    "secret_env_pattern": "^DB_"})
    m = make_master(s, clock)
    try:
        with TestClient(create_app(master=m, start_loop=False)) as c:
            job_id = c.post("/api/v3/jobs", json=spec()).json()["id"]
            env = c.get(f"/api/v3/jobs/{job_id}").json()["jobDescriptor"]["container"]["env"]
    finally:
        m.store.close()
    assert env == {**ENV, "DB_PASSWORD": REDACTED, "CUSTOM": REDACTED}


def test_the_pattern_from_the_environment_and_bad_patterns_refused():
    assert MasterSettings().secret_env_pattern == DEFAULT_SECRET_ENV_PATTERN
    assert MasterSettings.from_env({"TITUS_SECRET_ENV_PATTERN": "(?i)pass"}
                                   ).secret_env_pattern == "(?i)pass"
    with pytest.raises(ValueError, match="secret_env_pattern"):
        MasterSettings.from_env({"TITUS_SECRET_ENV_PATTERN": "(unclosed"})


def test_default_pattern_is_case_insensitive_and_matches_anywhere_in_the_name():
    env = {n: "v" for n in ("password", "MY_SECRET_X", "x_token", "SSH_KEY", "KEYRING", "HOME",
                            "PATH", "USER")}
    assert secret_names(env, {}, DEFAULT_SECRET_ENV_PATTERN) == {
        "password", "MY_SECRET_X", "x_token", "SSH_KEY", "KEYRING"}


def test_the_explicit_list_alone_with_an_empty_pattern():
    env = {"A": "1", "B": "2", "DB_PASSWORD": "3"}
    attrs = {SECRET_ENV_ATTRIBUTE: " A , ,NOT_IN_ENV,b"}  # spaces trimmed, names exact
    assert secret_names(env, attrs, "") == {"A"}
    assert secret_names(env, {}, "") == set()
    assert secret_names(env, attrs, DEFAULT_SECRET_ENV_PATTERN) == {"A", "DB_PASSWORD"}


def test_redaction_never_changes_its_input_and_tolerates_other_shapes():
    wire = {"container": {"env": {"X_TOKEN": "t", "Y": "y"}, "image": {"name": "i"}}}
    before = json.loads(json.dumps(wire))
    out = redact_descriptor(wire, DEFAULT_SECRET_ENV_PATTERN)
    assert out["container"]["env"] == {"X_TOKEN": REDACTED, "Y": "y"}
    assert wire == before and out["container"]["image"] is wire["container"]["image"]
    for odd in ({}, {"container": None}, {"container": {"env": []}}, [], "x"):
        assert redact_descriptor(odd, DEFAULT_SECRET_ENV_PATTERN) == odd
    assert redact_job_view({"id": "j"}, DEFAULT_SECRET_ENV_PATTERN) == {"id": "j"}


def test_the_redacted_descriptor_is_cached_until_the_descriptor_or_pattern_changes(master):
    job = master.submit_job(parse_job(spec(service=True), master.settings.limits))
    first = job_view(job)["jobDescriptor"]
    assert job_view(job)["jobDescriptor"] is first  # views are rendered often: built once
    assert job.descriptor.container.env == ENV
    master.resize_job(job.id, parse_capacity({"desired": 2}))
    again = job_view(job)["jobDescriptor"]
    assert again is not first and again["service"]["capacity"]["desired"] == 2
    assert again["container"]["env"] == expected_view_env()
    narrow = job_view(job, "^DB_")["jobDescriptor"]["container"]["env"]
    assert narrow["GITHUB_TOKEN"] == "ghp-1" and narrow["DB_PASSWORD"] == REDACTED


def parse_capacity(data):
    from titus.master.validation import parse_capacity_update

    return parse_capacity_update(data, MasterSettings().limits)


# the CLI ------------------------------------------------------------------------------------
@pytest.fixture
def cli(client, monkeypatch):
    class PatchedClient:  # the CLI's httpx client, answered by the app in-process
        def __init__(self, base_url, headers=None, timeout=None, **_):
            self.headers = headers or {}

        def request(self, method, path, **kwargs):
            return client.request(method, path, headers=self.headers, **kwargs)

    monkeypatch.setattr("titus.cli.client.httpx.Client", PatchedClient)
    monkeypatch.delenv("TITUS_SECRET_ENV_PATTERN", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def test_cli_json_output_is_redacted(client, cli):
    job_id = client.post("/api/v3/jobs", json=spec()).json()["id"]
    for args in (("job", "get", job_id, "--json"), ("job", "list", "--json"),
                 ("job", "kill", job_id, "--json")):
        r = cli(*args)
        assert r.exit_code == 0, r.output
        assert not any(v in r.output for v in HIDDEN_VALUES)
        shown = json.loads(r.output)
        shown = shown[0] if isinstance(shown, list) else shown
        assert shown["jobDescriptor"]["container"]["env"] == expected_view_env()


def test_cli_redacts_what_a_narrower_master_shows(master, client, cli, monkeypatch):
    master.settings.secret_env_pattern = ""  # this master hides only the listed names
    job_id = client.post("/api/v3/jobs", json=spec()).json()["id"]
    api_env = client.get(f"/api/v3/jobs/{job_id}").json()["jobDescriptor"]["container"]["env"]
    assert api_env == {**ENV, "CUSTOM": REDACTED}
    shown = json.loads(cli("job", "get", job_id, "--json").output)
    assert shown["jobDescriptor"]["container"]["env"] == expected_view_env()
    monkeypatch.setenv("TITUS_SECRET_ENV_PATTERN", "")  # the CLI follows the master's setting
    shown = json.loads(cli("job", "get", job_id, "--json").output)
    assert shown["jobDescriptor"]["container"]["env"] == api_env
    monkeypatch.setenv("TITUS_SECRET_ENV_PATTERN", "(bad")
    r = cli("job", "get", job_id, "--json")
    assert r.exit_code != 0 and "TITUS_SECRET_ENV_PATTERN" in r.output


@pytest.mark.parametrize("env", [{"DB_PASSWORD": {"v": "S3CRET"}}, ["S3CRET"],
                                 {"DB_PASSWORD": "S3CRET\ud800"}, {"DB_PASSWORD": "S3CRET" * 20000}])
def test_a_refused_job_never_echoes_an_env_value(env):
    from titus.master.validation import SpecError, parse_job

    job = {"applicationName": "x", "container": {"image": {"name": "b"}, "env": env},
           "batch": {"size": 1}}
    with pytest.raises(SpecError) as refused:
        parse_job(job)
    assert "S3CRET" not in json.dumps(refused.value.wire())
