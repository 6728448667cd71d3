"""The agent's side of its identity: it joins with the bootstrap token, then uses its own
credential, keeps it (and the log token) in its state directory, registers as itself after a
restart, and joins anew when the master no longer knows the credential."""
from __future__ import annotations

import json
import stat
import time

import pytest
from fastapi.testclient import TestClient

from titus.agent.agent import Agent, IdentityFile
from titus.agent.config import AgentConfig
from titus.agent.server import LogGate
from titus.agent.sim import SimRuntime
from titus.master.app import create_app
from titus.master.auth import digest
from titus.master.config import MasterSettings

from tests.master.conftest import make_master
from tests.waiting import wait_until




@pytest.fixture
def master(tmp_path):
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}", agent_token="boot",
                              user_tokens=["user"], heartbeat_interval_sec=0.05,
                              heartbeat_timeout_sec=30.0)
    m = make_master(settings, time.time)
    yield m
    m.store.close()


@pytest.fixture
def client(master):
    with TestClient(create_app(master=master, start_loop=False),
                    client=("127.0.0.1", 50000)) as http:
        yield http


def config(tmp_path, agent_id="ida1") -> AgentConfig:
    return AgentConfig(master_url="http://testserver", agent_id=agent_id, agent_token="boot",
                       hosts=1, heartbeat_interval_sec=0.05, max_backoff_sec=0.2,
                       state_dir=str(tmp_path / "state"))


def agent_of(tmp_path, client, **kwargs) -> Agent:
    return Agent(config(tmp_path), SimRuntime(), client=client, gate=LogGate(), **kwargs)


def kept(tmp_path) -> dict:
    return json.loads(IdentityFile.of(config(tmp_path)).path.read_text())


def test_it_joins_then_uses_and_keeps_its_own_credential(tmp_path, master, client):
    agent = agent_of(tmp_path, client, deregister_on_exit=False)
    agent.start()
    try:
        wait_until(lambda: agent.stats["heartbeats"] >= 3, what="heartbeats")
        # heartbeats with the bootstrap token are refused: these carried the credential
        assert agent.stats["rejected"] == 0
        identity = IdentityFile.of(agent.config).path
        assert stat.S_IMODE(identity.stat().st_mode) == 0o600
        data = kept(tmp_path)
        assert (data["master_url"], data["agent_id"]) == ("http://testserver", "ida1")
        assert master.registry.get("ida1").credential_sha256 == digest(data["credential"])
        assert data["log_token"] == master.agent_log_token("ida1")
        assert agent.gate.closed and agent.gate.allows(f"Bearer {data['log_token']}")
        assert not agent.gate.allows("Bearer boot")
    finally:
        agent.stop()


def test_a_restarted_process_registers_as_itself_at_once(tmp_path, master, client):
    first = agent_of(tmp_path, client, deregister_on_exit=False)  # like a docker agent
    first.start()
    wait_until(lambda: first.stats["heartbeats"] >= 1, what="the first process")
    first.stop()  # the process dies; the master still counts the agent live
    credential = kept(tmp_path)["credential"]
    second = agent_of(tmp_path, client, deregister_on_exit=False)
    assert second.gate.closed  # the log server is closed before any registration
    second.start()
    try:
        wait_until(lambda: second.stats["heartbeats"] >= 1, what="the restarted process")
        assert second.stats["rejected"] == 0 and second.stats["registrations"] == 1
        assert kept(tmp_path)["credential"] == credential
        assert master.registry.get("ida1").credential_sha256 == digest(credential)
    finally:
        second.stop()


def test_a_credential_the_master_does_not_know_is_dropped_for_a_new_one(tmp_path, master,
                                                                        client):
    IdentityFile.of(config(tmp_path)).save({"credential": "from-a-wiped-store",
                                            "log_token": "old"})
    agent = agent_of(tmp_path, client)
    agent.start()
    try:
        wait_until(lambda: agent.stats["heartbeats"] >= 1, what="a heartbeat")
        data = kept(tmp_path)
        assert data["credential"] != "from-a-wiped-store"
        assert master.registry.get("ida1").credential_sha256 == digest(data["credential"])
        assert agent.gate.allows(f"Bearer {master.agent_log_token('ida1')}")
    finally:
        agent.stop()
    # a sim agent leaves on stop: the master forgot the credential, so does the agent
    assert master.registry.get("ida1") is None
    assert not IdentityFile.of(config(tmp_path)).path.exists()


def test_a_file_kept_for_another_master_is_not_presented(tmp_path):
    other = config(tmp_path).model_copy(update={"master_url": "http://elsewhere"})
    IdentityFile.of(other).save({"credential": "theirs", "log_token": "theirs"})
    assert IdentityFile.of(config(tmp_path)).load() == {}
    assert IdentityFile.of(other).load() == {"credential": "theirs", "log_token": "theirs"}


def test_no_state_dir_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TITUS_AGENT_STATE_DIR", "")
    assert AgentConfig(agent_id="x").state_dir is None
    assert IdentityFile.of(AgentConfig(agent_id="x")) is None
    monkeypatch.setenv("TITUS_AGENT_STATE_DIR", str(tmp_path))
    assert AgentConfig(agent_id="x").state_dir == str(tmp_path)
