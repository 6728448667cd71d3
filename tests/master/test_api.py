"""The REST API through FastAPI's TestClient: shapes, errors, auth, paging, SSE, metrics."""
import json
import threading

import pytest
from fastapi.testclient import TestClient

from titus.master.app import create_app

from tests.master.conftest import ScriptedAgent, make_master

README_JOB = {
    "applicationName": "localtest", "owner": {"teamEmail": "me@me.com"},
    "container": {"image": {"name": "alpine", "tag": "latest"}, "entryPoint": ["/bin/sleep", "1h"],
                  "securityProfile": {"iamRole": "test-role", "securityGroups": ["sg-test"]}},
    "batch": {"size": 1, "runtimeLimitSec": "3600",
              "retryPolicy": {"delayed": {"delayMs": "1000", "retries": 3}}}}


@pytest.fixture
def master(settings, clock, tmp_path):
    s = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'api.db'}"})
    m = make_master(s, clock)
    yield m
    m.store.close()


@pytest.fixture
def client(master):
    with TestClient(create_app(master=master, start_loop=False)) as c:
        yield c


def submit(client, spec=None, **headers):
    return client.post("/api/v3/jobs", json=spec or README_JOB, headers=headers)


def test_readme_job_round_trip(client):
    r = submit(client)
    assert r.status_code == 202
    job = client.get(f"/api/v3/jobs/{r.json()['id']}").json()
    assert job["jobDescriptor"]["batch"]["runtimeLimitSec"] == "3600"
    assert job["status"]["state"] == "Accepted"
    tasks = client.get("/api/v3/tasks", params={"jobId": job["id"]}).json()["items"]
    assert len(tasks) == 1 and tasks[0]["status"]["state"] == "Accepted"


