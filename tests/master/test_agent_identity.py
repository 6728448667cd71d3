"""Per-agent identity and no request forgery (docs/security.md, "Agents", "Request forgery").

Two honest agents join with the bootstrap token and get their own credentials; a hostile third
holds the bootstrap token too. In-process checks call the facade with principals; HTTP checks
go through the app (``TestClient`` calls come from the address given as ``client``).
"""
from __future__ import annotations

import socket
import threading

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.master.conftest import ScriptedAgent, make_master
from tests.tls_certs import serve_app
from titus.agent.server import LogGate, create_app as agent_app
from titus.master import store_schema as S
from titus.master.agents import LOG_TOKEN_KEY, address_problem, logs_url
from titus.master.app import create_app
from titus.master.auth import AGENT, ANONYMOUS, BOOTSTRAP, digest, principal
from titus.master.errors import Conflict, Forbidden
from titus.protocol import RegisterRequest, TaskStatusMsg

BOOT = principal(BOOTSTRAP, [AGENT])
JOB = {"applicationName": "logs", "container": {"image": {"name": "sim"}}, "batch": {"size": 1}}


def request_of(agent: ScriptedAgent, hosts=None, agent_id=None) -> RegisterRequest:
    return RegisterRequest(agent_id=agent_id or agent.id,
                           hosts=hosts if hosts is not None else agent.hosts)


def join(master, agent: ScriptedAgent):
    """Register ``agent`` with the bootstrap token; returns its principal and the reply."""
    reply = master.register_agent(request_of(agent), BOOT)
    return master.agent_principal(reply.credential), reply


@pytest.fixture
def cluster(master):
    """Agents a1 and a2 joined with the bootstrap token, and a hostile a3 (not joined)."""
    a1, a2 = ScriptedAgent(master, "a1", hosts=2), ScriptedAgent(master, "a2", hosts=1)
    (p1, r1), (p2, r2) = join(master, a1), join(master, a2)
    return {"a1": a1, "a2": a2, "a3": ScriptedAgent(master, "a3", hosts=1), "p1": p1, "p2": p2,
            "r1": r1, "r2": r2}


# -- credentials ------------------------------------------------------------------------------

def test_a_bootstrap_registration_hands_out_a_credential_and_stores_only_its_digest(master,
                                                                                    cluster):
    r1, r2 = cluster["r1"], cluster["r2"]
    assert r1.credential and r2.credential and r1.credential != r2.credential
    assert cluster["p1"].agent_id == "a1" and cluster["p2"].agent_id == "a2"
    assert master.registry.get("a1").credential_sha256 == digest(r1.credential)
    with master.store.engine.connect() as conn:
        rows = {r.id: r.credential_sha256 for r in conn.execute(select(S.agents))}
        stored_log_token = conn.execute(select(S.meta.c.value).where(
            S.meta.c.key == LOG_TOKEN_KEY)).scalar()
    assert rows == {"a1": digest(r1.credential), "a2": digest(r2.credential)}
    # one log secret for the cluster, kept in the store for every master; each agent is
    # handed its own log token derived from it, which opens its own log server only
    assert stored_log_token and r1.log_token and r2.log_token
    assert len({r1.log_token, r2.log_token, stored_log_token}) == 3
    assert master.agent_log_token("a1") == r1.log_token
    assert master.agent_log_token("a2") == r2.log_token


def test_an_agent_re_registers_with_its_credential_and_keeps_it(master, cluster):
    again = master.register_agent(request_of(cluster["a1"]), cluster["p1"])
    assert again.credential is None  # it has its own already
    assert again.log_token == cluster["r1"].log_token
    assert master.agent_principal(cluster["r1"].credential) == cluster["p1"]


def test_insecure_master_issues_nothing_and_keeps_the_take_over(master):
    a1 = ScriptedAgent(master, "a1", hosts=1)
    reply = a1.register()
    assert reply.credential is None and reply.log_token is None
    assert master.registry.get("a1").credential_sha256 == ""
    # an agent restarted under a new id on the same machine still takes the host
    master.register_agent(RegisterRequest(agent_id="a1-new", hosts=a1.hosts), ANONYMOUS)
    assert master.registry.agent_of_host(a1.hosts[0].host_id) == "a1-new"
    assert master.agent_log_token("a1") is None


# -- the hostile third ------------------------------------------------------------------------

def test_the_third_cannot_take_a_live_agents_hosts(master, cluster):
    a1, a3 = cluster["a1"], cluster["a3"]
    with pytest.raises(Conflict) as refused:
        master.register_agent(request_of(a3, hosts=[a3.hosts[0], a1.hosts[1]]), BOOT)
    assert a1.hosts[1].host_id in str(refused.value)
    assert refused.value.field == "hosts[1].host_id"
    assert master.registry.agent_of_host(a1.hosts[1].host_id) == "a1"
    assert master.registry.get("a3") is None  # refused whole


