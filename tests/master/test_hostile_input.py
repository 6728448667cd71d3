"""Hostile and careless input through the real HTTP server: each kind is refused at the
boundary with a JSON error naming the field, nothing is stored, and every listing still
answers 200 afterwards, also after a restart on the same store."""
from __future__ import annotations

import copy
import json

import pytest

from titus.master.config import MasterSettings

from tests.master.live import LiveMaster

JOB = {"applicationName": "hostile", "owner": {"teamEmail": "me@example.com"},
       "container": {"image": {"name": "busybox", "tag": "latest"},
                     "resources": {"cpu": 1, "memoryMB": 128}},
       "batch": {"size": 1}}
GROUP = {"name": "g1", "tier": "Flex", "resources": {"cpu": 4, "memoryMB": 4096}}
HOST = {"host_id": "h1", "cpus": 4, "memory_mb": 8192}
LISTINGS = ["/api/v3/jobs", "/api/v3/tasks", "/api/v3/hosts", "/api/v3/agents",
            "/api/v3/capacityGroups", "/api/v3/instanceGroups", "/health"]


def job(**changes) -> dict:
    spec = copy.deepcopy(JOB)
    for path, value in changes.items():
        node = spec
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return spec


def raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def dumps(data) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800 and writes NaN/Infinity as a client might
    return json.dumps(data).encode()


DEEP = b"[" * 1000 + b"]" * 1000
BIG_INT = b'{"applicationName":"x","container":{"image":{"name":"b"}},"batch":{"size":' + \
    b"9" * 5000 + b"}}"

