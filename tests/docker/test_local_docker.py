"""``titus local --runtime docker``: a master and a Docker agent in one command, tasks run
as real containers, and the containers are gone when the command ends."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.docker.helpers import TEST_IMAGE
from tests.waiting import read_until
from titus.cli.local_cluster import titus_command

pytestmark = pytest.mark.docker

TOKEN = "local-docker-token"


def job(name: str, script: str, **batch) -> dict:
    image, _, tag = TEST_IMAGE.rpartition(":")
    return {"applicationName": name, "owner": {"teamEmail": "t@example.com"},
            "container": {"image": {"name": image, "tag": tag},
                          "entryPoint": ["sh", "-c", script],
                          "resources": {"cpu": 0.1, "memoryMB": 32}},
            "batch": {"size": 1, **batch}}


def wait_state(http, job_id: str, state: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = http.get("/api/v3/tasks", params={"jobId": job_id}).json()["items"]
        if tasks and all(t["status"]["state"] == state for t in tasks):
            return tasks[0]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} tasks never all {state}: {tasks}")


def test_local_docker_runs_tasks_as_containers_and_removes_them_at_exit(docker_client,
                                                                         tmp_path):
    env = dict(os.environ, TITUS_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(titus_command("local", "--runtime", "docker", "--port", "0",
                                          "--pull", "never", "--dir", str(tmp_path / "d")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out, agent = "", ""
    try:
        out = read_until(proc.stdout, "running; press Ctrl-C", 90)
        assert "running; press Ctrl-C" in out, out
        assert "Docker agent(s) on this machine" in out
        url = next(w for w in out.split() if w.startswith("http://127.0.0.1:"))
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {TOKEN}"},
                            timeout=10)
        deadline = time.monotonic() + 60
        while not http.get("/api/v3/hosts").json()["items"]:
            assert time.monotonic() < deadline, "the Docker agent never registered"
            time.sleep(0.2)
        agent = http.get("/api/v3/hosts").json()["items"][0]["agentId"]
        assert agent.startswith("local-docker-")
        ok = http.post("/api/v3/jobs", json=job("ok", "exit 0")).json()["id"]
        assert wait_state(http, ok, "Finished")["status"]["reasonCode"] == "normal"
        long = http.post("/api/v3/jobs", json=job("long", "sleep 600")).json()["id"]
        wait_state(http, long, "Started")
        assert docker_client.containers.list(ignore_removed=True, filters={"label": f"titus.agent_id={agent}"})
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    assert "stopped; store and logs kept" in rest, rest
    assert not docker_client.containers.list(ignore_removed=True, all=True,
                                             filters={"label": f"titus.agent_id={agent}"})