def test_the_third_cannot_register_over_a_live_agents_id(master, cluster):
    with pytest.raises(Conflict) as refused:
        master.register_agent(request_of(cluster["a3"], agent_id="a1",
                                         hosts=cluster["a3"].hosts), BOOT)
    assert refused.value.field == "agent_id"
    assert master.registry.get("a1").credential_sha256 == digest(cluster["r1"].credential)


def test_heartbeats_and_deregistration_need_the_agents_own_credential(master, cluster):
    for who in (BOOT, cluster["p2"]):
        with pytest.raises(Forbidden):
            master.heartbeat("a1", [], [], who)
        with pytest.raises(Forbidden):
            master.deregister_agent("a1", who)
    assert master.heartbeat("a1", [], [], cluster["p1"]) is True
    assert master.registry.get("a1") is not None


def test_an_agent_may_not_register_as_another(master, cluster):
    with pytest.raises(Forbidden):
        master.register_agent(request_of(cluster["a2"]), cluster["p1"])


def test_reports_about_other_agents_tasks_are_ignored(master, cluster):
    p1, p2 = cluster["p1"], cluster["p2"]
    master.submit_job(_descriptor())
    master.scheduling.run_round(force=True)
    (task,) = master.tasks.values()
    assert task.agent_id in ("a1", "a2")
    owner, other = (p1, p2) if task.agent_id == "a1" else (p2, p1)
    lie = TaskStatusMsg(task_id=task.id, state="Finished", reason="normal", exit_code=0,
                        host_id=task.host_id)
    master.heartbeat(other.agent_id, [lie], [], other)
    assert master.tasks[task.id].state == "Launched"
    master.heartbeat(owner.agent_id, [TaskStatusMsg(task_id=task.id, state="Started",
                                                    host_id=task.host_id)], [], owner)
    assert master.tasks[task.id].state == "Started"


def test_a_silent_agent_gives_up_its_hosts_and_its_id(master, cluster, clock):
    a1, a3 = cluster["a1"], cluster["a3"]
    clock.advance(master.settings.heartbeat_timeout_sec + 1)  # a1 silent, not yet lost
    master.heartbeat("a2", [], [], cluster["p2"])
    master.register_agent(request_of(a3, hosts=[a1.hosts[0]]), BOOT)
    assert master.registry.agent_of_host(a1.hosts[0].host_id) == "a3"
    with pytest.raises(Conflict):  # a2 is live: its host stays
        master.register_agent(request_of(a3, hosts=cluster["a2"].hosts), BOOT)
    # the id of a silent agent (with the host it still has)
    taken = master.register_agent(request_of(a1, hosts=[a1.hosts[1]]), BOOT)
    assert taken.credential and master.agent_principal(cluster["r1"].credential) is None


# -- a master restart -------------------------------------------------------------------------

def test_credentials_and_the_log_token_survive_a_master_restart(master, cluster, clock):
    r1 = cluster["r1"]
    master.store.close()
    again = make_master(master.settings, clock)
    try:
        p1 = again.agent_principal(r1.credential)
        assert p1 is not None and p1.agent_id == "a1"
        assert again.heartbeat("a1", [], [], p1) is False  # not registered here: register again
        assert again.register_agent(request_of(cluster["a1"]), p1).credential is None
        assert again.heartbeat("a1", [], [], p1) is True
        with pytest.raises(Forbidden):
            again.heartbeat("a1", [], [], again.agent_principal(cluster["r2"].credential))
        assert again.agent_log_token("a1") == r1.log_token
    finally:
        again.store.close()


# -- over HTTP --------------------------------------------------------------------------------

@pytest.fixture
def secure(master):
    """The app of a master with a user token and the bootstrap token, and helpers."""
    master.settings.user_tokens = ["user-secret"]
    master.settings.agent_token = "boot-secret"
    return master


def http(master, source: str = "127.0.0.1") -> TestClient:
    return TestClient(create_app(master=master, start_loop=False), client=(source, 50000))


BOOT_AUTH = {"Authorization": "Bearer boot-secret"}
USER_AUTH = {"Authorization": "Bearer user-secret"}


