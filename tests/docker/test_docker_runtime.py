"""DockerRuntime against the real engine: launch, limits, OOM, kill, health, logs, missing image."""
from __future__ import annotations

import threading
import time

import pytest

from titus.agent.docker_runtime import container_name
from titus.protocol import HealthCheckOrder
from tests.docker.helpers import spec

pytestmark = pytest.mark.docker


def test_batch_of_containers_runs_to_completion(runtime, statuses):
    runtime.launch(spec("ok", ["sh", "-c", "echo task=$TITUS_TASK_ID job=$TITUS_JOB_ID"]))
    runtime.launch(spec("bad", ["sh", "-c", "exit 3"]))
    runtime.launch(spec("ok2", ["true"]))

    ok = statuses.wait_for("ok", "Finished")
    bad = statuses.wait_for("bad", "Finished")
    assert (ok.reason, ok.exit_code) == ("normal", 0)
    assert (bad.reason, bad.exit_code) == ("failed", 3)
    assert statuses.wait_for("ok2", "Finished").reason == "normal"
    # every task went StartInitiated -> Started -> Finished, each reported once
    assert [s.state for s in statuses.of("ok")] == ["StartInitiated", "Started", "Finished"]
    assert b"task=ok job=job-1" in b"".join(runtime.logs("ok"))


def test_container_env_is_set_by_the_agent(runtime, statuses, agent_id):
    script = ("echo idx=$TITUS_TASK_INDEX id=$TITUS_TASK_ID job=$TITUS_JOB_ID "
              "agent=$TITUS_AGENT_ID cpu=$TITUS_NUM_CPU greeting=$GREETING")
    runtime.launch(spec("env", ["sh", "-c", script], task_index=3, job_id="j-5",
                        env={"GREETING": "hi", "TITUS_TASK_ID": "mine"}))
    assert statuses.wait_for("env", "Finished").reason == "normal"
    out = b"".join(runtime.logs("env")).decode()
    assert f"idx=3 id=env job=j-5 agent={agent_id} cpu=0.5 greeting=hi" in out


def test_limits_are_in_host_config(runtime, statuses, docker_client, agent_id):
    runtime.launch(spec("limited", ["sleep", "30"], cpus=0.25, memory_mb=48, job_id="j-9"))
    statuses.wait_for("limited", "Started")
    attrs = docker_client.api.inspect_container(container_name("limited"))
    host = attrs["HostConfig"]
    assert host["NanoCpus"] == 250_000_000
    assert host["Memory"] == 48 * 1024 * 1024
    assert host["MemorySwap"] == host["Memory"]  # no swap
    assert host["PidsLimit"] == runtime.pids_limit
    assert host["Privileged"] is False
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["LogConfig"]["Config"] == {"max-size": "10m", "max-file": "3"}
    labels = attrs["Config"]["Labels"]
    assert labels["titus.task_id"] == "limited"
    assert labels["titus.job_id"] == "j-9"
    assert labels["titus.agent_id"] == agent_id


def test_memory_hog_is_oom_killed(runtime, statuses):
    # `tail` holds its whole (newline-free) input in memory: 200 MB against a 32 MB limit.
    # The short sleep first: on cgroup v1 the engine arms its OOM watch just after start.
    runtime.launch(spec("hog", ["sh", "-c", "sleep 0.3; head -c 200000000 /dev/zero | tail"],
                        memory_mb=32))
    done = statuses.wait_for("hog", "Finished")
    assert done.reason == "oom", done
    assert done.exit_code == 137


def test_pids_limit_is_enforced(docker_client, agent_id, statuses):
    from titus.agent.docker_runtime import DockerRuntime

    rt = DockerRuntime(agent_id, client=docker_client, pids_limit=8)
    rt.start(statuses)
    try:
        # the 8th process cannot be forked: sh reports it and gives up
        rt.launch(spec("forky", ["sh", "-c",
                                 "for i in $(seq 12); do sleep 5 & done; echo all-forked"]))
        done = statuses.wait_for("forky", "Finished", timeout=20)
        output = b"".join(rt.logs("forky"))
        assert done.reason == "failed"
        assert b"can't fork" in output and b"all-forked" not in output
    finally:
        rt.close()


