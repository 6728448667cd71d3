"""The container environment: set by the agent alone, from the launch order it received."""
import json

import pytest

from titus.agent.task_env import container_env
from titus.protocol import HeartbeatReply, LaunchOrder

TITUS_NAMES = {"TITUS_JOB_ID", "TITUS_TASK_ID", "TITUS_TASK_INSTANCE_ID", "TITUS_TASK_INDEX",
               "TITUS_HOST_ID", "TITUS_AGENT_ID", "TITUS_NUM_CPU", "TITUS_NUM_MEM",
               "TITUS_NUM_DISK", "TITUS_NUM_NETWORK_BANDWIDTH"}


def order(**fields):
    base = dict(task_id="t-1", job_id="j-1", task_index=4, host_id="h-7", image="alpine:latest",
                env={"GREETING": "hi"}, cpus=1.5, memory_mb=512.0, disk_mb=10240.0,
                network_mbps=128.0)
    return LaunchOrder(**{**base, **fields})


def test_the_agent_sets_every_titus_variable():
    launch = order()
    assert not any(name.startswith("TITUS_") for name in launch.env)
    env = container_env(launch, "agent-9")
    assert env == {
        "GREETING": "hi",
        "TITUS_JOB_ID": "j-1", "TITUS_TASK_ID": "t-1", "TITUS_TASK_INSTANCE_ID": "t-1",
        "TITUS_TASK_INDEX": "4", "TITUS_HOST_ID": "h-7", "TITUS_AGENT_ID": "agent-9",
        "TITUS_NUM_CPU": "1.5", "TITUS_NUM_MEM": "512", "TITUS_NUM_DISK": "10240",
        "TITUS_NUM_NETWORK_BANDWIDTH": "128",
    }


def test_user_values_survive_and_titus_values_win():
    user = {"GREETING": "hi", "TITUS_TASK_ID": "mine", "TITUS_TASK_INDEX": "99",
            "TITUS_SIM_DURATION_SEC": "3"}
    launch = order(env=dict(user))
    env = container_env(launch, "agent-9")
    assert env["GREETING"] == "hi" and env["TITUS_SIM_DURATION_SEC"] == "3"
    assert env["TITUS_TASK_ID"] == "t-1" and env["TITUS_TASK_INDEX"] == "4"
    assert launch.env == user  # the order itself is left as received


def test_index_zero_is_set_too():
    assert container_env(order(task_index=0), "a")["TITUS_TASK_INDEX"] == "0"


@pytest.mark.parametrize("legacy", [False, True], ids=["task_index", "legacy-env-only"])
def test_env_from_a_received_order(legacy):
    """Both wire shapes give the same container env: the new one (task_index, user env only)
    and the one of masters that put the ids into env themselves."""
    wire = {"type": "launch", "task_id": "t-1", "job_id": "j-1", "host_id": "h-7",
            "image": "alpine:latest", "env": {"GREETING": "hi"}}
    if legacy:
        wire["env"].update({"TITUS_JOB_ID": "j-1", "TITUS_TASK_ID": "t-1",
                            "TITUS_TASK_INDEX": "4"})
    else:
        wire["task_index"] = 4
    (launch,) = HeartbeatReply.model_validate_json(json.dumps({"orders": [wire]})).orders
    env = container_env(launch, "agent-9")
    assert TITUS_NAMES <= set(env)
    assert (env["TITUS_TASK_INDEX"], env["TITUS_JOB_ID"], env["GREETING"]) == ("4", "j-1", "hi")


class _StubContainers:
    def __init__(self):
        self.created = []

    def create(self, **kwargs):
        self.created.append(kwargs)
        return kwargs


class _StubDockerClient:
    """Only what DockerRuntime._create touches: no engine needed."""

    def __init__(self):
        self.containers = _StubContainers()


def test_docker_containers_get_the_agents_env():
    from titus.agent.docker_runtime import DockerRuntime

    client = _StubDockerClient()
    runtime = DockerRuntime("agent-9", client=client)
    try:
        runtime._create(order(env={"GREETING": "hi", "TITUS_TASK_ID": "mine"}))
    finally:
        runtime.close()
    (created,) = client.containers.created
    env = created["environment"]
    assert env == container_env(order(), "agent-9")
    assert env["TITUS_TASK_ID"] == "t-1" and env["TITUS_TASK_INDEX"] == "4"
    assert created["labels"]["titus.task_id"] == "t-1"
