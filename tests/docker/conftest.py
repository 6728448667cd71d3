"""Fixtures for the Docker runtime tests: a real engine, the local test image, moto's STS.

Tests marked ``docker`` need a reachable Docker engine and the image built by
``.ci/docker.sh``; without them they skip, saying how to enable them, unless
``TITUS_REQUIRE_DOCKER=1`` (CI), which turns a missing engine into a failure. Tests marked
``moto`` need moto's server; ``TITUS_REQUIRE_MOTO=1`` likewise makes its absence a failure.
"""
from __future__ import annotations

import os
import uuid

import pytest

from tests.docker.helpers import TEST_IMAGE, StatusLog
ENABLE_HINT = ("run `sudo .ci/docker.sh` (installs docker.io and busybox-static, starts dockerd "
               "and imports the test image) to enable the Docker tests")


def _unavailable(message: str, require_env: str) -> None:
    if os.environ.get(require_env) == "1":
        pytest.fail(f"{message} ({require_env}=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_client():
    """A client of the local Docker engine that holds the test image, or skip/fail."""
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        _unavailable(f"no Docker engine reachable ({exc.__class__.__name__}); {ENABLE_HINT}",
                     "TITUS_REQUIRE_DOCKER")
    try:
        client.images.get(TEST_IMAGE)
    except Exception:
        _unavailable(f"test image {TEST_IMAGE} is missing; {ENABLE_HINT}", "TITUS_REQUIRE_DOCKER")
    yield client
    client.close()


@pytest.fixture
def agent_id(docker_client):
    """A fresh agent id; every container labelled with it is removed after the test."""
    ident = f"test-{uuid.uuid4().hex[:10]}"
    yield ident
    for container in docker_client.containers.list(ignore_removed=True,
            all=True, sparse=True, filters={"label": f"titus.agent_id={ident}"}):
        try:
            container.remove(force=True)
        except Exception:
            pass


@pytest.fixture
def statuses():
    """A status collector to pass as the runtime's ``emit``."""
    return StatusLog()


@pytest.fixture
def runtime(docker_client, agent_id, statuses):
    """A started DockerRuntime for a fresh agent id, closed after the test."""
    from titus.agent.docker_runtime import DockerRuntime

    rt = DockerRuntime(agent_id, client=docker_client)
    rt.start(statuses)
    assert rt.connected.wait(10), "event stream did not open"
    yield rt
    rt.close()  # leaves the shared session client open


@pytest.fixture(scope="session")
def moto_sts():
    """moto's server on 127.0.0.1 (a free port), with dummy credentials; yields its URL."""
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:
        _unavailable(f"moto server could not start: {exc}", "TITUS_REQUIRE_MOTO")
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    yield f"http://{host}:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)


@pytest.fixture
def engine_proxy(docker_client):
    """A socket proxy in front of the local engine (``tests.faults.engine_proxy``): point a
    client at ``engine_proxy.url``; ``close()`` makes the engine unreachable, ``reopen()``
    brings it back."""
    from tests.faults.engine_proxy import EngineProxy

    engine = "/var/run/docker.sock"
    if os.environ.get("DOCKER_HOST", "").startswith("unix://"):
        engine = os.environ["DOCKER_HOST"][len("unix://"):]
    with EngineProxy(engine) as proxy:
        yield proxy


@pytest.fixture
def proxied_runtime(engine_proxy, agent_id, statuses):
    """A started DockerRuntime that reaches the engine only through ``engine_proxy``
    (its launch retries bounded to 20 s)."""
    from titus.agent.docker_runtime import DockerRuntime

    rt = DockerRuntime(agent_id, base_url=engine_proxy.url, launch_retry_sec=20.0,
                       max_backoff_sec=1.0)
    rt.start(statuses)
    assert rt.connected.wait(10), "event stream did not open"
    yield rt
    engine_proxy.reopen()  # let close() and the cleanup reach the engine
    rt.close()
