"""Metadata identities live only as long as their containers run.

A network with room for ONE container makes Docker hand a stopped container's address to the
next one, so a container that reuses an address must never read its predecessor's identity:
not by source IP, not through the predecessor's path token.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import replace

import boto3
import httpx
import pytest

from tests.docker.helpers import spec
from titus.agent.docker_runtime import container_name
from titus.agent.metadata import MetadataRegistry, MetadataServer, StsCredentials

pytestmark = [pytest.mark.docker, pytest.mark.moto]

META = "latest/meta-data"
CREDS = f"{META}/iam/security-credentials"


@pytest.fixture
def one_address_network(docker_client):
    """A bridge network on a /30: one container address, reused once its holder stops."""
    import docker.errors
    from docker.types import IPAMConfig, IPAMPool

    name = f"titus-test-{uuid.uuid4().hex[:8]}"
    for _ in range(10):  # a random subnet may overlap an existing network: try another
        octets = random.randint(64, 250), random.randint(0, 255), random.randrange(0, 256, 4)
        subnet = "10.{}.{}.{}/30".format(*octets)
        try:
            network = docker_client.networks.create(
                name, driver="bridge", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)]))
            break
        except docker.errors.APIError:
            continue
    else:
        pytest.fail("no free /30 subnet for the test network")
    yield name
    network.reload()
    for container in network.containers:
        container.remove(force=True)
    network.remove()


@pytest.fixture
def metadata_runtime(docker_client, agent_id, statuses, moto_sts, one_address_network):
    """A DockerRuntime on the one-address network, its registry and metadata server."""
    from titus.agent.docker_runtime import DockerRuntime

    registry = MetadataRegistry()
    server = MetadataServer(registry, StsCredentials(endpoint_url=moto_sts), port=0).start()
    rt = DockerRuntime(agent_id, client=docker_client, network=one_address_network,
                       metadata=registry, metadata_url=f"http://127.0.0.1:{server.port}")
    rt.start(statuses)
    assert rt.connected.wait(10), "event stream did not open"
    yield rt, registry, server
    rt.close()
    server.stop()


def _running_identity(rt, registry, statuses, task_id: str, role: str):
    """Launch ``sleep`` with ``role``; its identity once the runtime knows its address."""
    rt.launch(spec(task_id, ["sleep", "30"], iam_role=role))
    statuses.wait_for(task_id, "Started", timeout=20)
    deadline = time.time() + 10
    while time.time() < deadline:
        identity = registry.get(task_id)
        if identity is not None and identity.ip:
            return identity
        time.sleep(0.05)
    raise AssertionError(f"{task_id}: address never learned")


def _ask(docker_client, container_id: str, urls: dict[str, str]) -> dict[str, str]:
    """GET each URL from inside the container: the body, or ``HTTP <code>`` on an error."""
    script = "; ".join(f'echo "{key}=$(wget -qO- {url} 2>&1)"' for key, url in urls.items())
    out = docker_client.containers.get(container_id).exec_run(["sh", "-c", script]).output
    answers = {}
    for line in out.decode().splitlines():
        key, _, value = line.partition("=")
        if "server returned error" in value:
            value = "HTTP " + value.split("HTTP/1.1 ", 1)[1].split()[0]
        answers[key] = value.strip()
    return answers


def _caller_arn(moto_sts: str, doc: dict) -> str:
    """Whose credentials these are, as STS itself says."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=moto_sts,
                       aws_access_key_id=doc["AccessKeyId"],
                       aws_secret_access_key=doc["SecretAccessKey"],
                       aws_session_token=doc["Token"])
    return sts.get_caller_identity()["Arn"]


def _questions(base: str, a_token: str, b_token: str) -> dict[str, str]:
    return {
        "id": f"{base}/{META}/instance-id",
        "roles": f"{base}/{CREDS}/",
        "creds_b": f"{base}/{CREDS}/role-b",
        "creds_a": f"{base}/{CREDS}/role-a",
        "a_token_id": f"{base}/task/{a_token}/{META}/instance-id",
        "a_token_creds": f"{base}/task/{a_token}/{CREDS}/role-a",
        "b_token_id": f"{base}/task/{b_token}/{META}/instance-id",
    }


