"""TLS in process: the master's certificate checks and start-up errors, CA bundles of the CLI
and the agent with their error messages, and the master reading task logs from an https agent.

Certificates come from a CA made for the test (tests/tls_certs.py); processes talking TLS to a
real ``titus master`` are in tests/integration/test_tls.py.
"""
from __future__ import annotations

import shutil
import ssl

import click
import pytest
from click.testing import CliRunner
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from pydantic import ValidationError

from titus.agent.config import AgentConfig
from titus.cli import main
from titus.cli.client import Client
from titus.master.app import create_app
from titus.tls import TLSConfigError, check_server_files, client_context

from tests.master.conftest import Clock, make_master
from tests.tls_certs import TestCA, serve_app

SIM_JOB = {
    "applicationName": "tls", "owner": {"teamEmail": "tls@example.com"},
    "container": {"image": {"name": "sim", "tag": "latest"},
                  "resources": {"cpu": 1, "memoryMB": 512}},
    "batch": {"size": 1, "retryPolicy": {"immediate": {"retries": 0}}},
}


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def server(ca):
    return ca.issue()


@pytest.fixture(scope="module")
def stranger(tmp_path_factory) -> TestCA:
    """A CA nobody was told to trust."""
    return TestCA(tmp_path_factory.mktemp("stranger"), "stranger")


def fake_master() -> FastAPI:
    """Enough of the master's API for the CLI: an empty job list and one task's logs."""
    app = FastAPI()

    @app.get("/api/v3/jobs")
    def jobs():
        return {"items": [], "pagination": {"hasMore": False}}

    @app.get("/api/v3/tasks/{task_id}/logs")
    def logs(task_id: str):
        return PlainTextResponse(f"output of {task_id}\n")

    return app


def run_cli(*args: str, env: dict | None = None):
    """``titus <args>`` in process, with no TLS settings inherited from the environment."""
    clean = {"TITUS_CA": None, "TITUS_TLS_CERT": None, "TITUS_TLS_KEY": None,
             "TITUS_AGENT_CA": None, **(env or {})}
    return CliRunner().invoke(main, list(args), env=clean)


# -- the master's certificate and key -----------------------------------------------------


def test_a_matching_pair_passes_without_warnings(server):
    assert check_server_files(str(server.cert), str(server.key)) == []
    assert check_server_files(None, None) == []


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_other_users_can_read_gets_a_warning(server, tmp_path, mode):
    key = tmp_path / "server.key"
    shutil.copy(server.key, key)
    key.chmod(mode)
    (warning,) = check_server_files(str(server.cert), str(key))
    assert "readable by other users" in warning and f"chmod 600 {key}" in warning


def _bad_pair(case, server, stranger, tmp_path):
    other = stranger.issue("other")
    return {
        "cert only": (str(server.cert), None),
        "key only": (None, str(server.key)),
        "missing cert": (str(tmp_path / "nope.crt"), str(server.key)),
        "missing key": (str(server.cert), str(tmp_path / "nope.key")),
        "directory": (str(tmp_path), str(server.key)),
        "key of another cert": (str(server.cert), str(other.key)),
        "not a key": (str(server.cert), str(server.cert)),
    }[case]


@pytest.mark.parametrize("case, message", [
    ("cert only", "tls_cert is set but tls_key is not"),
    ("key only", "tls_key is set but tls_cert is not"),
    ("missing cert", "nope.crt does not exist"),
    ("missing key", "nope.key does not exist"),
    ("directory", "is a directory, not a file"),
    ("key of another cert", "not a matching pair"),
    ("not a key", "cannot use TLS certificate"),
])
def test_unusable_files_are_one_clear_error(case, message, server, stranger, tmp_path):
    cert, key = _bad_pair(case, server, stranger, tmp_path)
    with pytest.raises(TLSConfigError, match=message):
        check_server_files(cert, key)


def test_the_master_command_refuses_bad_tls_files_before_opening_the_store(server, tmp_path):
    store = tmp_path / "m.db"
    result = run_cli("master", "--store", f"sqlite:///{store}", "--token", "t",
                     "--agent-token", "a",
                     "--tls-cert", str(tmp_path / "missing.crt"), "--tls-key", str(server.key))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert f"Error: TLS certificate {tmp_path / 'missing.crt'} does not exist" in result.output
    assert not store.exists()


def test_the_master_reads_tls_files_from_the_environment(server, tmp_path):
    result = run_cli("master", "--store", f"sqlite:///{tmp_path / 'm.db'}", "--token", "t",
                     "--agent-token", "a",
                     env={"TITUS_TLS_CERT": str(server.cert)})
    assert result.exit_code == 1 and "tls_cert is set but tls_key is not" in result.output
    result = run_cli("master", "--store", f"sqlite:///{tmp_path / 'm.db'}", "--token", "t",
                     "--agent-token", "a",
                     env={"TITUS_AGENT_CA": str(server.key)})
    assert result.exit_code == 1 and f"CA bundle {server.key} holds no usable" in result.output


def test_an_unreadable_key_is_a_clear_error(server, tmp_path, monkeypatch):
    key = tmp_path / "locked.key"
    shutil.copy(server.key, key)
    key.chmod(0)
    real_open = open

    def deny(path, *args, **kwargs):  # root reads any file: refuse as the kernel would
        if str(path) == str(key):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("titus.tls.open", deny, raising=False)
    result = run_cli("master", "--store", f"sqlite:///{tmp_path / 'm.db'}", "--token", "t",
                     "--agent-token", "a",
                     "--tls-cert", str(server.cert), "--tls-key", str(key))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"Error: cannot read TLS key {key}: Permission denied" in result.output


