"""Launch orders, built from a stored job for one placed task.

The order is :class:`titus.protocol.LaunchOrder`, the one launch type both sides share. It
carries the job's own environment only: the agent adds the ``TITUS_*`` variables
(``titus.agent.task_env``). A launch order is built once per placed task from an already
validated job, so it is a plain dataclass, not a validating model.
"""
from __future__ import annotations

from titus.master.records import JobRecord, TaskRecord
from titus.protocol import HealthCheckOrder, LaunchOrder


def launch_order(job: JobRecord, task: TaskRecord, host_id: str, ports: list[int],
                 attempt: int = 1, epoch: int = 0) -> LaunchOrder:
    """The order that starts ``task`` of ``job`` on ``host_id`` with the given ``ports``
    (``attempt``: 1 for the first order, one more for each re-send; ``epoch``: the leader's)."""
    c = job.descriptor.container
    hc = c.healthCheck
    r = c.resources
    return LaunchOrder(
        task_id=task.id, job_id=job.id, host_id=host_id, task_index=task.idx, attempt=attempt,
        epoch=epoch,
        image=c.image.reference(), entry_point=list(c.entryPoint), command=list(c.command),
        env=dict(c.env), cpus=float(r.cpu), memory_mb=float(r.memoryMB), disk_mb=float(r.diskMB),
        network_mbps=float(r.networkMbps), gpu=int(r.gpu), ports=list(ports),
        kill_grace_sec=job.kill_grace_sec, iam_role=c.securityProfile.iamRole,
        health_check=None if hc is None else HealthCheckOrder(
            command=list(hc.command), interval_sec=hc.intervalSec, timeout_sec=hc.timeoutSec,
            retries=hc.retries))
