"""The environment of a task's container, set by the agent from the launch order.

The job's own ``env`` comes first; the ``TITUS_*`` variables describing the task, its host and
its resources are added on top (they win over a user value of the same name).
"""
from __future__ import annotations

from titus.protocol import LaunchOrder


def container_env(order: LaunchOrder, agent_id: str) -> dict[str, str]:
    """The job's env plus the task's ``TITUS_*`` variables (a new dict; the order is untouched)."""
    env = dict(order.env)
    env.update({
        "TITUS_JOB_ID": order.job_id,
        "TITUS_TASK_ID": order.task_id,
        "TITUS_TASK_INSTANCE_ID": order.task_id,
        "TITUS_TASK_INDEX": str(order.task_index),
        "TITUS_HOST_ID": order.host_id,
        "TITUS_AGENT_ID": agent_id,
        "TITUS_NUM_CPU": f"{order.cpus:g}",
        "TITUS_NUM_MEM": f"{order.memory_mb:g}",
        "TITUS_NUM_DISK": f"{order.disk_mb:g}",
        "TITUS_NUM_NETWORK_BANDWIDTH": f"{order.network_mbps:g}",
    })
    return env