# (id, method, path, body bytes, status, field the first problem names)
CASES = [
    ("not-utf8", "POST", "/api/v3/jobs", b"\xff", 400, "(body)"),
    ("not-utf8-in-string", "POST", "/api/v3/jobs", b'{"applicationName":"\xff\xfe"}', 400, "(body)"),
    ("not-json", "POST", "/api/v3/jobs", b"{", 400, "(body)"),
    ("json-array", "POST", "/api/v3/jobs", b"[]", 400, "(body)"),
    ("huge-int", "POST", "/api/v3/jobs", BIG_INT, 400, "batch.size"),
    ("int64-overflow", "POST", "/api/v3/jobs", dumps(job(batch__size=2**64)), 400, "batch.size"),
    ("deep-nesting", "POST", "/api/v3/jobs", DEEP, 400, "(body)"),
    ("deep-nesting-object", "POST", "/api/v3/jobs",
     b'{"x":' * 500 + b"1" + b"}" * 500, 400, ".".join(["x"] * 32)),
    ("deep-in-extra-field", "POST", "/api/v3/jobs",
     dumps(job(extra=json.loads("[" * 60 + "]" * 60))), 400, "extra" + "[0]" * 31),
    ("nan-cpu", "POST", "/api/v3/jobs", dumps(job(container__resources={"cpu": float("nan")})),
     400, "container.resources.cpu"),
    ("inf-cpu", "POST", "/api/v3/jobs", raw(json.dumps(JOB).replace('"cpu": 1', '"cpu": 1e999')),
     400, "container.resources.cpu"),
    ("nan-cpu-as-text", "POST", "/api/v3/jobs",
     dumps(job(container__resources={"cpu": "NaN"})), 400, "container.resources.cpu"),
    ("minus-infinity-grace", "POST", "/api/v3/jobs",
     dumps(job(container__killGracePeriodSeconds=float("-inf"))), 400,
     "container.killGracePeriodSeconds"),
    ("nan-in-extra-field", "POST", "/api/v3/jobs", dumps(job(note=float("nan"))), 400, "note"),
    ("surrogate-name", "POST", "/api/v3/jobs", dumps(job(applicationName="x\ud800")), 400,
     "applicationName"),
    ("surrogate-env-value", "POST", "/api/v3/jobs",
     dumps(job(container__env={"A": "\udfff"})), 400, "container.env.A"),
    ("surrogate-env-key", "POST", "/api/v3/jobs",
     dumps(job(container__env={"\ud800": "v"})), 400, "container.env.(key)"),
    ("surrogate-extra-field", "POST", "/api/v3/jobs", dumps(job(labels=["ok", "\ud800"])), 400,
     "labels[1]"),
    # a container's argv and environment are C strings: a NUL can never reach it, so a job
    # holding one could only fail at every launch
    ("nul-in-env-value", "POST", "/api/v3/jobs", dumps(job(container__env={"A": "x\x00y"})),
     400, "container.env.A"),
    ("nul-in-command", "POST", "/api/v3/jobs", dumps(job(container__command=["sh", "-c\x00"])),
     400, "container.command[1]"),
    ("nul-in-entry-point", "POST", "/api/v3/jobs",
     dumps(job(container__entryPoint=["\x00bin"])), 400, "container.entryPoint[0]"),
    ("nul-in-health-check", "POST", "/api/v3/jobs",
     dumps(job(container__healthCheck={"command": ["true\x00"]})), 400,
     "container.healthCheck.command[0]"),
    # true/false where a number goes: a careless client's bug, not 1 and 0
    ("bool-cpu", "POST", "/api/v3/jobs",
     dumps(job(container__resources={"cpu": True, "memoryMB": 128})), 400,
     "container.resources.cpu"),
    ("bool-batch-size", "POST", "/api/v3/jobs", dumps(job(batch__size=True)), 400, "batch.size"),
    ("bool-in-retry-policy", "POST", "/api/v3/jobs",
     dumps(job(batch={"size": 1, "retryPolicy": {"immediate": {"retries": False}}})), 400,
     "batch.retryPolicy.immediate.retries"),
    ("gang-as-text", "POST", "/api/v3/jobs", dumps(job(batch__gangScheduling="true")), 400,
     "batch.gangScheduling"),
    ("gang-as-number", "POST", "/api/v3/jobs", dumps(job(batch__gangScheduling=1)), 400,
     "batch.gangScheduling"),
    ("gang-as-object", "POST", "/api/v3/jobs", dumps(job(batch__gangScheduling={"on": True})), 400,
     "batch.gangScheduling"),
    ("gang-surrogate", "POST", "/api/v3/jobs", dumps(job(batch__gangScheduling="\ud800")), 400,
     "batch.gangScheduling"),
    # a gang starts in one scheduling round (max_batch tasks) or it would wait forever
    ("gang-bigger-than-a-round", "POST", "/api/v3/jobs",
     dumps(job(batch__size=10_001, batch__gangScheduling=True)), 400, "batch.size"),
    ("bool-resize", "PUT", "/api/v3/jobs/nope/instances", b'{"desired": true}', 400, "desired"),
    ("bool-group-quantity", "POST", "/api/v3/capacityGroups",
     dumps({**GROUP, "resources": {"cpu": True}}), 400, "resources.cpu"),
    ("bool-instance-group-size", "POST", "/api/v3/instanceGroups",
     dumps({"name": "ig", "instance_type": {"name": "m", "cpus": 4, "memory_mb": 1024},
            "zones": ["a"], "max_size": True}), 400, "max_size"),
    ("bool-host-cpus", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [{**HOST, "cpus": True}]}), 400, "hosts[0].cpus"),
    ("bool-host-port", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [{**HOST, "ports": [[True, 10]]}]}), 400,
     "hosts[0].ports[0][0]"),
    ("bool-exit-code", "POST", "/api/v3/agents/a1/heartbeat",
     b'{"statuses":[{"task_id":"t","state":"Finished","exit_code":true}]}', 400,
     "statuses[0].exit_code"),
    ("huge-name", "POST", "/api/v3/jobs", dumps(job(applicationName="a" * 1_000_000)), 400,
     "applicationName"),
    ("long-name", "POST", "/api/v3/jobs", dumps(job(applicationName="a" * 300)), 400,
     "applicationName"),
    ("long-capacity-group", "POST", "/api/v3/jobs", dumps(job(capacityGroup="g" * 300)), 400,
     "capacityGroup"),
    ("many-items", "POST", "/api/v3/jobs", dumps(job(container__command=["x"] * 200_000)), 400,
     "container.command"),
    ("body-too-large", "POST", "/api/v3/jobs", b" " * (5 * 1024 * 1024) + b"{}", 413, "(body)"),
    ("group-preemption-text", "POST", "/api/v3/capacityGroups",
     dumps({**GROUP, "preemption": "yes"}), 400, "preemption"),
    ("group-preemption-number", "POST", "/api/v3/capacityGroups",
     dumps({**GROUP, "preemption": 0}), 400, "preemption"),
    ("group-nan", "POST", "/api/v3/capacityGroups",
     dumps({**GROUP, "resources": {"cpu": float("nan")}}), 400, "resources.cpu"),
    ("group-inf", "POST", "/api/v3/capacityGroups",
     raw('{"name":"g2","tier":"Flex","resources":{"cpu":1e999}}'), 400, "resources.cpu"),
    ("group-surrogate-name", "POST", "/api/v3/capacityGroups",
     dumps({**GROUP, "name": "g\ud800"}), 400, "name"),
    ("group-huge-quantity", "POST", "/api/v3/capacityGroups",
     dumps({**GROUP, "resources": {"memoryMB": 10**18}}), 400, "resources.memoryMB"),
    ("resize-nan", "PUT", "/api/v3/jobs/nope/instances", b'{"desired": NaN}', 400, "desired"),
    ("register-inf-cpus", "POST", "/api/v3/agents/register",
     raw('{"agent_id":"a1","hosts":[{"host_id":"h1","cpus":1e999,"memory_mb":1}]}'), 400,
     "hosts[0].cpus"),
    ("register-empty-host-id", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [{**HOST, "host_id": ""}]}), 400, "hosts[0].host_id"),
    ("register-surrogate-host-id", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [{**HOST, "host_id": "h\ud800"}]}), 400,
     "hosts[0].host_id"),
    ("register-port-range", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [{**HOST, "ports": [[70000, 70010]]}]}), 400,
     "hosts[0].ports[0][0]"),
    ("register-reversed-ports", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [HOST, {**HOST, "host_id": "h2", "ports": [[9, 1]]}]}),
     400, "hosts[1]"),
    ("register-duplicate-hosts", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [HOST, HOST]}), 400, "hosts"),
    ("register-long-agent-id", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a" * 1000, "hosts": [HOST]}), 400, "agent_id"),
    ("register-surrogate-task", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [HOST],
            "tasks": [{"task_id": "t\ud800", "state": "Started"}]}), 400, "tasks[0].task_id"),
    ("register-huge-exit-code", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [HOST],
            "tasks": [{"task_id": "t", "state": "Finished", "exit_code": 2**40}]}), 400,
     "tasks[0].exit_code"),
    ("heartbeat-nan-timestamp", "POST", "/api/v3/agents/a1/heartbeat",
     b'{"statuses":[{"task_id":"t","state":"Started","timestamp":NaN}]}', 400,
     "statuses[0].timestamp"),
    ("heartbeat-surrogate", "POST", "/api/v3/agents/a1/heartbeat",
     b'{"running":["t\\ud800"]}', 400, "running[0]"),
    ("heartbeat-not-utf8", "POST", "/api/v3/agents/a1/heartbeat", b'{"running":["\xff"]}', 400,
     "(body)"),
    ("heartbeat-deep", "POST", "/api/v3/agents/a1/heartbeat", DEEP, 400, "(body)"),
    ("instance-group-nan", "POST", "/api/v3/instanceGroups",
     b'{"name":"ig","instance_type":{"name":"m","cpus":NaN,"memory_mb":1}}', 400, None),
    ("page-size-text", "GET", "/api/v3/jobs?pageSize=lots", b"", 400, "pageSize"),
    ("page-size-huge", "GET", "/api/v3/tasks?pageSize=" + "9" * 5000, b"", 400, "pageSize"),
    ("page-size-inf", "GET", "/api/v3/jobs?pageSize=1e999", b"", 400, "pageSize"),
    ("bad-cursor", "GET", "/api/v3/jobs?cursor=%ED%A0%80", b"", 400, "cursor"),
    ("shrink-not-bool", "DELETE", "/api/v3/tasks/t1?shrink=maybe", b"", 400, "shrink"),
    # an id in the path that is not UTF-8 once percent-decoded: refused, not read as U+FFFD
    # (which would create a group named "\ufffd\ufffd\ufffd" that nobody asked for)
    ("path-surrogate-group-put", "PUT", "/api/v3/capacityGroups/%ED%A0%80",
     dumps({"tier": "Flex", "resources": {"cpu": 1}}), 400, "name"),
    ("path-not-utf8-group-delete", "DELETE", "/api/v3/capacityGroups/g%FF", b"", 400, "name"),
    ("path-overlong-job", "GET", "/api/v3/jobs/%C0%AF", b"", 400, "job_id"),
    ("path-not-utf8-task-kill", "DELETE", "/api/v3/tasks/t%FE?shrink=true", b"", 400, "task_id"),
    ("path-not-utf8-instance-group", "PUT", "/api/v3/instanceGroups/%FF/rule", dumps({}), 400,
     "name"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "m.db"
    with LiveMaster(MasterSettings(store_url=f"sqlite:///{path}")) as lm:
        yield lm


def assert_error_shape(r, status):
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["error"], str) and isinstance(body["problems"], list)
    for p in body["problems"]:
        assert set(p) <= {"field", "message", "value"} and isinstance(p["field"], str)
    return body


