"""What a docker agent's host offers: resources and attributes, detected or given.

Resources (cpus, memory, disk) are read from this machine: the CPUs this process may use,
``MemTotal`` from ``/proc/meminfo``, the size of the filesystem holding the data directory.
Attributes (zone, instance type, instance id) come from EC2 instance metadata when it answers
(IMDSv2, then v1, at a configurable endpoint with a short timeout), else from the values given,
else defaults. Values given explicitly always win over detected ones.
"""
from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass, field

import httpx

from titus.protocol import HostInfo

DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254"
IMDS_ENDPOINT_ENV = "TITUS_IMDS_ENDPOINT"  # "" disables the lookup


@dataclass
class Ec2Identity:
    """The instance attributes EC2 metadata reports (empty strings when unknown)."""

    instance_id: str = ""
    instance_type: str = ""
    zone: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def read_imds(endpoint: str | None = None, timeout_sec: float = 0.3) -> Ec2Identity | None:
    """Ask EC2 instance metadata who this host is; None when it does not answer.

    ``endpoint`` defaults to ``$TITUS_IMDS_ENDPOINT`` (on EC2 set it to ``DEFAULT_IMDS_ENDPOINT``,
    the link-local address); empty or unset skips the lookup. Each request waits at most ``timeout_sec``.
    """
    if endpoint is None:
        # Only where asked: off EC2 the link-local address is nobody's to probe.
        endpoint = os.environ.get(IMDS_ENDPOINT_ENV, "")
    if not endpoint:
        return None
    base = endpoint.rstrip("/") + "/latest"
    try:
        with httpx.Client(timeout=timeout_sec, trust_env=False) as http:
            headers = {}
            try:  # IMDSv2 session token; v1 hosts answer 404/405 and are read without one
                reply = http.put(f"{base}/api/token",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
                if reply.status_code == 200:
                    headers["X-aws-ec2-metadata-token"] = reply.text
            except httpx.HTTPError:
                return None

            def get(path: str) -> str:
                answer = http.get(f"{base}/meta-data/{path}", headers=headers)
                return answer.text.strip() if answer.status_code == 200 else ""

            identity = Ec2Identity(instance_id=get("instance-id"),
                                   instance_type=get("instance-type"),
                                   zone=get("placement/availability-zone"))
    except httpx.HTTPError:
        return None
    return identity if identity.instance_id else None


def detect_cpus() -> float:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return float(len(os.sched_getaffinity(0))) or 1.0
    except AttributeError:  # not on Linux
        return float(os.cpu_count() or 1)


def detect_memory_mb() -> float:
    """Physical memory in MB (``MemTotal``), 0 when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def detect_disk_mb(path: str = "/") -> float:
    """Size in MB of the filesystem holding ``path``."""
    return shutil.disk_usage(path).total / (1024.0 * 1024.0)


def detect_host_info(*, host_id: str | None = None, cpus: float | None = None,
                     memory_mb: float | None = None, disk_mb: float | None = None,
                     network_mbps: float = 0.0, gpu: int = 0, zone: str | None = None,
                     instance_type: str | None = None, instance_id: str | None = None,
                     attributes: dict[str, str] | None = None, data_dir: str = "/",
                     imds_endpoint: str | None = None, imds_timeout_sec: float = 0.3) -> HostInfo:
    """This host, as a docker agent registers it; explicit arguments override detection.

    ``host_id`` defaults to the EC2 instance id, else the hostname.
    """
    for name, value in (("cpus", cpus), ("memory_mb", memory_mb), ("disk_mb", disk_mb),
                        ("network_mbps", network_mbps)):
        if value is not None and not float(value) >= 0:
            raise ValueError(f"{name}: must be >= 0, got {value!r}")
    ec2 = read_imds(imds_endpoint, imds_timeout_sec) or Ec2Identity()
    hostname = socket.gethostname()
    attrs = {
        "zone": zone or ec2.zone or "default",
        "instance_type": instance_type or ec2.instance_type or "unknown",
        "instance_id": instance_id or ec2.instance_id or hostname,
    }
    attrs.update(attributes or {})
    return HostInfo(
        host_id=host_id or ec2.instance_id or hostname,
        cpus=detect_cpus() if cpus is None else float(cpus),
        memory_mb=detect_memory_mb() if memory_mb is None else float(memory_mb),
        disk_mb=detect_disk_mb(data_dir) if disk_mb is None else float(disk_mb),
        network_mbps=float(network_mbps),
        gpu=int(gpu),
        attributes=attrs,
    )
