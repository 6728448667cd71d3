"""Image pulls from a registry on loopback (Debian's docker-registry, started by the test):
the pull policies, credentials from Docker's own config, and whose fault a failed pull is."""
from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.docker.helpers import TEST_IMAGE, StatusLog, spec
from tests.docker.registry import Registry, bcrypt_hash, require_registry

pytestmark = [pytest.mark.docker, pytest.mark.registry]

USER, PASSWORD = "puller", "s3cret-pass"


def push(client, registry: Registry, name: str, auth: dict | None = None) -> str:
    """Push the local test image to ``registry`` as ``name`` (a fresh tag) and drop the local
    tag, so only a pull can bring it back; returns the reference."""
    ref = f"{registry.address}/titus-test/{name}"
    tag = uuid.uuid4().hex[:10]
    client.images.get(TEST_IMAGE).tag(ref, tag)
    out = client.images.push(ref, tag, auth_config=auth)
    assert '"error"' not in out, out
    client.images.remove(f"{ref}:{tag}")
    return f"{ref}:{tag}"


@pytest.fixture(scope="module")
def registry(docker_client):
    require_registry()
    with Registry() as r:
        yield r


@pytest.fixture
def pulled(docker_client):
    """References the test pulled: their local tags are removed afterwards."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        try:
            docker_client.images.remove(ref)
        except Exception:
            pass


def order(task_id: str, command: list[str], image: str):
    launch = spec(task_id, command)
    launch.image = image
    return launch


def start(agent_id, pull, **kwargs):
    from titus.agent.docker_runtime import DockerRuntime

    statuses = StatusLog()
    rt = DockerRuntime(agent_id, pull=pull, **kwargs)
    rt.start(statuses)
    assert rt.connected.wait(10), "event stream did not open"
    return rt, statuses


def test_missing_pulls_an_image_not_on_the_host_then_runs_it(docker_client, registry, agent_id,
                                                            pulled):
    ref = push(docker_client, registry, "missing")
    pulled.append(ref)
    rt, statuses = start(agent_id, "missing")
    try:
        rt.launch(order("p1", ["sh", "-c", "exit 0"], ref))
        done = statuses.wait_for("p1", "Finished", timeout=60)
        assert done.reason == "normal", done
        assert rt.stats["pulls"] == 1
        rt.launch(order("p2", ["true"], ref))        # now on the host: no second pull
        assert statuses.wait_for("p2", "Finished", timeout=60).reason == "normal"
        assert rt.stats["pulls"] == 1
    finally:
        rt.close()


def test_always_pulls_even_an_image_on_the_host(docker_client, registry, agent_id, pulled):
    ref = push(docker_client, registry, "always")
    pulled.append(ref)
    docker_client.images.pull(ref)                       # already here
    rt, statuses = start(agent_id, "always")
    try:
        rt.launch(order("a1", ["true"], ref))
        assert statuses.wait_for("a1", "Finished", timeout=60).reason == "normal"
        assert rt.stats["pulls"] == 1
    finally:
        rt.close()


def test_never_fails_a_task_whose_image_is_not_on_the_host(docker_client, registry, agent_id):
    ref = push(docker_client, registry, "never")
    rt, statuses = start(agent_id, "never")
    try:
        rt.launch(order("n1", ["true"], ref))
        done = statuses.wait_for("n1", "Finished", timeout=30)
        assert done.reason == "failed" and "pulls are disabled" in done.message
        assert rt.stats["pulls"] == 0
    finally:
        rt.close()


def test_an_image_the_registry_does_not_have_is_the_users_error(registry, agent_id):
    rt, statuses = start(agent_id, "missing", launch_retry_sec=20.0)
    try:
        ref = f"{registry.address}/titus-test/no-such-image:{uuid.uuid4().hex[:8]}"
        rt.launch(order("u1", ["true"], ref))
        done = statuses.wait_for("u1", "Finished", timeout=30)
        assert done.reason == "failed", done                # failed at once, not retried
        assert "image not found" in done.message and "manifest unknown" in done.message
        assert rt.stats["launch_retries"] == 0
    finally:
        rt.close()


def test_a_registry_that_is_down_is_the_systems_error(docker_client, agent_id):
    from titus.cli.local_cluster import free_port

    rt, statuses = start(agent_id, "missing", launch_retry_sec=1.5, max_backoff_sec=0.25)
    try:
        ref = f"127.0.0.1:{free_port()}/titus-test/busybox:latest"  # nobody listens
        rt.launch(order("s1", ["true"], ref))
        done = statuses.wait_for("s1", "Finished", timeout=30)
        assert done.reason == "transientSystemError", done   # spends none of the user's retries
        assert "pull failed" in done.message and "connection refused" in done.message
        assert rt.stats["launch_retries"] >= 1
    finally:
        rt.close()


def test_credentials_come_from_dockers_config(docker_client, agent_id, pulled, tmp_path,
                                              monkeypatch):
    require_registry()
    if bcrypt_hash("x") is None:
        pytest.skip("no bcrypt in this Python's crypt module for the registry's htpasswd")
    auth = {"username": USER, "password": PASSWORD}
    with Registry(users={USER: PASSWORD}) as private:
        ref = push(docker_client, private, "private", auth=auth)
        pulled.append(ref)
        # without credentials: the registry refuses, the user's error (no retry)
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "config.json").write_text("{}")
        monkeypatch.setenv("DOCKER_CONFIG", str(empty))
        rt, statuses = start(agent_id, "missing", launch_retry_sec=20.0)
        try:
            rt.launch(order("c0", ["true"], ref))
            done = statuses.wait_for("c0", "Finished", timeout=30)
            assert done.reason == "failed" and "no basic auth credentials" in done.message
        finally:
            rt.close()
        # with them, as `docker login` writes them
        config = tmp_path / "docker"
        config.mkdir()
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        (config / "config.json").write_text(json.dumps({"auths": {private.address:
                                                                  {"auth": token}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(config))
        rt, statuses = start(agent_id, "missing")
        try:
            rt.launch(order("c1", ["true"], ref))
            assert statuses.wait_for("c1", "Finished", timeout=60).reason == "normal"
            assert rt.stats["pulls"] == 1
        finally:
            rt.close()


def test_the_pull_policy_is_checked():
    from titus.agent.docker_runtime import DockerRuntime

    with pytest.raises(ValueError, match="pull"):
        DockerRuntime("x", pull="sometimes", client=object())
