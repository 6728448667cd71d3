"""End to end: ``titus master`` + ``titus agent --runtime docker`` running real containers."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.docker.helpers import TEST_IMAGE, session_labels
from tests.integration.platform import Platform, reason, state
from titus.cli.local_cluster import titus_command

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FAST_MASTER_ENV = {
    "TITUS_HEARTBEAT_INTERVAL_SEC": "0.2",
    "TITUS_HEARTBEAT_TIMEOUT_SEC": "30",  # an agent restart must not look like a lost host
    "TITUS_SCHEDULE_INTERVAL_SEC": "0.05",
    "TITUS_RECONCILE_INTERVAL_SEC": "0.2",
    "TITUS_UNHEALTHY_REPLACE_SEC": "1",
}


def _job(command: str, *, size: int = 1, service: bool = False, health: dict | None = None,
         name: str = "docker-e2e", iam_role: str | None = None) -> dict:
    name_part, tag = TEST_IMAGE.rsplit(":", 1)
    container = {
        "image": {"name": name_part, "tag": tag},
        "entryPoint": ["sh", "-c"], "command": [command],
        "resources": {"cpu": 0.2, "memoryMB": 32},
        "killGracePeriodSeconds": 10,
    }
    if health:
        container["healthCheck"] = health
    if iam_role:
        container["securityProfile"] = {"iamRole": iam_role}
    body = {"applicationName": name, "owner": {"teamEmail": "e2e@example.com"},
            "container": container}
    if service:
        body["service"] = {"capacity": {"min": 0, "desired": size, "max": size},
                           "retryPolicy": {"immediate": {"retries": 100}}}
    else:
        body["batch"] = {"size": size, "retryPolicy": {"immediate": {"retries": 0}}}
    return body


class DockerPlatform(Platform):
    """A master plus docker agents as processes."""

    agent_env: dict = {}

    def start_docker_agent(self, name: str) -> subprocess.Popen:
        """Start ``titus agent --runtime docker`` for this machine's Docker engine."""
        args = ["agent", "--master", self.url, "--runtime", "docker", "--agent-id", name,
                "--cpus", "4", "--memory-mb", "4096", "--log-level", "WARNING"]
        env = dict(os.environ, TITUS_AGENT_TOKEN=self.agent_token, PYTHONUNBUFFERED="1",
                   TITUS_IMDS_ENDPOINT="", **self.agent_env)
        log = open(self.workdir / f"agent-{name}.log", "ab")
        self.agents[name] = subprocess.Popen(titus_command(*args), env=env, stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.workdir,
                                             start_new_session=True)
        log.close()
        return self.agents[name]


@pytest.fixture
def master(tmp_path, docker_client):
    """A master on SQLite, no agent yet."""
    with DockerPlatform(tmp_path / "cluster", master_env=FAST_MASTER_ENV) as plat:
        plat.start_master()
        yield plat


@pytest.fixture
def platform(master, agent_id):
    """A master on SQLite with one docker agent named ``agent_id``."""
    master.start_docker_agent(agent_id)
    return master


def _containers(docker_client, agent_id, **filters):
    return docker_client.containers.list(ignore_removed=True,
        all=True, filters={"label": f"titus.agent_id={agent_id}", **filters})


def test_batch_job_of_real_containers_runs_to_completion(platform, docker_client, agent_id):
    job_id = platform.submit(_job("echo out-$TITUS_TASK_ID index-$TITUS_TASK_INDEX; "
                                  "echo err-line >&2; sleep 0.5", size=3))
    platform.wait_job_finished(job_id, timeout=90)
    tasks = platform.tasks(job_id)
    assert len(tasks) == 3
    assert {reason(t) for t in tasks} == {"normal"}
    containers = _containers(docker_client, agent_id)
    assert {c.labels["titus.task_id"] for c in containers} >= {t["id"] for t in tasks}
    for container in containers:
        host = container.attrs["HostConfig"]
        assert host["Memory"] == host["MemorySwap"] == 32 * 1024 * 1024
        assert host["NanoCpus"] == 200_000_000 and host["Privileged"] is False
    # logs, through the master, after the run
    one = tasks[0]["id"]
    logs = platform.api.get(f"/api/v3/tasks/{one}/logs")
    assert logs.status_code == 200, logs.text
    assert f"out-{one}" in logs.text and "err-line" in logs.text
    # each container knows its own index in the job (set by the agent)
    indexes = {platform.api.get(f"/api/v3/tasks/{t['id']}/logs").text.split("index-")[1].split()[0]
               for t in tasks}
    assert indexes == {"0", "1", "2"}


def test_agent_kill_9_mid_run_loses_nothing(platform, docker_client, agent_id):
    quick = platform.submit(_job("sleep 2; echo done", name="quick"))  # ends while agent is down
    slow = platform.submit(_job("sleep 8; echo done", size=2, name="slow"))  # outlives the outage
    platform.wait_for(lambda: len(platform.running(quick)) == 1
                      and len(platform.running(slow)) == 2, 60, "3 tasks running")
    platform.kill_agent(agent_id, signal.SIGKILL)
    assert len(_containers(docker_client, agent_id, status="running")) == 3  # they live on
    time.sleep(3)
    assert len(_containers(docker_client, agent_id, status="exited")) == 1
    platform.start_docker_agent(agent_id)  # same id: it recovers its containers
    for job_id, size in ((quick, 1), (slow, 2)):
        assert state(platform.wait_job_finished(job_id, timeout=90)) == "Finished"
        tasks = platform.tasks(job_id)
        assert len(tasks) == size and {reason(t) for t in tasks} == {"normal"}
    containers = _containers(docker_client, agent_id)
    assert len(containers) == 3  # no second launch, no leak
    assert not _containers(docker_client, agent_id, status="running")


