"""Per-agent credentials with real processes: a sim agent joins with the bootstrap token, runs
tasks with its own credential, registers as itself after ``kill -9`` and after a master
restart, and its log server answers the master only."""
from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from tests.integration.conftest import FAST_MASTER_ENV
from tests.integration.platform import Platform, batch_job, reason, state

# A silent agent stays live this long: registering over it with the bootstrap token would be
# refused all that time, so a quick re-registration shows the agent used its own credential.
ENV = {**FAST_MASTER_ENV, "TITUS_HEARTBEAT_TIMEOUT_SEC": "30"}


@pytest.fixture
def plat(tmp_path, monkeypatch):
    """A master on SQLite; agents keep their identity in ``tmp_path/agent-state``."""
    monkeypatch.setenv("TITUS_AGENT_STATE_DIR", str(tmp_path / "agent-state"))
    with Platform(tmp_path / "cluster", master_env=ENV) as platform:
        platform.start_master()
        yield platform


def identity(tmp_path) -> dict:
    """What the agent kept, or {} before it has written it (it writes after the master
    already counts it registered)."""
    paths = list((tmp_path / "agent-state").glob("agent-*.json"))
    assert len(paths) <= 1, paths
    return json.loads(paths[0].read_text()) if paths else {}


def agent_view(plat: Platform, agent_id: str):
    return {a["id"]: a for a in plat.api.get("/api/v3/agents").json()["items"]}.get(agent_id)


def run_one(plat: Platform, name: str, timeout: float = 30) -> dict:
    job_id = plat.submit(batch_job(1, duration=0.2, name=name))
    job = plat.wait_job_finished(job_id, timeout=timeout)
    assert reason(job) == "normal"
    return plat.tasks(job_id)[0]


def test_a_sim_agent_uses_its_own_credential_across_restarts(plat, tmp_path):
    plat.start_agent("ida", hosts=2, cpus=4)
    plat.wait_for(lambda: (agent_view(plat, "ida") or {}).get("registered"), 30,
                  "the agent to register")
    credential = plat.wait_for(lambda: identity(tmp_path).get("credential"), 10,
                               "the agent to keep its credential")
    own = {"Authorization": f"Bearer {credential}"}
    boot = {"Authorization": f"Bearer {plat.agent_token}"}
    beat = f"{plat.url}/api/v3/agents/ida/heartbeat"
    assert httpx.post(beat, json={}, headers=own).status_code == 200
    assert httpx.post(beat, json={}, headers=boot).status_code == 403

    task = run_one(plat, "before")
    assert (state(task), task["agentId"]) == ("Finished", "ida")
    logs = plat.api.get(f"/api/v3/tasks/{task['id']}/logs")
    assert logs.status_code == 200 and "started on host" in logs.text
    address = agent_view(plat, "ida")["address"]
    assert httpx.get(f"{address}/tasks/{task['id']}/logs").status_code == 401

    # a hostile process with the bootstrap token
    hosts = [{"host_id": "ida-h00000", "cpus": 4, "memory_mb": 4096}]
    register = f"{plat.url}/api/v3/agents/register"
    assert httpx.post(register, headers=boot,
                      json={"agent_id": "ida", "hosts": hosts}).status_code == 409
    assert httpx.post(register, headers=boot,
                      json={"agent_id": "evil", "hosts": hosts}).status_code == 409
    assert httpx.delete(f"{plat.url}/api/v3/agents/ida", headers=boot).status_code == 403

    # kill -9 and start again: the master still counts the old process live
    plat.kill_agent("ida", signal.SIGKILL)
    began = time.monotonic()
    plat.start_agent("ida", hosts=2, cpus=4)
    task = run_one(plat, "after-agent-restart", timeout=20)
    assert task["agentId"] == "ida" and time.monotonic() - began < 20
    assert identity(tmp_path)["credential"] == credential  # the same identity, not a new one
    assert "409" not in (plat.workdir / "agent-ida.log").read_text()

    # a master restart: the credential is in the store
    plat.kill_master(signal.SIGKILL)
    plat.start_master()
    task = run_one(plat, "after-master-restart")
    assert task["agentId"] == "ida"
    assert identity(tmp_path)["credential"] == credential
    assert httpx.post(beat, json={}, headers=own).status_code == 200
    logs = plat.api.get(f"/api/v3/tasks/{task['id']}/logs")
    assert logs.status_code == 200 and "started on host" in logs.text


def test_a_forwarded_for_header_does_not_stand_in_for_the_source(plat):
    """The registration's source is the TCP peer: a proxy header cannot move it elsewhere."""
    boot = {"Authorization": f"Bearer {plat.agent_token}", "X-Forwarded-For": "127.0.0.2"}
    reg = {"agent_id": "fwd", "address": "http://127.0.0.2:7555",
           "hosts": [{"host_id": "fwd-h", "cpus": 1, "memory_mb": 512}]}
    r = httpx.post(f"{plat.url}/api/v3/agents/register", json=reg, headers=boot)
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "address"
