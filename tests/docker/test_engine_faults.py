"""The Docker runtime with its engine made unreachable through a socket proxy: system errors
are retried and never counted against the task; the user's errors end it at once."""
from __future__ import annotations

import threading
import time

import pytest

from titus.agent.docker_runtime import DockerRuntime, container_name
from titus.agent.faults import SYSTEM, USER, classify_docker
from tests.docker.helpers import StatusLog, spec

pytestmark = pytest.mark.docker


def _finished(statuses, task_id):
    return [s for s in statuses.of(task_id) if s.state == "Finished"]


def test_launch_while_the_engine_is_unreachable_runs_once_it_is_back(
        proxied_runtime, statuses, engine_proxy, docker_client):
    engine_proxy.close()
    proxied_runtime.launch(spec("echo-1", ["echo", "hello"]))
    time.sleep(3.0)  # the engine stays away for a while: retried, not failed
    assert not _finished(statuses, "echo-1")
    engine_proxy.reopen()
    done = statuses.wait_for("echo-1", "Finished", timeout=30)
    assert (done.reason, done.exit_code) == ("normal", 0)
    assert len(_finished(statuses, "echo-1")) == 1
    assert proxied_runtime.stats["launch_retries"] >= 2
    assert b"hello" in b"".join(proxied_runtime.logs("echo-1"))
    assert len(docker_client.containers.list(ignore_removed=True,
        all=True, filters={"name": container_name("echo-1")})) == 1


def test_an_outage_longer_than_the_retries_is_a_system_error(engine_proxy, agent_id):
    seen = StatusLog()
    rt = DockerRuntime(agent_id, base_url=engine_proxy.url, launch_retry_sec=1.0,
                       max_backoff_sec=0.5)
    rt.start(seen)
    try:
        assert rt.connected.wait(10)
        engine_proxy.close()
        rt.launch(spec("gave-up", ["true"]))
        done = seen.wait_for("gave-up", "Finished", timeout=15)
        assert done.reason == "transientSystemError"
        assert "system error" in done.message and "engine unreachable" in done.message
    finally:
        engine_proxy.reopen()
        rt.close()


def test_an_outage_in_the_middle_of_a_launch_leaves_one_container(
        proxied_runtime, statuses, engine_proxy, docker_client):
    # cut the engine off again and again while a batch launches: every attempt that got as
    # far as creating the container is carried on by the next, never a second container
    tasks = [f"mid-{i}" for i in range(6)]
    for task_id in tasks:
        proxied_runtime.launch(spec(task_id, ["sh", "-c", "sleep 0.2"]))
    for _ in range(3):
        time.sleep(0.15)
        engine_proxy.close()
        time.sleep(0.5)
        engine_proxy.reopen()
    for task_id in tasks:
        assert statuses.wait_for(task_id, "Finished", timeout=40).reason == "normal"
        assert len(docker_client.containers.list(ignore_removed=True,
            all=True, filters={"name": container_name(task_id)})) == 1


def test_running_containers_survive_the_gap_and_their_exits_are_reported(
        proxied_runtime, statuses, engine_proxy):
    proxied_runtime.launch(spec("survivor", ["sh", "-c", "sleep 1; exit 3"]))
    statuses.wait_for("survivor", "Started", timeout=15)
    engine_proxy.close()  # the container exits while the agent cannot see the engine
    time.sleep(2.0)
    engine_proxy.reopen()
    done = statuses.wait_for("survivor", "Finished", timeout=20)
    assert (done.reason, done.exit_code) == ("failed", 3)
    assert len(_finished(statuses, "survivor")) == 1


def test_user_errors_end_the_task_at_once_and_leave_no_container(
        proxied_runtime, statuses, docker_client, agent_id):
    proxied_runtime.launch(spec("no-binary", ["/no/such/binary"]))
    done = statuses.wait_for("no-binary", "Finished", timeout=15)
    assert done.reason == "failed" and "no such file" in done.message
    assert proxied_runtime.stats["launch_retries"] == 0
    assert not docker_client.containers.list(ignore_removed=True,
        all=True, filters={"label": "titus.task_id=no-binary"})


def test_errors_are_classified_by_whose_they_are(docker_client):
    import docker.errors
    import requests

    with pytest.raises(docker.errors.ImageNotFound) as bad_image:
        docker_client.images.get("no-such/image:never")
    assert classify_docker(bad_image.value).kind == USER
    with pytest.raises(docker.errors.DockerException) as no_version:
        docker.DockerClient(base_url="unix:///nonexistent/docker.sock", timeout=2)
    assert classify_docker(no_version.value).kind == SYSTEM
    refused = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", timeout=2,
                                  version="1.41")
    with pytest.raises(requests.exceptions.ConnectionError) as down:
        refused.api.inspect_container("x")
    fault = classify_docker(down.value)
    assert fault.kind == SYSTEM and "engine unreachable" in fault.message
    assert classify_docker(docker.errors.APIError("x", explanation="overloaded")).kind == SYSTEM


def test_a_kill_during_the_outage_ends_the_launch_as_killed(
        proxied_runtime, statuses, engine_proxy):
    engine_proxy.close()
    proxied_runtime.launch(spec("kill-me", ["sleep", "30"]))
    time.sleep(0.5)
    killer = threading.Thread(target=proxied_runtime.kill, args=("kill-me", 1))
    killer.start()
    done = statuses.wait_for("kill-me", "Finished", timeout=15)
    killer.join(timeout=10)
    assert done.reason == "killed"
    engine_proxy.reopen()