def test_kill_gives_a_sigterm_trapper_its_grace_period(runtime, statuses):
    # traps SIGTERM, then needs ~1.5 s to shut down: within a 5 s grace it exits by itself
    script = ("trap 'echo got-term; sleep 1.5; echo bye; exit 0' TERM; echo up; "
              "while :; do sleep 0.1; done")
    runtime.launch(spec("trapper", ["sh", "-c", script], kill_grace_sec=5))
    statuses.wait_for("trapper", "Started")
    time.sleep(0.5)  # let the shell install its trap
    began = time.time()
    runtime.kill("trapper", 5)
    done = statuses.wait_for("trapper", "Finished", timeout=15)
    took = time.time() - began
    assert done.reason == "killed"
    assert 1.4 <= took < 4.5, took
    assert done.exit_code == 0  # it finished its own shutdown: no SIGKILL
    assert b"got-term" in b"".join(runtime.logs("trapper"))
    assert b"bye" in b"".join(runtime.logs("trapper"))


def test_kill_sends_sigkill_after_grace(runtime, statuses):
    # ignores SIGTERM altogether: SIGKILL must follow after the 1 s grace
    runtime.launch(spec("stubborn", ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]))
    statuses.wait_for("stubborn", "Started")
    time.sleep(0.3)
    began = time.time()
    runtime.kill("stubborn", 1)
    done = statuses.wait_for("stubborn", "Finished", timeout=15)
    took = time.time() - began
    assert (done.reason, done.exit_code) == ("killed", 137)
    assert 0.9 <= took < 4, took


def test_health_flips_to_unhealthy(runtime, statuses):
    check = HealthCheckOrder(command=["cat", "/tmp/ok"], interval_sec=0.3, timeout_sec=1, retries=1)
    runtime.launch(spec("svc", ["sh", "-c", "touch /tmp/ok; sleep 1.5; rm /tmp/ok; sleep 30"],
                        health_check=check))
    statuses.wait_for("svc", "Started", health="healthy", timeout=10)
    unhealthy = statuses.wait_for("svc", "Started", health="unhealthy", timeout=15)
    assert unhealthy.health == "unhealthy"
    assert [s.task_id for s in runtime.list() if s.health == "unhealthy"] == ["svc"]


def test_missing_image_fails_with_a_clear_message(runtime, statuses):
    launch = spec("ghost", ["true"])
    launch.image = "no-such/image:1"
    runtime.launch(launch)
    done = statuses.wait_for("ghost", "Finished", timeout=10)
    assert done.reason == "failed"
    assert "image not found" in done.message and "no-such/image:1" in done.message
    assert [s.reason for s in runtime.list() if s.task_id == "ghost"] == ["failed"]


def test_logs_follow_during_and_read_after_the_run(runtime, statuses):
    script = "for i in 1 2 3 4; do echo line-$i; echo err-$i >&2; sleep 0.3; done"
    runtime.launch(spec("talker", ["sh", "-c", script]))
    statuses.wait_for("talker", "Started")
    followed: list[bytes] = []
    reader = threading.Thread(target=lambda: followed.extend(runtime.logs("talker", follow=True)))
    reader.start()
    time.sleep(0.5)
    assert b"line-1" in b"".join(followed)  # readable while it runs
    reader.join(timeout=10)
    assert not reader.is_alive(), "follow must end when the container ends"
    statuses.wait_for("talker", "Finished")
    after = b"".join(runtime.logs("talker"))
    for i in range(1, 5):
        assert f"line-{i}".encode() in after and f"err-{i}".encode() in after
    runtime.remove("talker")
    with pytest.raises(KeyError):
        runtime.logs("talker")


def test_bad_launch_fields_are_named():
    from titus.agent.docker_runtime import DockerRuntime

    with pytest.raises(ValueError, match="memory_mb"):
        DockerRuntime._validate(spec("x", ["true"], memory_mb=0))
    with pytest.raises(ValueError, match="cpus"):
        DockerRuntime._validate(spec("x", ["true"], cpus=-1))
    with pytest.raises(ValueError, match="health_check.retries"):
        check = HealthCheckOrder(command=["true"], retries=0)
        DockerRuntime._validate(spec("x", ["true"], health_check=check))
