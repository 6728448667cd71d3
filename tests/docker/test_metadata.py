"""The container metadata service: each caller sees only its own identity; IAM credentials
come from STS AssumeRole (moto's server); real containers reach it through their env."""
from __future__ import annotations

import json
import secrets

import pytest
from fastapi.testclient import TestClient

from titus.agent.metadata import (MetadataRegistry, MetadataServer, StsCredentials, TaskIdentity,
                                  create_app, role_arn)
from tests.docker.helpers import spec


def _identity(task_id: str, **fields) -> TaskIdentity:
    fields.setdefault("token", secrets.token_urlsafe(24))
    return TaskIdentity(task_id=task_id, job_id="job-1", zone="us-east-1a", **fields)


@pytest.fixture
def registry():
    reg = MetadataRegistry()
    reg.register(_identity("task-a", ip="10.0.0.5", token="a" * 24, iam_role="app-role"))
    reg.register(_identity("task-b", ip="testclient", token="b" * 24))  # TestClient's address
    return reg


def test_token_scopes_the_caller_to_its_own_task(registry):
    http = TestClient(create_app(registry))
    base_a = "/task/" + "a" * 24 + "/latest/meta-data"
    assert http.get(f"{base_a}/instance-id").text == "task-a"
    assert http.get(f"{base_a}/local-ipv4").text == "10.0.0.5"
    assert http.get(f"{base_a}/placement/availability-zone").text == "us-east-1a"
    assert http.get(f"{base_a}/iam/security-credentials/").text == "app-role"
    assert http.get("/task/" + "z" * 24 + "/latest/meta-data/instance-id").status_code == 404


def test_source_address_identifies_the_caller(registry):
    http = TestClient(create_app(registry))
    assert http.get("/latest/meta-data/instance-id").text == "task-b"
    # task-b has no role: nothing to list, and it cannot ask for task-a's role
    assert http.get("/latest/meta-data/iam/security-credentials/").status_code == 404
    assert http.get("/latest/meta-data/iam/security-credentials/app-role").status_code == 404
    registry.unregister("task-b")
    assert http.get("/latest/meta-data/instance-id").status_code == 404


def test_imdsv2_token_is_issued(registry):
    http = TestClient(create_app(registry))
    reply = http.put("/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert reply.status_code == 200 and len(reply.text) > 20


def test_bad_identity_fields_are_named():
    with pytest.raises(ValueError, match="token"):
        MetadataRegistry().register(TaskIdentity(task_id="t", job_id="j", token="short"))
    with pytest.raises(ValueError, match="iamRole"):
        role_arn("")
    assert role_arn("app") == "arn:aws:iam::000000000000:role/app"
    assert role_arn("arn:aws:iam::1:role/x") == "arn:aws:iam::1:role/x"


@pytest.mark.moto
def test_credentials_come_from_sts_assume_role(registry, moto_sts):
    creds = StsCredentials(endpoint_url=moto_sts)
    http = TestClient(create_app(registry, creds))
    base_a = "/task/" + "a" * 24 + "/latest/meta-data/iam/security-credentials"
    doc = http.get(f"{base_a}/app-role").json()
    assert doc["Code"] == "Success" and doc["Type"] == "AWS-HMAC"
    assert doc["AccessKeyId"].startswith("ASIA") and doc["SecretAccessKey"] and doc["Token"]
    assert doc["Expiration"].endswith("Z")
    # cached until near expiry: the same credentials again
    assert http.get(f"{base_a}/app-role").json()["AccessKeyId"] == doc["AccessKeyId"]
    assert http.get(f"{base_a}/other-role").status_code == 404

    # the credentials are those of the assumed role, as STS itself says
    import boto3

    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=moto_sts,
                       aws_access_key_id=doc["AccessKeyId"],
                       aws_secret_access_key=doc["SecretAccessKey"],
                       aws_session_token=doc["Token"])
    arn = sts.get_caller_identity()["Arn"]
    assert "assumed-role/app-role/task-a" in arn


@pytest.mark.docker
@pytest.mark.moto
def test_real_container_reads_its_own_identity(docker_client, agent_id, statuses, moto_sts):
    from titus.agent.docker_runtime import DockerRuntime

    registry = MetadataRegistry()
    creds = StsCredentials(endpoint_url=moto_sts)
    server = MetadataServer(registry, creds, host="0.0.0.0", port=0).start()
    rt = DockerRuntime(agent_id, client=docker_client, metadata=registry, zone="us-east-1c",
                       metadata_url=f"http://127.0.0.1:{server.port}")
    rt.start(statuses)
    try:
        gateway = rt._container_metadata_url().rsplit(":", 1)[0]
        script = (
            'E=$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data; '
            'echo id=$(wget -qO- $E/instance-id); '
            'echo ip=$(wget -qO- $E/local-ipv4) own=$(hostname -i); '
            'echo az=$(wget -qO- $E/placement/availability-zone); '
            'echo role=$(wget -qO- $E/iam/security-credentials/); '
            'echo creds=$(wget -qO- $E/iam/security-credentials/app-role); '
            f'echo byip=$(wget -qO- {gateway}:{server.port}/latest/meta-data/instance-id); '
            f'wget -qO- {gateway}:{server.port}/task/{"x" * 32}/latest/meta-data/instance-id '
            '|| echo other=denied'
        )
        rt.launch(spec("meta-1", ["sh", "-c", "sleep 0.5; " + script], iam_role="app-role"))
        rt.launch(spec("meta-2", ["sleep", "10"]))  # a neighbour: its identity must not leak
        assert statuses.wait_for("meta-1", "Finished", timeout=30).reason == "normal"
        out = b"".join(rt.logs("meta-1")).decode()
        lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and
                     not line.startswith("creds="))
        assert lines["id"] == "meta-1"
        ip, own = lines["ip"].split(" own=")
        assert ip == own.strip() and ip.startswith("172.")
        assert lines["az"] == "us-east-1c"
        assert lines["role"] == "app-role"
        assert lines["byip"] == "meta-1"
        assert "other" in lines and lines["other"] == "denied"
        creds_line = next(line for line in out.splitlines() if line.startswith("creds="))
        assert json.loads(creds_line[len("creds="):])["AccessKeyId"].startswith("ASIA")
        assert "meta-2" not in out
    finally:
        rt.close()
        server.stop()


@pytest.mark.docker
def test_runtime_serves_metadata_on_the_bridge_when_nothing_else_does(docker_client, agent_id,
                                                                      statuses):
    from titus.agent.docker_runtime import DockerRuntime

    registry = MetadataRegistry()
    # the agent's own server listens on loopback only: containers cannot reach it
    rt = DockerRuntime(agent_id, client=docker_client, metadata=registry,
                       metadata_url="http://127.0.0.1:9", credentials=None)
    rt.start(statuses)
    try:
        url = rt._container_metadata_url()
        assert not url.startswith("http://127.") and url.startswith("http://172.")
        read_id = "wget -qO- $AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data/instance-id"
        rt.launch(spec("meta-own", ["sh", "-c", read_id]))
        assert statuses.wait_for("meta-own", "Finished", timeout=30).reason == "normal"
        assert b"".join(rt.logs("meta-own")).strip() == b"meta-own"
    finally:
        rt.close()
    assert rt._metadata_server is not None  # it was the runtime's own, and is stopped now
