"""Host detection: resources from this machine, attributes from a (local, stub) EC2 IMDS."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from titus.agent.host_info import detect_host_info, read_imds

IMDS = {
    "/latest/meta-data/instance-id": "i-0abc123",
    "/latest/meta-data/instance-type": "m5.2xlarge",
    "/latest/meta-data/placement/availability-zone": "us-west-2b",
}


class _Imds(BaseHTTPRequestHandler):
    """IMDSv2: a session token from PUT, then every GET must carry it."""

    def do_PUT(self):  # noqa: N802 (http.server's naming)
        self._send(200, "tok-1" if self.path == "/latest/api/token" else "")

    def do_GET(self):  # noqa: N802
        if self.headers.get("X-aws-ec2-metadata-token") != "tok-1":
            return self._send(401, "")
        self._send(200, IMDS[self.path]) if self.path in IMDS else self._send(404, "")

    def _send(self, code: int, body: str) -> None:
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def imds_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_attributes_come_from_imds(imds_url):
    host = detect_host_info(imds_endpoint=imds_url)
    assert host.host_id == "i-0abc123"
    assert host.attributes == {"zone": "us-west-2b", "instance_type": "m5.2xlarge",
                               "instance_id": "i-0abc123"}
    assert host.cpus >= 1 and host.memory_mb > 0 and host.disk_mb > 0


def test_explicit_values_win_over_detection(imds_url):
    host = detect_host_info(imds_endpoint=imds_url, host_id="h1", cpus=3, memory_mb=2048,
                            disk_mb=10, zone="z9", attributes={"rack": "r1"})
    assert (host.host_id, host.cpus, host.memory_mb, host.disk_mb) == ("h1", 3, 2048, 10)
    assert host.attributes["zone"] == "z9"
    assert host.attributes["instance_type"] == "m5.2xlarge"  # not given: still detected
    assert host.attributes["rack"] == "r1"


def test_unreachable_imds_falls_back_quickly():
    began = time.time()
    assert read_imds(_closed_port(), timeout_sec=0.3) is None
    host = detect_host_info(imds_endpoint=_closed_port(), instance_type="c5.large")
    assert time.time() - began < 3
    assert host.host_id == socket.gethostname()
    assert host.attributes["zone"] == "default"
    assert host.attributes["instance_type"] == "c5.large"


def test_empty_endpoint_disables_the_lookup():
    assert read_imds("") is None


def test_bad_quantity_is_named():
    with pytest.raises(ValueError, match="cpus"):
        detect_host_info(imds_endpoint="", cpus=-1)


def test_docker_agent_registers_identity_from_imds(imds_url):
    from titus.agent.config import AgentConfig

    (host,) = AgentConfig(runtime="docker", imds_endpoint=imds_url, zones=["z-flag"],
                          instance_group="g1", cpus=2, memory_mb=1024).build_hosts()
    assert host.host_id == "i-0abc123"
    assert host.attributes["zone"] == "us-west-2b"  # metadata wins over the flag
    assert host.attributes["instance_type"] == "m5.2xlarge"
    assert host.attributes["instance_group"] == "g1"
    assert (host.cpus, host.memory_mb) == (2, 1024)


def test_docker_agent_without_imds_uses_flags_and_detection():
    from titus.agent.config import AgentConfig

    (host,) = AgentConfig(runtime="docker", imds_endpoint="", zones=["z-flag"],
                          instance_type="c5.large").build_hosts()
    assert host.host_id == socket.gethostname()
    assert host.attributes["zone"] == "z-flag"
    assert host.attributes["instance_type"] == "c5.large"
    assert host.cpus >= 1 and host.memory_mb > 0
