"""Metadata identities without Docker: who answers a lookup by token or source address.

An identity answers only while its container runs (the registry's ``alive`` check), and an
address claimed by two live identities answers nobody. ``TestClient`` calls come from the
address ``testclient``.
"""
from __future__ import annotations

from unittest import mock

import docker.errors
import pytest
from fastapi.testclient import TestClient

from titus.agent.metadata import MetadataRegistry, TaskIdentity, create_app

ADDRESS = "testclient"
BASE = "/latest/meta-data"


def _identity(task_id: str, ip: str = ADDRESS, **fields) -> TaskIdentity:
    fields.setdefault("container_id", "c-" + task_id)
    return TaskIdentity(task_id=task_id, job_id="job-" + task_id, token=task_id.ljust(24, "t"),
                        ip=ip, iam_role="role-" + task_id, **fields)


def _registry(*identities: TaskIdentity, running=None) -> MetadataRegistry:
    """A registry whose ``alive`` says yes only for the task ids in ``running`` (all if None)."""
    registry = MetadataRegistry(
        alive=None if running is None else (lambda identity: identity.task_id in running))
    for identity in identities:
        registry.register(identity)
    return registry


def test_one_live_claim_answers_by_address_and_token():
    a = _identity("a")
    registry = _registry(a, _identity("other", ip="10.0.0.9"), running={"a", "other"})
    assert registry.by_ip(ADDRESS) == a and registry.by_token(a.token) == a
    http = TestClient(create_app(registry))
    assert http.get(f"{BASE}/instance-id").text == "a"
    assert http.get(f"{BASE}/iam/security-credentials/").text == "role-a"


def test_a_stopped_containers_claim_yields_to_the_live_one():
    old, new = _identity("old"), _identity("new")
    for order in ((old, new), (new, old)):  # whichever was registered first
        registry = _registry(*order, running={"new"})
        assert registry.by_ip(ADDRESS) == new
        assert registry.by_token(old.token) is None and registry.by_token(new.token) == new


def test_two_live_claims_on_one_address_answer_nobody():
    a, b = _identity("a"), _identity("b")
    registry = _registry(a, b, running={"a", "b"})
    assert registry.by_ip(ADDRESS) is None
    http = TestClient(create_app(registry))
    for path in ("instance-id", "iam/security-credentials/", "iam/security-credentials/role-a",
                 "iam/security-credentials/role-b"):
        assert http.get(f"{BASE}/{path}").status_code == 404, path
    assert http.put("/latest/api/token").status_code == 404
    # each path token is still unambiguous
    assert http.get(f"/task/{a.token}{BASE}/instance-id").text == "a"
    assert http.get(f"/task/{b.token}{BASE}/instance-id").text == "b"


def test_stopped_container_answers_neither_token_nor_address():
    a = _identity("a")
    registry = _registry(a, running=set())
    http = TestClient(create_app(registry))
    assert http.get(f"/task/{a.token}{BASE}/instance-id").status_code == 404
    assert http.put(f"/task/{a.token}/latest/api/token").status_code == 404
    assert http.get(f"{BASE}/instance-id").status_code == 404


def test_forgotten_identity_answers_nothing():
    a = _identity("a")
    registry = _registry(a)  # no liveness check: entries trusted as registered
    assert registry.by_ip(ADDRESS) == a
    registry.unregister("a")
    assert registry.by_ip(ADDRESS) is None and registry.by_token(a.token) is None


def test_unknown_liveness_answers_nothing():
    def broken(identity):
        raise ConnectionError("engine down")

    a = _identity("a")
    registry = MetadataRegistry(alive=broken)
    registry.register(a)
    assert registry.by_ip(ADDRESS) is None and registry.by_token(a.token) is None


def test_liveness_is_asked_about_the_claiming_identity():
    asked = []
    a = _identity("a")
    registry = MetadataRegistry(alive=lambda identity: asked.append(identity) or True)
    registry.register(a)
    registry.register(_identity("elsewhere", ip="10.0.0.9"))
    assert registry.by_ip(ADDRESS) == a
    assert asked == [a]  # only claims on the caller's address are checked


def test_non_ascii_token_is_not_found():
    registry = _registry(_identity("a"))
    assert registry.by_token("é" * 24) is None
    http = TestClient(create_app(registry))
    assert http.get("/task/%C3%A9%C3%A9/latest/meta-data/instance-id").status_code == 404


# ---- the Docker runtime's side, with a stand-in engine -----------------------------------

def _inspect(running=True, ip="172.17.0.5", **state):
    return {"State": {"Running": running, **state},
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "" if not running else ip}}}}


@pytest.fixture
def runtime():
    from titus.agent.docker_runtime import DockerRuntime

    registry = MetadataRegistry(credentials=object())  # no STS needed here
    rt = DockerRuntime("agent-x", client=mock.MagicMock(), metadata=registry)
    yield rt
    rt.close()


@pytest.mark.parametrize("reply, expected", [
    (_inspect(), True),
    (_inspect(ip="172.17.0.6"), False),          # the container now has another address
    (_inspect(running=False), False),            # exited
    (_inspect(Paused=True), False),
    (_inspect(Restarting=True), False),
    (docker.errors.NotFound("gone"), False),     # removed
])
def test_runtime_liveness_needs_a_running_container_at_the_address(runtime, reply, expected):
    api = runtime.client.api
    api.inspect_container.side_effect = [reply]
    identity = _identity("a", ip="172.17.0.5")
    assert runtime.identity_alive(identity) is expected
    api.inspect_container.assert_called_once_with("c-a")


def test_runtime_liveness_without_container_is_false(runtime):
    assert runtime.identity_alive(_identity("a", container_id="")) is False
    assert runtime.metadata.alive == runtime.identity_alive  # installed on the registry


def test_runtime_forgets_the_identity_when_the_task_finishes(runtime):
    from titus.agent.docker_runtime import FINISHED, STARTED, _Task

    runtime.metadata.register(_identity("a"))
    runtime._tasks["a"] = _Task("a", container_id="c-a")
    runtime._report("a", STARTED)
    assert runtime.metadata.get("a") is not None
    runtime._report("a", FINISHED, reason="normal")
    assert runtime.metadata.get("a") is None
    runtime.metadata.register(_identity("a"))  # e.g. a late recovery: a repeat forgets again
    runtime._report("a", FINISHED, reason="normal")
    assert runtime.metadata.get("a") is None