def test_reused_address_never_reads_the_stopped_containers_identity(
        docker_client, metadata_runtime, statuses, moto_sts):
    rt, registry, server = metadata_runtime
    base = rt._container_metadata_url()
    host_base = f"http://127.0.0.1:{server.port}"

    a = _running_identity(rt, registry, statuses, "reuse-a", "role-a")
    a_container = docker_client.containers.get(container_name("reuse-a")).id
    seen = _ask(docker_client, a_container, {"id": f"{base}/{META}/instance-id"})
    assert seen["id"] == "reuse-a"  # A, while it runs, is served by its address
    assert httpx.get(f"{host_base}/task/{a.token}/{META}/instance-id").text == "reuse-a"

    rt.kill("reuse-a", 0)
    statuses.wait_for("reuse-a", "Finished", timeout=20)
    assert registry.get("reuse-a") is None  # forgotten at the stop, not at removal
    assert httpx.get(f"{host_base}/task/{a.token}/{META}/instance-id").status_code == 404

    b = _running_identity(rt, registry, statuses, "reuse-b", "role-b")
    assert b.ip == a.ip, "the network has one address: B must reuse A's"
    b_container = docker_client.containers.get(container_name("reuse-b")).id
    questions = _questions(base, a.token, b.token)

    seen = _ask(docker_client, b_container, questions)
    assert (seen["id"], seen["roles"], seen["b_token_id"]) == ("reuse-b", "role-b", "reuse-b")
    assert "assumed-role/role-b/reuse-b" in _caller_arn(moto_sts, json.loads(seen["creds_b"]))
    assert seen["creds_a"] == seen["a_token_id"] == seen["a_token_creds"] == "HTTP 404"

    # A stop that never arrived as an event: A's identity is still registered at B's address.
    # The lookup-time check finds A's container stopped: B still reads only its own identity.
    registry.register(a)
    seen = _ask(docker_client, b_container, questions)
    assert (seen["id"], seen["roles"], seen["b_token_id"]) == ("reuse-b", "role-b", "reuse-b")
    assert seen["creds_a"] == seen["a_token_id"] == seen["a_token_creds"] == "HTTP 404"
    assert httpx.get(f"{host_base}/task/{a.token}/{META}/instance-id").status_code == 404

    # Two live claims on one address (one names B's running container): nobody is answered
    # by address; B's own path token still identifies it.
    registry.register(replace(a, task_id="claimant", token="c" * 32,
                              container_id=b.container_id))
    seen = _ask(docker_client, b_container, questions)
    assert seen["id"] == seen["roles"] == seen["creds_b"] == seen["creds_a"] == "HTTP 404"
    assert seen["b_token_id"] == "reuse-b"


def test_restarted_agent_recovers_only_running_identities(docker_client, agent_id,
                                                          metadata_runtime, statuses):
    from titus.agent.docker_runtime import DockerRuntime

    rt, registry, server = metadata_runtime
    rt.launch(spec("done", ["true"], iam_role="role-a"))
    statuses.wait_for("done", "Finished", timeout=20)
    live = _running_identity(rt, registry, statuses, "live", "role-b")  # takes done's address
    rt.close()

    recovered = MetadataRegistry()  # a restarted agent knows nothing but the containers
    rt2 = DockerRuntime(agent_id, client=docker_client, network=rt.network, metadata=recovered,
                        credentials=registry.credentials,
                        metadata_url=f"http://127.0.0.1:{server.port}")
    rt2.start(lambda status: None)
    try:
        assert rt2.connected.wait(10)
        assert recovered.get("done") is None  # exited: its token must not come back
        again = recovered.get("live")
        assert (again.token, again.container_id, again.ip) == (live.token, live.container_id,
                                                                live.ip)
        assert recovered.by_ip(live.ip) == again == recovered.by_token(live.token)
    finally:
        rt2.close()