def test_bad_spec_is_400_naming_every_field(client):
    spec = json.loads(json.dumps(README_JOB))
    spec["container"]["resources"] = {"cpu": -1, "memoryMB": "lots"}
    spec["container"]["hardConstraints"] = {"constraints": {"${jndi:x}": "true"}}
    spec["batch"]["size"] = 0
    r = submit(client, spec)
    assert r.status_code == 400
    body = r.json()
    fields = {p["field"] for p in body["problems"]}
    assert fields == {"container.resources.memoryMB"}  # shape errors come first
    spec["container"]["resources"] = {"cpu": -1}
    body = submit(client, spec).json()
    assert {p["field"] for p in body["problems"]} == {
        "container.resources.cpu", "container.hardConstraints.constraints", "batch.size"}
    name_problem = [p for p in body["problems"] if p["field"].endswith("constraints")][0]
    assert name_problem["value"] == "${jndi:x}"
    r = client.post("/api/v3/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "(body)"


def test_auth_on_writes_and_agents(master):
    master.settings.user_tokens = ["user-secret"]
    master.settings.agent_token = "agent-secret"
    with TestClient(create_app(master=master, start_loop=False)) as client:
        assert submit(client).status_code == 401
        assert submit(client, Authorization="Bearer wrong").status_code == 401
        assert submit(client, Authorization="Bearer agent-secret").status_code == 403
        assert submit(client, Authorization="Bearer user-secret").status_code == 202
        assert client.get("/api/v3/jobs").status_code == 401  # reads need a token too
        user = {"Authorization": "Bearer user-secret"}
        assert client.get("/api/v3/jobs", headers=user).status_code == 200
        reg = {"agent_id": "a", "hosts": [{"host_id": "h", "cpus": 1, "memory_mb": 1024}]}
        assert client.post("/api/v3/agents/register", json=reg).status_code == 401
        assert client.post("/api/v3/agents/register", json=reg, headers=user).status_code == 403
        assert client.post("/api/v3/agents/register", json=reg,
                           headers={"Authorization": "Bearer agent-secret"}).status_code == 200
        assert client.delete("/api/v3/jobs/x").status_code == 401
        assert client.get("/health").status_code == 200  # health needs no token


def test_cursor_pagination_and_filters(client):
    ids = []
    for i in range(7):
        spec = json.loads(json.dumps(README_JOB))
        spec["applicationName"] = "even" if i % 2 == 0 else "odd"
        ids.append(submit(client, spec).json()["id"])
    seen, cursor = [], ""
    while True:
        page = client.get("/api/v3/jobs", params={"pageSize": 3, "cursor": cursor}).json()
        seen += [j["id"] for j in page["items"]]
        assert page["pagination"]["totalItems"] == 7
        if not page["pagination"]["hasMore"]:
            break
        cursor = page["pagination"]["cursor"]
    assert seen == ids
    odd = client.get("/api/v3/jobs", params={"applicationName": "odd"}).json()["items"]
    assert [j["id"] for j in odd] == ids[1::2]
    assert client.get("/api/v3/jobs", params={"pageSize": 0}).status_code == 400
    assert client.get("/api/v3/jobs", params={"jobState": "Running"}).status_code == 400
    assert client.get("/api/v3/jobs", params={"jobType": "SERVICE"}).json()["items"] == []


def test_404_409_and_kill(master, client):
    assert client.get("/api/v3/jobs/nope").status_code == 404
    assert client.get("/api/v3/tasks/nope").status_code == 404
    job_id = submit(client).json()["id"]
    r = client.delete(f"/api/v3/jobs/{job_id}")
    assert r.status_code == 200
    assert client.get(f"/api/v3/jobs/{job_id}").json()["status"]["state"] == "Finished"
    assert client.delete(f"/api/v3/jobs/{job_id}").status_code == 409
    assert client.put(f"/api/v3/jobs/{job_id}/instances", json={"desired": 1}).status_code == 409
    finished = client.get("/api/v3/jobs", params={"jobState": "Finished"}).json()["items"]
    assert [j["id"] for j in finished] == [job_id]
    tasks = client.get("/api/v3/tasks", params={"jobId": job_id}).json()["items"]
    assert tasks[0]["status"]["reasonCode"] == "killed"


def test_pending_task_shows_scheduling_failure(master, client):
    ScriptedAgent(master, hosts=1, cpus=1).register()
    spec = json.loads(json.dumps(README_JOB))
    spec["container"]["resources"] = {"cpu": 2}
    job_id = submit(client, spec).json()["id"]
    master.scheduling.run_round(force=True)
    task = client.get("/api/v3/tasks", params={"jobId": job_id}).json()["items"][0]
    detail = client.get(f"/api/v3/tasks/{task['id']}").json()
    assert detail["schedulingFailure"] == "0/1 hosts: 1 cpus; asks 2 cpus; largest free 1"


def test_service_resize_over_rest(master, client):
    spec = {"applicationName": "svc", "container": {"image": {"name": "nginx"}},
            "service": {"capacity": {"min": 1, "desired": 2, "max": 4}}}
    job_id = submit(client, spec).json()["id"]
    r = client.put(f"/api/v3/jobs/{job_id}/instances", json={"desired": 4})
    assert r.status_code == 200
    assert r.json()["jobDescriptor"]["service"]["capacity"]["desired"] == 4
    assert len(client.get("/api/v3/tasks", params={"jobId": job_id}).json()["items"]) == 4
    bad = client.put(f"/api/v3/jobs/{job_id}/instances", json={"desired": 9})
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "capacity"


@pytest.mark.parametrize("host", [{"ports": [[70000, 70010]]}, {"ports": [[9, 1]]},
                                  {"host_id": ""}])
def test_a_registration_the_engine_refuses_is_a_400_and_changes_nothing(master, client, host):
    good = {"host_id": "h1", "cpus": 2, "memory_mb": 4096}
    reg = {"agent_id": "a1", "hosts": [good, {**good, "host_id": "h2", **host}]}
    r = client.post("/api/v3/agents/register", json=reg)
    assert r.status_code == 400 and r.json()["problems"][0]["field"].startswith("hosts[1]")
    assert client.get("/api/v3/agents").json()["items"] == []
    assert client.get("/api/v3/hosts").json()["items"] == [] and master.store.load_agents() == []
    reg["hosts"] = [good]
    assert client.post("/api/v3/agents/register", json=reg).status_code == 200


def test_an_agent_with_no_id_is_refused(master, client):
    reg = {"agent_id": "", "hosts": [{"host_id": "h1", "cpus": 2, "memory_mb": 4096}]}
    r = client.post("/api/v3/agents/register", json=reg)
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "agent_id"
    assert master.store.load_agents() == [] and not master.registry.agents


def test_agent_protocol_over_http(master, client):
    reg = {"agent_id": "a1", "hosts": [{"host_id": "h1", "cpus": 2, "memory_mb": 4096}]}
    assert client.post("/api/v3/agents/register", json=reg).json()["heartbeat_timeout_sec"] == 10
    job_id = submit(client).json()["id"]
    master.scheduling.run_round(force=True)
    reply = client.post("/api/v3/agents/a1/heartbeat", json={"wait_ms": 1000}).json()
    (order,) = reply["orders"]
    assert order["type"] == "launch" and order["image"] == "alpine:latest"
    assert order["iam_role"] == "test-role" and order["job_id"] == job_id
    # the order carries the job's own environment; the agent adds TITUS_* (its tests check)
    assert order["task_index"] == 0 and not any(k.startswith("TITUS_") for k in order["env"])
    st = {"task_id": order["task_id"], "state": "Started", "host_id": "h1"}
    client.post("/api/v3/agents/a1/heartbeat", json={"statuses": [st]})
    assert client.get(f"/api/v3/tasks/{order['task_id']}").json()["status"]["state"] == "Started"
    hosts = client.get("/api/v3/hosts").json()["items"]
    assert hosts[0]["used"]["cpus"] == 1 and hosts[0]["tasks"] == 1
    assert client.post("/api/v3/agents/zz/heartbeat", json={}).json()["reregister"] is True
    assert client.delete("/api/v3/agents/a1").status_code == 200
    assert client.get(f"/api/v3/tasks/{order['task_id']}").json()["status"]["reasonCode"] == "lost"


def test_capacity_groups_crud(client):
    g = {"name": "crit", "tier": "Critical", "resources": {"cpu": 8, "memoryMB": 1024}}
    assert client.post("/api/v3/capacityGroups", json=g).status_code == 201
    assert client.get("/api/v3/capacityGroups/crit").json()["tier"] == "Critical"
    r = client.put("/api/v3/capacityGroups/crit", json={**g, "tier": "Gold"})
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "tier"
    assert [x["name"] for x in client.get("/api/v3/capacityGroups").json()["items"]] == ["crit"]
    assert client.delete("/api/v3/capacityGroups/crit").status_code == 200
    assert client.get("/api/v3/capacityGroups/crit").status_code == 404


def test_observe_snapshot_marker_then_live_changes(master, client):
    job_id = submit(client).json()["id"]
    events = []
    with client.stream("GET", "/api/v3/observe", params={"limit": 2}) as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
                if kind == "snapshotEnd":
                    threading.Thread(target=master.kill_job, args=(job_id,)).start()
    kinds = [k for k, _ in events]
    assert kinds[:3] == ["jobUpdate", "taskUpdate", "snapshotEnd"]
    live = events[3:]
    assert len(live) == 2
    assert {k for k, _ in live} <= {"jobUpdate", "taskUpdate"}
    assert any(p.get("status", {}).get("state") in ("KillInitiated", "Finished") for _, p in live)


def test_metrics_and_openapi(master, client):
    submit(client)
    text = client.get("/metrics").text
    assert 'titus_tasks{state="Accepted"} 1.0' in text
    assert "titus_queue_depth 1.0" in text
    assert "titus_scheduling_round_seconds_bucket" in text
    ScriptedAgent(master, hosts=1).register()
    master.scheduling.run_round(force=True)
    assert "titus_scheduling_round_seconds_count 1.0" in client.get("/metrics").text
    spec = client.get("/openapi.json").json()
    assert "/api/v3/jobs" in spec["paths"] and "/api/v3/tasks/{task_id}" in spec["paths"]
    post = spec["paths"]["/api/v3/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert post["schema"]["$ref"] == "#/components/schemas/JobDescriptor"
    schemas = spec["components"]["schemas"]
    assert "container" in schemas["JobDescriptor"]["properties"]
    assert "Container" in schemas and "Heartbeat" in schemas and "TaskStatusMsg" in schemas


def test_task_logs_are_proxied_from_the_agent(master, monkeypatch):
    import httpx

    seen = {}

    def agent_server(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(200, content=b"line 1\nline 2\n",
                              headers={"content-type": "text/plain"})

    real = httpx.AsyncClient
    monkeypatch.setattr("titus.master.api.tasks.httpx.AsyncClient",
                        lambda **kw: real(transport=httpx.MockTransport(agent_server), **kw))
    master.settings.user_tokens = ["user-secret"]
    master.settings.agent_token = "agent-secret"
    app = create_app(master=master, start_loop=False)
    # the agent's address must be the source of its registration: an IP, not a name
    client = TestClient(app, client=("127.0.0.1", 50000),
                        headers={"Authorization": "Bearer user-secret"})
    reg = {"agent_id": "a1", "address": "http://127.0.0.1:9000",
           "hosts": [{"host_id": "h1", "cpus": 2, "memory_mb": 4096}]}
    r = client.post("/api/v3/agents/register", json=reg,
                    headers={"Authorization": "Bearer agent-secret"})
    assert r.status_code == 200 and r.json()["log_token"]
    log_token = r.json()["log_token"]
    submit(client)
    master.scheduling.run_round(force=True)
    (task_id,) = [t.id for t in master.tasks.values()]
    r = client.get(f"/api/v3/tasks/{task_id}/logs", params={"follow": "true"})
    assert r.status_code == 200 and r.text == "line 1\nline 2\n"
    assert seen["url"] == f"http://127.0.0.1:9000/tasks/{task_id}/logs?follow=1"
    # the master presents the agent's own log token, never the agents' bootstrap token
    assert seen["auth"] == f"Bearer {master.agent_log_token('a1')}" == f"Bearer {log_token}"
    assert client.get("/api/v3/tasks/unknown/logs").status_code == 404
