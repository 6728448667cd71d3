"""TLS between real processes: a ``titus master`` serving HTTPS with a certificate from a CA made
for the test, the ``titus`` CLI and sim agents verifying it with ``--ca``, and the master reading
task logs from an agent whose address is https (``TITUS_AGENT_CA``)."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from titus.cli.local_cluster import titus_command
from titus.tls import client_context

from tests.integration.conftest import FAST_MASTER_ENV
from tests.integration.platform import Platform, batch_job, reason, state
from tests.tls_certs import TestCA, serve_app


class TLSPlatform(Platform):
    """A platform whose master serves HTTPS; the test's own client trusts ``ca``."""

    def __init__(self, workdir, ca: TestCA):
        files = ca.issue("master")
        super().__init__(workdir, master_env={
            **FAST_MASTER_ENV, "TITUS_TLS_CERT": str(files.cert),
            "TITUS_TLS_KEY": str(files.key), "TITUS_AGENT_CA": str(ca.path)})
        self.ca = ca
        self.url = f"https://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTPS client trusting the test CA, authenticated as a user."""
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=timeout,
                            verify=client_context(str(self.ca.path)))

    def wait_master_ready(self, timeout: float = 60.0) -> None:
        """Block until the master answers HTTPS requests."""
        deadline = time.monotonic() + timeout
        with self.client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                assert self.master.poll() is None, self.log_tail("master.log")
                try:
                    if http.get("/api/v3/jobs").status_code < 500:
                        return
                except httpx.HTTPError:
                    time.sleep(0.1)
        raise TimeoutError(f"no HTTPS answer from {self.url}:\n{self.log_tail('master.log')}")


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_platform(ca, tmp_path_factory):
    """One HTTPS master for the module; each test stops the agents it started."""
    with TLSPlatform(tmp_path_factory.mktemp("cluster"), ca) as plat:
        plat.start_master()
        yield plat
        dead = plat.crashed()
        assert not dead, f"processes died during the test: {dead}\n{plat.log_tail('master.log')}"


def titus(*args: str, ca: str | None = None) -> subprocess.CompletedProcess:
    """``titus <args>`` as a process, with ``--ca`` when given and no TLS environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TITUS_CA", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    argv = titus_command(*args, *(["--ca", ca] if ca else []))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_the_cli_lists_jobs_with_the_ca(tls_platform, ca):
    job_id = tls_platform.submit(batch_job(1, duration=3600, name="tls-listed"))
    try:
        listed = titus("job", "list", "--url", tls_platform.url, "--token", tls_platform.token,
                       "--json", ca=str(ca.path))
        assert listed.returncode == 0, listed.stderr
        assert job_id in listed.stdout
    finally:
        tls_platform.kill_job(job_id)


def test_the_cli_without_the_ca_fails_with_a_certificate_error(tls_platform):
    refused = titus("job", "list", "--url", tls_platform.url, "--token", tls_platform.token)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"Error: cannot reach the master at {tls_platform.url}: "
                                     "its certificate is not trusted")
    assert "--ca FILE" in refused.stderr


def test_plain_http_to_the_tls_port_fails(tls_platform):
    plain = f"http://127.0.0.1:{tls_platform.port}"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/api/v3/jobs", timeout=5)
    refused = titus("job", "list", "--url", plain, "--token", tls_platform.token)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "use an https:// URL" in refused.stderr


def test_a_sim_agent_with_the_ca_registers_and_runs_a_task(tls_platform, ca):
    tls_platform.start_agent("tls-a1", hosts=1, cpus=4, extra_args=("--ca", str(ca.path)))
    try:
        job_id = tls_platform.submit(batch_job(1, duration=0.2, name="tls-run"))
        job = tls_platform.wait_job_finished(job_id, timeout=60)
        assert reason(job) == "normal"
        (task,) = tls_platform.tasks(job_id)
        assert (state(task), reason(task), task["hostId"]) == ("Finished", "normal",
                                                              "tls-a1-h00000")
        assert task["id"] in tls_platform.launched_task_ids()
    finally:
        tls_platform.kill_agent("tls-a1", signal.SIGTERM)


def test_an_agent_without_the_ca_is_not_let_in(tls_platform):
    tls_platform.start_agent("tls-stranger")
    try:
        log = tls_platform.workdir / "agent-tls-stranger.log"
        tls_platform.wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in log.read_text(), 30,
                              "the agent to log the certificate failure")
        hosts = tls_platform.api.get("/api/v3/hosts").json()["items"]
        assert "tls-stranger" not in {host["agentId"] for host in hosts}
        assert tls_platform.agents["tls-stranger"].poll() is None  # it keeps trying
    finally:
        tls_platform.kill_agent("tls-stranger", signal.SIGTERM)


def _agent_logs_app(seen: list) -> FastAPI:
    """An agent's log endpoint over HTTPS, recording the master's credentials."""
    app = FastAPI()

    @app.get("/tasks/{task_id}/logs")
    def logs(task_id: str, request: Request):
        seen.append(request.headers.get("authorization"))
        return PlainTextResponse(f"{task_id} read over https\n")

    return app


def test_the_master_reads_logs_from_an_https_agent_address(tls_platform, ca):
    seen: list = []
    with serve_app(_agent_logs_app(seen), ca.issue("agent")) as agent_url:
        tls_platform.start_agent("tls-logs", extra_args=("--ca", str(ca.path),
                                                         "--advertise-url", agent_url))
        try:
            job_id = tls_platform.submit(batch_job(1, duration=3600, name="tls-logs"))
            (task,) = tls_platform.wait_for(lambda: tls_platform.running(job_id), 30,
                                            "the task to start")
            logs = titus("task", "logs", task["id"], "--url", tls_platform.url,
                         "--token", tls_platform.token, ca=str(ca.path))
            assert logs.returncode == 0, logs.stderr
            assert logs.stdout == f"{task['id']} read over https\n"
            (credential,) = seen  # the master's credential for agents went over TLS
            assert credential and credential.startswith("Bearer ")
            tls_platform.kill_job(job_id)
        finally:
            tls_platform.kill_agent("tls-logs", signal.SIGTERM)