def assert_still_serving(live):
    for path in LISTINGS:
        r = live.http.get(path)
        assert r.status_code == 200, (path, r.text[:300])


@pytest.mark.parametrize("name,method,path,body,status,field", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_naming_the_field(live, name, method, path, body, status, field):
    before = live.master.counts() if hasattr(live.master, "counts") else None
    r = live.http.request(method, path, content=body,
                          headers={"content-type": "application/json"})
    problems = assert_error_shape(r, status)["problems"]
    if field is not None:
        assert problems and problems[0]["field"] == field, problems
    assert len(r.content) < 20_000  # a 1 MB value is not echoed back
    if before is not None:
        assert live.master.counts() == before
    assert not live.master.registry.agents and not live.master.jobs
    assert [g["name"] for g in live.http.get("/api/v3/capacityGroups").json()["items"]
            if g["name"] != "default"] == []
    assert_still_serving(live)


def test_a_clean_registration_after_refused_ones_is_taken(live):
    r = live.http.post("/api/v3/agents/register",
                       json={"agent_id": "a1", "hosts": [{**HOST, "host_id": ""}]})
    assert_error_shape(r, 400)
    r = live.http.post("/api/v3/agents/register", json={"agent_id": "a1", "hosts": [HOST]})
    assert r.status_code == 200, r.text
    assert [h["id"] for h in live.http.get("/api/v3/hosts").json()["items"]] == ["h1"]
    assert live.http.delete("/api/v3/agents/a1").status_code == 200


def test_every_error_has_the_one_shape(live):
    assert_error_shape(live.http.get("/api/v3/jobs/nope"), 404)
    assert_error_shape(live.http.get("/api/v3/nothing-here"), 404)
    assert_error_shape(live.http.patch("/api/v3/jobs"), 405)
    assert_error_shape(live.http.put("/api/v3/jobs/nope/instances", json={"desired": 1}), 404)


def test_listings_survive_a_restart_after_hostile_input(live):
    for _, method, path, body, _, _ in CASES:
        live.http.request(method, path, content=body, headers={"content-type": "application/json"})
    live.restart()
    assert_still_serving(live)
    assert not live.master.jobs and not live.master.registry.agents


MORE = [
    ("heartbeat-too-many-ids", "POST", "/api/v3/agents/a1/heartbeat",
     b'{"running":[' + b",".join([b'"t"'] * 2_000_001) + b"]}", 400, "running"),
    ("agent-id-newline", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a\nb", "hosts": [HOST]}), 400, "agent_id"),
    ("agent-id-slash", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a/b", "hosts": [HOST]}), 400, "agent_id"),
    ("host-id-escape", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [{**HOST, "host_id": "\u001b[2J"}]}), 400,
     "hosts[0].host_id"),
    ("status-message-nul", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "hosts": [HOST],
            "tasks": [{"task_id": "t", "state": "Finished", "message": "a\u0000b"}]}), 400,
     "tasks[0].message"),
    ("runtime-too-long", "POST", "/api/v3/agents/register",
     dumps({"agent_id": "a1", "runtime": "r" * 100, "hosts": [HOST]}), 400, "runtime"),
    ("name-right-to-left", "POST", "/api/v3/jobs", dumps(job(applicationName="a\u202eb")), 400,
     "applicationName"),
    ("name-del", "POST", "/api/v3/jobs", dumps(job(applicationName="a\u007fb")), 400,
     "applicationName"),
    ("env-name-newline", "POST", "/api/v3/jobs", dumps(job(container__env={"A\nB": "v"})), 400,
     "container.env"),
    ("image-nul", "POST", "/api/v3/jobs",
     dumps(job(container__image={"name": "busy\u0000box"})), 400, "container.image.name"),
    ("group-limit-below-guarantee", "POST", "/api/v3/capacityGroups",
     dumps({**GROUP, "limit": {"cpu": 2}}), 400, "limit.cpu"),
    ("instance-type-huge", "POST", "/api/v3/instanceGroups",
     dumps({"name": "ig", "zones": ["a"],
            "instance_type": {"name": "m", "cpus": 1e300, "memory_mb": 1}}), 400, None),
    ("instance-group-zone-newline", "POST", "/api/v3/instanceGroups",
     dumps({"name": "ig", "zones": ["a\n"],
            "instance_type": {"name": "m", "cpus": 1, "memory_mb": 1}}), 400, None),
]