# -- clients' CA bundles ------------------------------------------------------------------


def test_client_contexts_always_verify(ca):
    for context in (client_context(str(ca.path)), client_context(None)):
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("name, message", [("missing.pem", "does not exist"),
                                           ("garbage.pem", "holds no usable PEM certificate")])
def test_an_unusable_ca_bundle_is_a_clear_error(tmp_path, name, message):
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    with pytest.raises(TLSConfigError, match=message):
        client_context(str(tmp_path / name))


def test_the_agent_takes_its_ca_from_the_flag_or_titus_ca(ca, tmp_path, monkeypatch):
    assert AgentConfig(ca=str(ca.path)).ca == str(ca.path)
    monkeypatch.setenv("TITUS_CA", str(ca.path))
    assert AgentConfig().ca == str(ca.path)
    (tmp_path / "garbage.pem").write_text("nope")
    with pytest.raises(ValidationError, match="holds no usable PEM certificate"):
        AgentConfig(ca=str(tmp_path / "garbage.pem"))


def test_the_cli_verifies_the_master_against_its_ca(ca, server):
    with serve_app(fake_master(), server) as url:
        assert Client(url, ca=str(ca.path)).request("GET", "/api/v3/jobs")["items"] == []
        listed = run_cli("job", "list", "--url", url, "--ca", str(ca.path), "--json")
        assert listed.exit_code == 0, listed.output
        assert listed.output.strip() == "[]"
        from_env = run_cli("job", "list", "--url", url, "--json", env={"TITUS_CA": str(ca.path)})
        assert from_env.exit_code == 0, from_env.output
        logs = run_cli("task", "logs", "t-1", "--url", url, "--ca", str(ca.path))
        assert logs.exit_code == 0 and logs.output == "output of t-1\n"


def test_the_cli_says_why_it_cannot_trust_or_reach_the_master(ca, server, stranger):
    with serve_app(fake_master(), server) as url, serve_app(fake_master()) as plain_url:
        untrusted = run_cli("job", "list", "--url", url)
        assert untrusted.exit_code == 1 and isinstance(untrusted.exception, SystemExit)
        assert "its certificate is not trusted" in untrusted.output
        assert "--ca FILE (env TITUS_CA)" in untrusted.output
        wrong_ca = run_cli("task", "logs", "t-1", "--url", url, "--ca", str(stranger.path))
        assert wrong_ca.exit_code == 1 and "its certificate is not trusted" in wrong_ca.output
        plain = url.replace("https://", "http://")
        assert "use an https:// URL" in run_cli("job", "list", "--url", plain).output
        not_tls = plain_url.replace("http://", "https://")
        assert "the TLS handshake failed" in run_cli("job", "list", "--url", not_tls).output


def test_the_cli_names_a_certificate_for_another_host(tmp_path, ca):
    elsewhere = ca.issue("elsewhere", hosts=("titus.example.com",))
    with serve_app(fake_master(), elsewhere) as url:
        with pytest.raises(click.ClickException, match="does not name this host"):
            Client(url, ca=str(ca.path)).request("GET", "/api/v3/jobs")


# -- the master reading logs from an https agent --------------------------------------------


def fake_agent(seen: list) -> FastAPI:
    """An agent's log endpoint, recording who asked."""
    app = FastAPI()

    @app.get("/tasks/{task_id}/logs")
    def logs(task_id: str, request: Request):
        seen.append(request.headers.get("authorization"))
        return PlainTextResponse(f"{task_id} over https\n")

    return app


def test_the_master_reads_task_logs_from_an_https_agent_with_agent_ca(ca, server, tmp_path):
    from titus.master.config import MasterSettings

    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}", agent_token="secret",
                              user_tokens=["user-secret"])
    master = make_master(settings, Clock())
    seen: list = []
    agent_auth = {"Authorization": "Bearer secret"}
    try:
        with serve_app(fake_agent(seen), server) as agent_url, \
                TestClient(create_app(master=master, start_loop=False),
                           headers={"Authorization": "Bearer user-secret"},
                           client=("127.0.0.1", 50000)) as client:  # the agent's own address
            registration = {"agent_id": "a1", "address": agent_url,
                            "hosts": [{"host_id": "h1", "cpus": 2, "memory_mb": 4096}]}
            assert client.post("/api/v3/agents/register", json=registration,
                               headers=agent_auth).status_code == 200
            assert client.post("/api/v3/jobs", json=SIM_JOB).status_code == 202
            master.scheduling.run_round(force=True)
            (task_id,) = list(master.tasks)
            # the system store does not know the test CA: the agent is not trusted
            refused = client.get(f"/api/v3/tasks/{task_id}/logs")
            assert refused.status_code == 409 and seen == []
            master.settings.agent_ca = str(ca.path)
            answer = client.get(f"/api/v3/tasks/{task_id}/logs")
            assert answer.status_code == 200 and answer.text == f"{task_id} over https\n"
            (credential,) = seen  # the master's credential for agents went over TLS
            assert credential and credential.startswith("Bearer ")
    finally:
        master.store.close()