def registration(agent_id: str, host: str, address: str = "") -> dict:
    return {"agent_id": agent_id, "address": address,
            "hosts": [{"host_id": host, "cpus": 2, "memory_mb": 4096}]}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_over_http_the_third_is_refused_and_the_agents_use_their_credentials(secure):
    with http(secure) as client:
        r1 = client.post("/api/v3/agents/register", json=registration("a1", "h1"),
                         headers=BOOT_AUTH)
        r2 = client.post("/api/v3/agents/register", json=registration("a2", "h2"),
                         headers=BOOT_AUTH)
        assert r1.status_code == r2.status_code == 200
        own1, own2 = bearer(r1.json()["credential"]), bearer(r2.json()["credential"])
        beat = "/api/v3/agents/a1/heartbeat"
        assert client.post(beat, json={}, headers=own1).json()["reregister"] is False
        # the hostile third, with the bootstrap token
        taken = client.post("/api/v3/agents/register", json=registration("a3", "h1"),
                            headers=BOOT_AUTH)
        assert taken.status_code == 409 and "h1" in taken.json()["error"]
        assert taken.json()["problems"][0]["field"] == "hosts[0].host_id"
        over = client.post("/api/v3/agents/register", json=registration("a1", "h3"),
                           headers=BOOT_AUTH)
        assert over.status_code == 409
        assert client.post(beat, json={}, headers=BOOT_AUTH).status_code == 403
        assert client.delete("/api/v3/agents/a1", headers=BOOT_AUTH).status_code == 403
        # nor may the other agent act for a1
        assert client.post(beat, json={}, headers=own2).status_code == 403
        assert client.delete("/api/v3/agents/a1", headers=own2).status_code == 403
        assert client.post("/api/v3/agents/register", json=registration("a1", "h1"),
                           headers=own2).status_code == 403
        agents = {a["id"]: a for a in client.get("/api/v3/agents", headers=USER_AUTH).json()[
            "items"]}
        assert agents["a1"]["hosts"] == ["h1"] and "a3" not in agents
        # a1 itself may re-register and leave; its credential leaves with it
        assert client.post("/api/v3/agents/register", json=registration("a1", "h1"),
                           headers=own1).status_code == 200
        assert client.delete("/api/v3/agents/a1", headers=own1).status_code == 200
        assert client.post(beat, json={}, headers=own1).status_code == 401


class Listener:
    """A TCP port that counts the connections made to it (and answers nothing)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener():
    one = Listener()
    yield one
    one.close()


def test_a_forged_address_is_refused_and_never_contacted(secure, listener):
    forged = f"http://127.0.0.1:{listener.port}/internal/admin?x="
    with http(secure, source="10.1.2.3") as client:
        refused = client.post("/api/v3/agents/register", headers=BOOT_AUTH,
                              json=registration("evil", "h-evil", forged))
        assert refused.status_code == 400
        assert [p["field"] for p in refused.json()["problems"]] == ["address"]
        # a clean base URL is still refused from another machine than the one it names
        elsewhere = client.post("/api/v3/agents/register", headers=BOOT_AUTH,
                                json=registration("evil", "h-evil",
                                                  f"http://127.0.0.1:{listener.port}"))
        assert elsewhere.status_code == 400
        assert elsewhere.json()["problems"][0]["field"] == "address"
        assert secure.registry.get("evil") is None
    with http(secure) as client:  # from 127.0.0.1 itself, the path and query are still refused
        assert client.post("/api/v3/agents/register", headers=BOOT_AUTH,
                           json=registration("evil", "h-evil", forged)).status_code == 400
    assert listener.connections == 0


def test_an_address_stored_unchecked_is_never_contacted(secure, listener):
    # registered in-process (no HTTP source to check), as an old store might hold it
    secure.register_agent(RegisterRequest.model_validate(registration(
        "old", "h-old", f"http://127.0.0.1:{listener.port}/internal/admin?x=")))
    with http(secure) as client:
        assert client.post("/api/v3/jobs", json=JOB, headers=USER_AUTH).status_code == 202
        secure.scheduling.run_round(force=True)
        (task_id,) = list(secure.tasks)
        answer = client.get(f"/api/v3/tasks/{task_id}/logs", headers=USER_AUTH)
        assert answer.status_code == 409
    assert listener.connections == 0


class FakeRuntime:
    """Just enough of a runtime for the agent's log server."""

    name = "sim"

    def logs(self, task_id: str, follow: bool = False):
        return iter([f"output of {task_id}\n".encode()])


def test_logs_are_read_with_the_log_token_and_refused_without_it(secure):
    import httpx

    gate = LogGate()
    with serve_app(agent_app(FakeRuntime(), agent_id="logs-agent", gate=gate)) as url, \
            http(secure) as client:
        reply = client.post("/api/v3/agents/register", headers=BOOT_AUTH,
                            json=registration("logs-agent", "h-logs", url))
        assert reply.status_code == 200, reply.text
        log_token = reply.json()["log_token"]
        gate.set(log_token)  # what the agent does with the reply
        assert client.post("/api/v3/jobs", json=JOB, headers=USER_AUTH).status_code == 202
        secure.scheduling.run_round(force=True)
        (task_id,) = list(secure.tasks)
        through = client.get(f"/api/v3/tasks/{task_id}/logs", headers=USER_AUTH)
        assert through.status_code == 200 and through.text == f"output of {task_id}\n"
        direct = httpx.get(f"{url}/tasks/{task_id}/logs")
        assert direct.status_code == 401
        assert httpx.get(f"{url}/tasks/{task_id}/logs",
                         headers=bearer("boot-secret")).status_code == 401
        assert httpx.get(f"{url}/tasks/{task_id}/logs",
                         headers=bearer(log_token)).status_code == 200


