"""``/api/v3/eviction``: a job's disruption quota, and evicting a task (Titus's eviction API).

``GET /eviction/quotas/jobs/{id}`` answers ``{reference: {jobId}, quota, message}``;
``DELETE /eviction/tasks/{id}`` answers 200 with ``{allowed, reasonCode, reason}`` whether the
budget allowed it or not, as Titus does (see ``titus.master.eviction``). Evicting needs the
``user`` scope and the task's job to be the caller's (or an admin's token).
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from titus.master.api.deps import master_of
from titus.master.api.errors import SafeJSONResponse
from titus.master.api.schemas import responses
from titus.master.api.security import caller, require_read, require_user

router = APIRouter(prefix="/api/v3/eviction", tags=["eviction"],
                   dependencies=[Depends(require_read)])


class JobReference(BaseModel):
    """The job a quota is about."""

    jobId: str


class EvictionQuota(BaseModel):
    """How many tasks of the job may be disrupted now, and what limits it."""

    reference: JobReference
    quota: int
    message: str


class EvictionOutcome(BaseModel):
    """Whether the eviction was allowed (and done), with a code and a readable reason."""

    allowed: bool
    reasonCode: str
    reason: str


@router.get("/quotas/jobs/{job_id}", response_model=EvictionQuota,
            summary="How many tasks of a job its disruption budget lets go now",
            responses=responses(401, 403, 404))
def job_quota(request: Request, job_id: str):
    """The job's quota: its budget's policy and rate combined, 0 outside its time windows
    (0 for a finished job); 404 if the job never existed."""
    master = master_of(request)
    return SafeJSONResponse(master.queries.eviction_quota(job_id, master.now()))


@router.delete("/tasks/{task_id}", response_model=EvictionOutcome,
               dependencies=[Depends(require_user)],
               summary="Evict a task if its job's disruption budget allows it now",
               responses=responses(401, 403, 404, 503))
async def evict_task(request: Request, task_id: str):
    """Kill the task with reason ``evicted`` (its job replaces it) if the quota allows it.
    200 either way: ``allowed`` false with the reason when it does not, or when the task is
    already evicted, being killed or finished (a retry never kills twice). 404 if the task
    never existed; 403 unless the job is the caller's or the caller is an admin."""
    master = master_of(request)
    outcome = await run_in_threadpool(master.evict_task, task_id, caller(request))
    return SafeJSONResponse(outcome.view())
