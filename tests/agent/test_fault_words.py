"""Whose fault an engine error is, by its status and words (titus.agent.faults): only errors
about the task's own command or spec are the user's; the engine's own trouble, timeouts and
throttling are the system's (they never spend a user's retry)."""
from __future__ import annotations

import docker
import pytest
import requests

from titus.agent.faults import SYSTEM, USER, classify_docker


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("engine said no", response=response, explanation=explanation)


@pytest.mark.parametrize("status, words, kind", [
    (500, 'OCI runtime create failed: exec: "nope": executable file not found in $PATH', USER),
    (500, 'exec: "/bin/nope": stat /bin/nope: no such file or directory', USER),
    (500, 'exec: "/etc/passwd": permission denied', USER),
    (500, "invalid reference format", USER),
    (400, "Minimum memory limit allowed is 6MB", USER),
    (404, "No such image: nothere:latest", USER),
    # the engine's own files and cgroups: not the task's spec
    (500, "error creating overlay mount to /var/lib/docker/overlay2/x/merged: no such file "
          "or directory", SYSTEM),
    (500, "runc create failed: unable to apply cgroup configuration: mkdir "
          "/sys/fs/cgroup/x: permission denied", SYSTEM),
    (500, "Internal Server Error", SYSTEM),
    (503, "overloaded", SYSTEM),
    (408, "request timeout", SYSTEM),
    (429, "too many requests", SYSTEM),
    (404, "No such container: abc", SYSTEM),
])
def test_the_status_and_words_decide_whose_fault_it_is(status, words, kind):
    assert classify_docker(api_error(status, words)).kind == kind
