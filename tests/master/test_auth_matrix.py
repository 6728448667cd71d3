"""Every route x every kind of caller -> allowed, 401 or 403.

The routes come from /openapi.json, so a new route cannot be forgotten: it must be given a
rule in RULES (the scope it needs) or this test fails.
"""
from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from titus.master.app import create_app
from titus.master.auth import digest
from titus.master.config import MasterSettings

TOKENS = {"reader": ["read"], "alice": ["user"], "bob": ["user"], "root": ["admin"]}
BOOTSTRAP = "bootstrap-token"
JOB = {"applicationName": "m", "container": {"image": {"name": "busybox"}},
       "service": {"capacity": {"min": 0, "desired": 1, "max": 3}}}
GROUP = {"name": "g1", "tier": "Flex", "resources": {"cpu": 1}}
IGROUP = {"name": "ig1", "zones": ["a"], "instance_type": {"name": "m5", "cpus": 4,
                                                             "memory_mb": 8192}}
HOST = {"host_id": "h1", "cpus": 4, "memory_mb": 8192}

# (method, path) -> what the caller needs:
#   open: nothing; read: the read scope; submit: user; owner: user, and its own job (or admin);
#   admin: admin; register: the agent bootstrap token or the agent's own credential;
#   self: the agent's own credential
RULES = {
    ("get", "/health"): "open", ("get", "/health/ready"): "open",
    ("get", "/api/v3/observe"): "read", ("get", "/api/v3/events"): "read",
    ("post", "/api/v3/jobs"): "submit", ("get", "/api/v3/jobs"): "read",
    ("get", "/api/v3/jobs/{job_id}"): "read", ("delete", "/api/v3/jobs/{job_id}"): "owner",
    ("put", "/api/v3/jobs/{job_id}/instances"): "owner",
    ("get", "/api/v3/tasks"): "read", ("get", "/api/v3/tasks/{task_id}"): "read",
    ("delete", "/api/v3/tasks/{task_id}"): "owner", ("get", "/api/v3/tasks/{task_id}/logs"): "read",
    ("post", "/api/v3/agents/register"): "register",
    ("post", "/api/v3/agents/{agent_id}/heartbeat"): "self",
    ("delete", "/api/v3/agents/{agent_id}"): "self",
    ("get", "/api/v3/agents"): "read", ("get", "/api/v3/hosts"): "read",
    ("get", "/api/v3/capacityGroups"): "read", ("post", "/api/v3/capacityGroups"): "admin",
    ("get", "/api/v3/capacityGroups/{name}"): "read",
    ("put", "/api/v3/capacityGroups/{name}"): "admin",
    ("delete", "/api/v3/capacityGroups/{name}"): "admin",
    ("get", "/api/v3/instanceGroups"): "read", ("post", "/api/v3/instanceGroups"): "admin",
    ("get", "/api/v3/instanceGroups/{name}"): "read",
    ("put", "/api/v3/instanceGroups/{name}"): "admin",
    ("delete", "/api/v3/instanceGroups/{name}"): "admin",
    ("put", "/api/v3/instanceGroups/{name}/rule"): "admin",
    ("delete", "/api/v3/instanceGroups/{name}/rule"): "admin",
    ("get", "/api/v3/instanceGroups/{name}/actions"): "read",
    ("get", "/api/v3/hosts/{host_id}/drain"): "read",
    ("put", "/api/v3/hosts/{host_id}/drain"): "admin",
    ("delete", "/api/v3/hosts/{host_id}/drain"): "admin",
    ("get", "/api/v3/eviction/quotas/jobs/{job_id}"): "read",
    ("delete", "/api/v3/eviction/tasks/{task_id}"): "owner",
}
CALLERS = ["none", "reader", "alice", "bob", "root", "bootstrap", "agent", "other-agent"]
# who passes each rule (alice owns the job; "agent" is a1, whose routes are called)
ALLOWED = {
    "open": set(CALLERS),
    "read": {"reader", "alice", "bob", "root"},
    "submit": {"alice", "bob", "root"},
    "owner": {"alice", "root"},
    "admin": {"root"},
    "register": {"bootstrap", "agent"},
    "self": {"agent"},
}