@pytest.mark.parametrize("name,method,path,body,status,field", MORE, ids=[c[0] for c in MORE])
def test_more_hostile_input(live, name, method, path, body, status, field):
    test_hostile_input_is_refused_naming_the_field(live, name, method, path, body, status, field)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", ""])
def test_a_body_not_declared_json_is_415(live, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = live.http.post("/api/v3/jobs", content=dumps(JOB), headers=headers)
    problems = assert_error_shape(r, 415)["problems"]
    assert problems[0]["field"] == "Content-Type" and not live.master.jobs


def test_a_partial_group_quantity_is_zero_not_a_job_default(live):
    r = live.http.put("/api/v3/capacityGroups/lim", json={"tier": "Flex", "limit": {"cpu": 10}})
    assert r.status_code == 200
    group = r.json()
    assert group["limit"]["memoryMB"] == 0 and group["resources"]["cpu"] == 0
    assert live.http.delete("/api/v3/capacityGroups/lim").status_code == 200


@pytest.mark.parametrize("path", ["/api/v3/jobs/abc%00", "/api/v3/tasks/t%00",
                                  "/api/v3/tasks?jobId=%00", "/api/v3/tasks/t%00/logs"])
def test_a_nul_in_an_id_is_not_found_on_every_store(store, settings, clock, path):
    """No stored id holds NUL (and PostgreSQL refuses to compare text with one)."""
    from fastapi.testclient import TestClient

    from tests.master.conftest import make_master
    from titus.master.app import create_app

    app = create_app(master=make_master(settings, clock, store), start_loop=False)
    with TestClient(app) as client:
        assert client.get(path).status_code == 404


def _send_head(live, head: bytes) -> bytes:
    """Send ``head`` (a request line and headers, maybe unfinished) on a raw connection;
    the master's answer, as soon as it gives one."""
    import socket

    port = int(str(live.http.base_url).rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            for i in range(0, len(head), 1 << 16):
                s.sendall(head[i:i + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the master answered and closed before the whole head was sent
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


@pytest.mark.parametrize("head", [
    b"GET /api/v3/jobs HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (8 << 20),  # never ends
    b"GET /api/v3/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * (1 << 20)
    + b"\r\n\r\n",
    b"GET /api/v3/jobs/" + b"a" * (2 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v3/jobs HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 200_000 + b"\r\n",
], ids=["endless-header", "megabyte-token", "megabyte-path", "many-headers"])
def test_a_request_head_over_its_bound_is_refused_before_it_is_read(live, head):
    """An anonymous client's request line and headers were read whole, however large: four
    connections with 40 MB headers grew the master by ~190 MB. They are bounded (431, in the
    one error shape) as soon as they pass the bound, and the connection is closed."""
    answer = _send_head(live, head)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 431"), answer[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["problems"][0]["field"] == "(headers)"
    assert_still_serving(live)


def test_ordinary_heads_are_still_taken(live):
    answer = _send_head(live, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8000
                        + b"\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