def test_an_agents_log_token_does_not_open_another_agents_log_server(secure):
    """Every agent is handed a log token; a hostile one (it holds the bootstrap token, or an
    agent was taken over) must not read the task logs of the other agents with its own."""
    import httpx

    gate = LogGate()
    with serve_app(agent_app(FakeRuntime(), agent_id="honest", gate=gate)) as url, \
            http(secure) as client:
        honest = client.post("/api/v3/agents/register", headers=BOOT_AUTH,
                             json=registration("honest", "h-honest", url))
        assert honest.status_code == 200, honest.text
        gate.set(honest.json()["log_token"])
        hostile = client.post("/api/v3/agents/register", headers=BOOT_AUTH,
                              json={"agent_id": "hostile", "hosts": []})
        assert hostile.status_code == 200, hostile.text
        assert hostile.json()["log_token"] != honest.json()["log_token"]
        assert client.post("/api/v3/jobs", json=JOB, headers=USER_AUTH).status_code == 202
        secure.scheduling.run_round(force=True)
        task_id = next(t.id for t in secure.tasks.values() if t.agent_id == "honest")
        stolen = httpx.get(f"{url}/tasks/{task_id}/logs",
                           headers=bearer(hostile.json()["log_token"]))
        assert stolen.status_code == 401
        # the master still reads it, with the honest agent's own token
        through = client.get(f"/api/v3/tasks/{task_id}/logs", headers=USER_AUTH)
        assert through.status_code == 200 and through.text == f"output of {task_id}\n"


def test_the_master_presents_the_log_token_on_the_fixed_path(secure):
    seen = []
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next):
        seen.append((request.url.path, request.headers.get("authorization")))
        return await call_next(request)

    @app.get("/tasks/{task_id}/logs")
    def logs(task_id: str):
        return PlainTextResponse(task_id)

    with serve_app(app) as url, http(secure) as client:
        reply = client.post("/api/v3/agents/register", headers=BOOT_AUTH,
                            json=registration("quiet", "h-q", url + "/"))
        assert reply.status_code == 200, reply.text
        assert client.post("/api/v3/jobs", json=JOB, headers=USER_AUTH).status_code == 202
        secure.scheduling.run_round(force=True)
        (task_id,) = list(secure.tasks)
        assert client.get(f"/api/v3/tasks/{task_id}/logs", headers=USER_AUTH).status_code == 200
    assert seen == [(f"/tasks/{task_id}/logs", f"Bearer {reply.json()['log_token']}")]


# -- addresses --------------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "http://127.0.0.1:1/internal/admin?x=", "http://127.0.0.1:1/x", "http://127.0.0.1:1?x",
    "http://127.0.0.1:1#x", "http://user@127.0.0.1:1", "file:///etc/passwd", "gopher://127.0.0.1",
    "http://127.0.0.1:99999", "http://127.0.0.1:0", "http://", "http://127.0.0.1 :1",
    "http://127.0.0.1\\@evil:1",
])
def test_only_base_urls_are_addresses(address):
    assert address_problem(address, None)


@pytest.mark.parametrize("address,source,ok", [
    ("", "10.0.0.1", True),
    ("http://10.0.0.1:7002", "10.0.0.1", True),
    ("https://10.0.0.1:7002/", "10.0.0.1", True),
    ("http://[::1]:7002", "::1", True),
    ("http://127.0.0.1:7002", "::ffff:127.0.0.1", True),
    ("http://10.0.0.2:7002", "10.0.0.1", False),
    ("http://agent.example:7002", "10.0.0.1", False),  # names are not resolved
    ("http://10.0.0.1:7002", "", False),  # the source is unknown
    ("http://agent.example:7002", None, True),  # no tokens: nothing to bind to
])
def test_an_authenticated_address_names_its_source(address, source, ok):
    assert (address_problem(address, source) is None) is ok


def test_the_task_id_is_quoted_into_the_fixed_path():
    assert logs_url("http://10.0.0.1:7002/", "a/../b?c#d") == \
        "http://10.0.0.1:7002/tasks/a%2F..%2Fb%3Fc%23d/logs"


def _descriptor():
    from titus.master.validation import parse_job

    return parse_job(JOB)