def test_orphan_container_is_reaped(platform, docker_client, agent_id):
    orphan = docker_client.containers.run(
        TEST_IMAGE, ["sleep", "60"], detach=True,
        labels=session_labels(**{"titus.task_id": "nobody-knows-me", "titus.job_id": "gone",
                                 "titus.agent_id": agent_id}))
    platform.kill_agent(agent_id, signal.SIGKILL)
    platform.start_docker_agent(agent_id)  # registers the orphan; the master has no such task

    def gone():
        return not docker_client.containers.list(ignore_removed=True, all=True, filters={"id": orphan.id})

    platform.wait_for(gone, 60, "the orphan container to be removed")


def test_unhealthy_service_task_is_replaced(platform, docker_client, agent_id):
    health = {"command": ["cat", "/tmp/ok"], "intervalSec": 0.5, "timeoutSec": 1, "retries": 1}
    job_id = platform.submit(_job("touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 600",
                                  service=True, health=health))
    first = platform.wait_for(lambda: platform.running(job_id), 60, "the service task")[0]["id"]

    def replaced():
        tasks = {t["id"]: t for t in platform.tasks(job_id)}
        others = [t for tid, t in tasks.items() if tid != first and state(t) == "Started"]
        return state(tasks[first]) == "Finished" and others and tasks[first]

    old = platform.wait_for(replaced, 60, "the unhealthy task to be replaced")
    assert reason(old) == "unhealthy"
    platform.kill_job(job_id)


@pytest.mark.moto
def test_container_gets_its_identity_and_role_credentials(master, agent_id, moto_sts):
    master.agent_env = {"TITUS_STS_ENDPOINT": moto_sts, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}
    master.start_docker_agent(agent_id)
    script = ('E=$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data; '
              'echo "id=$(wget -qO- $E/instance-id)"; '
              'echo "role=$(wget -qO- $E/iam/security-credentials/)"; '
              'wget -qO- $E/iam/security-credentials/app-role')
    job_id = master.submit(_job(script, iam_role="app-role"))
    master.wait_job_finished(job_id, timeout=90)
    task = master.tasks(job_id)[0]
    assert reason(task) == "normal"
    out = master.api.get(f"/api/v3/tasks/{task['id']}/logs").text
    assert f"id={task['id']}" in out
    assert "role=app-role" in out
    assert '"AccessKeyId": "ASIA' in out.replace('":"', '": "')


def test_task_kill_honours_the_jobs_grace_period(platform):
    # traps SIGTERM and needs ~2 s to shut down; the job grants 10 s
    script = ("trap 'echo got-term; sleep 2; echo clean-exit; exit 0' TERM; "
              "while :; do sleep 0.1; done")
    job_id = platform.submit(_job(script))
    task_id = platform.wait_for(lambda: platform.running(job_id), 60, "task running")[0]["id"]
    time.sleep(0.5)  # let the shell install its trap
    began = time.time()
    response = platform.api.delete(f"/api/v3/tasks/{task_id}")
    assert response.status_code in (200, 202, 204), response.text

    def finished():
        task = platform.api.get(f"/api/v3/tasks/{task_id}").json()
        return state(task) == "Finished" and task

    task = platform.wait_for(finished, 30, "the killed task to finish")
    assert time.time() - began >= 2.0  # it had its time
    assert reason(task) == "killed"
    logs = platform.api.get(f"/api/v3/tasks/{task_id}/logs").text
    assert "got-term" in logs and "clean-exit" in logs


def test_engine_unreachable_at_launch_does_not_spend_the_users_retries(
        master, docker_client, agent_id, engine_proxy):
    # the agent reaches its engine only through the proxy; the engine "goes away" for 6 s
    master.agent_env = {"DOCKER_HOST": engine_proxy.url}
    master.start_docker_agent(agent_id)
    master.wait_for(lambda: master.api.get("/api/v3/agents").json()["items"], 30,
                    "the agent to join")
    engine_proxy.close()
    job_id = master.submit(_job("echo hello", size=1))  # 0 retries
    time.sleep(6)
    engine_proxy.reopen()
    done = master.wait_for(lambda: state(master.job(job_id)) == "Finished" and master.job(job_id),
                           90, "the job to finish")
    assert reason(done) == "normal"
    tasks = master.tasks(job_id)
    assert [reason(t) for t in tasks if reason(t) != "transientSystemError"] == ["normal"]


def test_task_logs_follow_through_the_master_once_across_rotation(master, agent_id):
    master.agent_env = {"TITUS_DOCKER_LOG_MAX_SIZE": "10k", "TITUS_DOCKER_LOG_MAX_FILES": "2"}
    master.start_docker_agent(agent_id)
    n = 300
    # The output starts after 6 s so the follow is attached before the first rotation (starting
    # the CLI takes seconds on a busy machine); the rotations then happen while it follows.
    job_id = master.submit(_job(
        "sleep 6; i=1; while [ $i -le %d ]; do echo line-$i-%s; "
        "[ $((i %% 10)) -eq 0 ] && sleep 0.02; i=$((i+1)); done; sleep 0.5" % (n, "x" * 40)))
    (task,) = master.wait_for(
        lambda: [t for t in master.tasks(job_id) if state(t) == "Started"], 60,
        "the task to start")
    followed = subprocess.run(
        titus_command("task", "logs", task["id"], "--follow", "--url", master.url,
                      "--token", master.token), capture_output=True, timeout=120)
    assert followed.returncode == 0, followed.stderr
    numbers = [int(line.split(b"-")[1]) for line in followed.stdout.splitlines()]
    assert numbers == list(range(1, n + 1))
