"""Whether the Docker engine is there for ``titus local --runtime docker``, and what to do
when it is not: one plain message, never a traceback."""
from __future__ import annotations

import os
from typing import Optional


def engine_problem() -> Optional[str]:
    """None when a Docker engine answers (found as the docker CLI finds it: ``DOCKER_HOST``,
    else the local socket); else what is wrong and what to do, in a few lines."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        import docker
    except ImportError:
        return ("the docker Python package is missing: pip install 'docker>=7' "
                "(it comes with titus: reinstall with pip install -e .)")
    try:
        client = docker.from_env(timeout=10)
        try:
            client.ping()
            client.version()
        finally:
            client.close()
    except docker.errors.DockerException as exc:
        text = str(exc)
        low = text.lower()
        if "permission denied" in low:
            return (f"the Docker engine at {where} refused this user (permission denied).\n"
                    "  Add yourself to the docker group (sudo usermod -aG docker $USER, then "
                    "log in again), or run as a user who may use Docker.")
        if "no such file" in low or "connection refused" in low or "connection aborted" in low:
            return (f"no Docker engine answers at {where}.\n"
                    "  Install and start one: sudo apt-get install docker.io && sudo "
                    "systemctl start docker (or, in a checkout of this project, "
                    "sudo bash .ci/docker.sh),\n"
                    "  or point DOCKER_HOST at a running engine. "
                    "Without Docker: titus local --runtime sim")
        return (f"the Docker engine at {where} did not answer: {' '.join(text.split())[:300]}\n"
                "  Check that it runs (docker version), or use titus local --runtime sim")
    return None
