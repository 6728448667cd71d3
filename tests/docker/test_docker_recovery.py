"""DockerRuntime recovery: a restarted agent finds its containers; orphans are reaped; a broken
event stream is reconnected and nothing that happened meanwhile is lost."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from titus.agent.docker_runtime import DockerRuntime, container_name
from tests.docker.helpers import TEST_IMAGE, StatusLog, session_labels, spec

pytestmark = pytest.mark.docker
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _stop_watching(rt: DockerRuntime) -> None:
    """Drop a runtime as a dead agent would: no cleanup of its containers."""
    rt.close()


def test_restarted_runtime_recovers_running_and_exited_containers(docker_client, agent_id):
    first = StatusLog()
    old = DockerRuntime(agent_id, client=docker_client)
    old.start(first)
    old.launch(spec("long", ["sleep", "30"]))
    old.launch(spec("short", ["sh", "-c", "sleep 1; exit 5"]))
    old.launch(spec("clean", ["sh", "-c", "sleep 1"]))
    for task in ("long", "short", "clean"):
        first.wait_for(task, "Started")
    _stop_watching(old)  # the agent dies; "short" and "clean" exit while nobody watches
    time.sleep(2)

    second = StatusLog()
    new = DockerRuntime(agent_id, client=docker_client)
    new.start(second)
    recovered = {s.task_id: s for s in new.list()}
    assert set(recovered) == {"long", "short", "clean"}
    assert recovered["long"].state == "Started"
    assert (recovered["short"].state, recovered["short"].reason, recovered["short"].exit_code) == \
        ("Finished", "failed", 5)
    assert (recovered["clean"].state, recovered["clean"].reason) == ("Finished", "normal")

    # and it carries on: the recovered container can be killed through the new runtime
    new.kill("long", 1)
    assert second.wait_for("long", "Finished", timeout=15).reason == "killed"
    _stop_watching(new)


def _strand(docker_client, agent_id, task_id):
    """A container created but never started: its agent died in between."""
    return docker_client.containers.create(
        TEST_IMAGE, ["sh", "-c", "exit 0"], name=container_name(task_id),
        labels=session_labels(**{"titus.task_id": task_id, "titus.job_id": "j",
                                 "titus.agent_id": agent_id}))


def test_created_container_waits_for_the_masters_word_then_starts(docker_client, agent_id):
    _strand(docker_client, agent_id, "stranded")
    seen = StatusLog()
    rt = DockerRuntime(agent_id, client=docker_client)
    assert [(s.task_id, s.state) for s in rt.list()] == [("stranded", "StartInitiated")]
    rt.start(seen)
    try:
        assert rt.connected.wait(10)
        time.sleep(0.5)  # not started on the runtime's own say
        assert docker_client.containers.get(container_name("stranded")).status == "created"
        rt.launch(spec("stranded", ["sh", "-c", "exit 0"]))  # the master still wants it
        assert seen.wait_for("stranded", "Finished", timeout=15).reason == "normal"
    finally:
        _stop_watching(rt)


def test_created_container_of_an_unknown_task_is_removed_on_kill(docker_client, agent_id):
    created = _strand(docker_client, agent_id, "unknown")
    seen = StatusLog()
    rt = DockerRuntime(agent_id, client=docker_client)
    rt.list()
    rt.start(seen)
    try:
        assert rt.connected.wait(10)
        rt.kill("unknown", 0)  # the master does not know the task
        done = seen.wait_for("unknown", "Finished", timeout=15)
        assert (done.reason, done.message) == ("killed", "killed before start")
        assert not docker_client.containers.list(ignore_removed=True, all=True, filters={"id": created.id})
    finally:
        _stop_watching(rt)


def test_repeated_launch_order_reuses_the_container(runtime, statuses, docker_client, agent_id):
    runtime.launch(spec("twice", ["sleep", "30"]))
    statuses.wait_for("twice", "Started")
    # a fresh runtime (the agent restarted) gets the same launch order again
    other = DockerRuntime(agent_id, client=docker_client)
    seen = StatusLog()
    other.start(seen)
    try:
        assert other.connected.wait(10)
        other._tasks.clear()  # as if it had not recovered the task yet
        other.launch(spec("twice", ["sleep", "30"]))
        assert seen.wait_for("twice", "Started", timeout=15)
        assert not [s for s in seen.of("twice") if s.state == "Finished"]
        assert len(docker_client.containers.list(ignore_removed=True,
            all=True, filters={"label": "titus.task_id=twice"})) == 1
    finally:
        _stop_watching(other)


def test_orphan_container_is_listed_and_reaped(runtime, docker_client, agent_id):
    # a labelled container whose task nobody knows (e.g. left from a lost launch)
    orphan = docker_client.containers.run(
        TEST_IMAGE, ["sleep", "30"], detach=True, name=container_name("orphan-1"),
        labels=session_labels(**{"titus.task_id": "orphan-1", "titus.job_id": "gone",
                                 "titus.agent_id": agent_id}))
    assert "orphan-1" in {s.task_id for s in runtime.list()}
    runtime.remove("orphan-1")
    assert not docker_client.containers.list(ignore_removed=True, all=True, filters={"id": orphan.id})
    assert "orphan-1" not in {s.task_id for s in runtime.list()}


def test_other_agents_containers_are_left_alone(runtime, docker_client, agent_id):
    stranger = docker_client.containers.run(
        TEST_IMAGE, ["sleep", "30"], detach=True,
        labels=session_labels(**{"titus.task_id": "theirs",
                                 "titus.agent_id": agent_id + "-other"}))
    try:
        assert "theirs" not in {s.task_id for s in runtime.list()}
    finally:
        stranger.remove(force=True)


def test_event_stream_loss_is_survived(runtime, statuses, monkeypatch):
    runtime.launch(spec("during-outage", ["sh", "-c", "sleep 0.5; exit 7"]))
    statuses.wait_for("during-outage", "Started")
    # The engine "goes away": the stream breaks and reconnects fail for a while, during
    # which the container exits. Its exit must still be reported, from the re-sync.
    real_events = runtime.client.events
    outage_until = time.time() + 2.0
    attempts = []

    def flaky_events(*args, **kwargs):
        attempts.append(time.time())
        if time.time() < outage_until:
            raise ConnectionError("engine unreachable")
        return real_events(*args, **kwargs)

    monkeypatch.setattr(runtime.client, "events", flaky_events)
    runtime._events.close()
    time.sleep(1.0)
    assert not [s for s in statuses.of("during-outage") if s.state == "Finished"]
    finished = statuses.wait_for("during-outage", "Finished", timeout=15)
    assert (finished.reason, finished.exit_code) == ("failed", 7)
    assert len(attempts) >= 3  # it retried, with back-off rather than a busy loop
    assert len(attempts) < 30
    assert runtime.connected.wait(10), "watcher did not reconnect"
    # events flow again after the reconnect
    runtime.launch(spec("after-outage", ["true"]))
    assert statuses.wait_for("after-outage", "Finished", timeout=15).reason == "normal"
    assert len([s for s in statuses.of("during-outage") if s.state == "Finished"]) == 1


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TITUS_DOCKER_RESTART_TEST") != "1",
                    reason="restarts the shared Docker engine; set TITUS_DOCKER_RESTART_TEST=1 "
                           "(needs root and an engine started by .ci/docker.sh)")
def test_real_engine_restart_is_survived(runtime, statuses):
    pidfile = "/var/run/titus-dockerd.pid"
    if not os.path.exists(pidfile):
        pytest.skip("dockerd was not started by .ci/docker.sh")
    runtime.launch(spec("across-restart", ["sleep", "60"]))
    statuses.wait_for("across-restart", "Started")
    pid = int(open(pidfile).read())
    os.kill(pid, signal.SIGTERM)  # the engine stops its containers as it goes down
    deadline = time.time() + 30
    while time.time() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.2)
    subprocess.run([os.path.join(ROOT, ".ci", "docker.sh")], check=True, timeout=120)
    finished = statuses.wait_for("across-restart", "Finished", timeout=30)
    assert finished.reason == "failed"  # the container died with the engine, not by our kill
    assert runtime.connected.wait(15)
    runtime.launch(spec("after-restart", ["true"]))
    assert statuses.wait_for("after-restart", "Finished", timeout=30).reason == "normal"