@pytest.fixture
def world(tmp_path):
    lines = ["tokens:"]
    for name, scopes in TOKENS.items():
        lines += [f"  - name: {name}", f"    sha256: {digest(name + '-token')}",
                  f"    scopes: [{', '.join(scopes)}]"]
    (tmp_path / "tokens.yaml").write_text("\n".join(lines) + "\n")
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}", agent_token=BOOTSTRAP,
                              token_file=str(tmp_path / "tokens.yaml"), submit_rate_per_sec=0)
    with TestClient(create_app(settings, start_loop=False)) as http:
        headers = {name: {"Authorization": f"Bearer {name}-token"} for name in TOKENS}
        headers["none"] = {}
        headers["bootstrap"] = {"Authorization": f"Bearer {BOOTSTRAP}"}
        for agent_id, who in (("a1", "agent"), ("a2", "other-agent")):
            host = {**HOST, "host_id": f"{agent_id}-h"}
            reply = http.post("/api/v3/agents/register", headers=headers["bootstrap"],
                              json={"agent_id": agent_id, "hosts": [host]}).json()
            credential = reply.get("credential") or BOOTSTRAP
            headers[who] = {"Authorization": f"Bearer {credential}"}
        yield http, headers


def fresh_objects(http, headers) -> dict:
    """A job of alice with a task, a capacity group and an instance group, made by admins."""
    root = headers["root"]
    job_id = http.post("/api/v3/jobs", json=JOB, headers=headers["alice"]).json()["id"]
    task_id = http.get("/api/v3/tasks", params={"jobId": job_id},
                       headers=root).json()["items"][0]["id"]
    http.put("/api/v3/capacityGroups/g1", json=GROUP, headers=root)
    http.post("/api/v3/instanceGroups", json=IGROUP, headers=root)
    return {"job_id": job_id, "task_id": task_id, "agent_id": "a1", "name": "g1",
            "host_id": "a1-h"}


def request_for(method: str, path: str, ids: dict) -> tuple[str, dict]:
    url = path
    for key, value in ids.items():
        url = url.replace("{" + key + "}", value)
    if "instanceGroups" in url:
        url = url.replace("/g1", "/ig1")
    body = None
    if method in ("post", "put"):
        body = {
            "/api/v3/jobs": JOB, "/api/v3/capacityGroups": {**GROUP, "name": "g2"},
            "/api/v3/instanceGroups": {**IGROUP, "name": "ig2"},
            "/api/v3/agents/register": {"agent_id": "a1", "hosts": [{**HOST, "host_id": "a1-h"}]},
        }.get(path)
        if body is None:
            body = {"/api/v3/jobs/{job_id}/instances": {"desired": 2},
                    "/api/v3/capacityGroups/{name}": GROUP,
                    "/api/v3/instanceGroups/{name}": {"max_size": 50},
                    "/api/v3/instanceGroups/{name}/rule": {"min_idle": 0, "max_idle": 1},
                    "/api/v3/agents/{agent_id}/heartbeat": {},
                    "/api/v3/hosts/{host_id}/drain": None}[path]
    return url, copy.deepcopy(body)


def routes(app) -> list[tuple[str, str]]:
    """Every operation; an agent leaving comes last (its credential ends with it)."""
    doc = app.openapi()
    found = [(m, p) for p, ops in doc["paths"].items() for m in ops]
    return sorted(found, key=lambda r: r == ("delete", "/api/v3/agents/{agent_id}"))


def test_every_route_has_a_rule(world):
    http, _ = world
    missing = [r for r in routes(http.app) if r not in RULES]
    assert not missing, f"give these routes a rule in RULES: {missing}"


@pytest.mark.parametrize("who", CALLERS)
def test_each_caller_gets_what_its_scopes_allow(world, who):
    http, headers = world
    wrong = []
    for method, path in routes(http.app):
        ids = fresh_objects(http, headers)
        url, body = request_for(method, path, ids)
        params = {"snapshotOnly": "true"} if path.endswith("/observe") else None
        r = http.request(method.upper(), url, json=body, params=params, headers=headers[who])
        allowed = who in ALLOWED[RULES[(method, path)]]
        if allowed:
            ok = r.status_code not in (401, 403) and r.status_code < 500
        else:
            ok = r.status_code == (401 if who == "none" else 403)
        if not ok:
            wrong.append(f"{who} {method.upper()} {path}: {r.status_code} {r.text[:120]}")
        assert r.status_code < 500, wrong[-1] if wrong else r.text
    assert not wrong, "\n".join(wrong)
