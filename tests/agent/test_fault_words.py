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


@pytest.mark.parametrize("status, words, kind", [
    # the registry answered: the image, tag or access does not exist (the user's)
    (404, "manifest for 127.0.0.1:5000/x:latest not found: manifest unknown: manifest unknown",
     USER),
    (404, "pull access denied for nope/nope, repository does not exist or may require "
          "'docker login': denied: requested access to the resource is denied", USER),
    (500, 'Head "http://127.0.0.1:5000/v2/x/manifests/latest": no basic auth credentials',
     USER),
    (500, "unauthorized: authentication required", USER),
    (400, "invalid reference format", USER),
    # the registry or the engine could not serve (the system's)
    (500, 'Get "http://127.0.0.1:5599/v2/": dial tcp 127.0.0.1:5599: connect: connection '
          "refused", SYSTEM),
    (500, 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: '
          "no such host", SYSTEM),
    (500, "received unexpected HTTP status: 503 Service Unavailable", SYSTEM),
    (500, "toomanyrequests: You have reached your pull rate limit", SYSTEM),
    (429, "too many requests", SYSTEM),
    (500, "net/http: request canceled while waiting for connection (Client.Timeout exceeded)",
     SYSTEM),
])
def test_a_pull_is_the_users_fault_only_when_the_registry_refused_what_was_asked(
        status, words, kind):
    from titus.agent.faults import classify_pull

    fault = classify_pull(api_error(status, words))
    assert fault.kind == kind, fault
    assert fault.message.startswith("pull failed")


def test_a_pull_that_never_reached_the_engine_is_the_systems():
    from titus.agent.faults import classify_pull

    assert classify_pull(requests.ConnectionError("refused")).kind == SYSTEM
