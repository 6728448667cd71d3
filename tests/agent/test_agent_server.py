"""The agent's HTTP server: task logs from the runtime, extensible with extra routers."""
import time

import httpx
from fastapi import APIRouter
from fastapi.testclient import TestClient

from titus.agent.server import AgentServer, create_app
from titus.agent.sim import SimRuntime
from titus.protocol import LaunchOrder


def make_runtime():
    runtime = SimRuntime()
    runtime.start(lambda status: None)
    runtime.launch(LaunchOrder(task_id="t1", job_id="j1", image="sim", host_id="h1",
                               env={"TITUS_SIM_DURATION_SEC": "0.2"}))
    return runtime


def test_logs_of_a_task_and_404_for_an_unknown_one():
    runtime = make_runtime()
    client = TestClient(create_app(runtime, agent_id="a1"))
    response = client.get("/tasks/t1/logs", params={"follow": 0})
    assert response.status_code == 200 and b"started on host h1" in response.content
    followed = client.get("/tasks/t1/logs", params={"follow": 1})
    assert b"finished: normal" in followed.content
    missing = client.get("/tasks/nope/logs")
    assert missing.status_code == 404 and missing.json()["detail"]["task_id"] == "nope"
    assert client.get("/tasks/t1/logs", params={"follow": 7}).status_code == 422
    runtime.close()


def test_extra_routers_are_mounted():
    router = APIRouter()

    @router.get("/latest/meta-data/instance-id")
    def instance_id():
        return "i-123"

    client = TestClient(create_app(make_runtime(), extra_routers=[router]))
    assert client.get("/latest/meta-data/instance-id").json() == "i-123"
    assert client.get("/healthz").json()["runtime"] == "sim"


def test_server_runs_on_a_free_port():
    runtime = make_runtime()
    server = AgentServer(port=0)
    assert server.url == f"http://127.0.0.1:{server.port}"
    server.start(create_app(runtime))
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                response = httpx.get(f"{server.url}/tasks/t1/logs")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 200
    finally:
        server.stop()
        runtime.close()
