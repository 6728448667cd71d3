"""``/api/v3/jobs``: create, find (filters, cursor pagination), get, kill and resize jobs."""
from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from titus import states
from titus.master.api.deps import check_page_size, json_body, master_of, page, read_now
from titus.master.api.security import caller, require_read, require_user
from titus.master.api.errors import SafeJSONResponse
from titus.master.idempotency import IdempotencyKey, body_digest, parse_key
from titus.master.api.schemas import body, responses
from titus.master.model import CapacityUpdate, JobDescriptor
from titus.master.records import JobRecord
from titus.master.roles import check_role
from titus.master.validation import Problem, SpecError, parse_capacity_update, parse_job

router = APIRouter(prefix="/api/v3", tags=["jobs"], dependencies=[Depends(require_read)])

IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Repeat a submission safely: the same key and body return the first job",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}}


@router.post("/jobs", status_code=202, dependencies=[Depends(require_user)],
             summary="Submit a job (Titus JobDescriptor JSON); returns its id",
             openapi_extra={**body(JobDescriptor), "parameters": [IDEMPOTENCY_HEADER]},
             responses=responses(400, 401, 403, 413, 422, 429, 503))
async def create_job(request: Request):
    """Validate and store a job; 400 names every bad field.

    With an ``Idempotency-Key`` header, a repeat with the same body returns the first job's
    id (no second job); the same key with another body answers 422."""
    who = caller(request)
    request.app.state.submit_rate.take(who.name)
    key = parse_key(request.headers.get("idempotency-key"))
    data = await json_body(request, "job descriptor")
    master = master_of(request)
    descriptor = parse_job(data, master.settings.job_limits(), master.settings.input)
    check_role(descriptor, who.name, master.settings)  # 403 naming a role outside its list
    remembered = None
    if key is not None:
        remembered = IdempotencyKey(who.name, key, body_digest(data))
    job = await run_in_threadpool(master.submit_job, descriptor, remembered, who)
    return SafeJSONResponse({"id": job.id}, status_code=202)


def _matches(job: JobRecord, job_state, app, group, owner, job_type, ids, attrs) -> bool:
    d = job.descriptor
    if job_state and job.state != job_state:
        return False
    if app and d.applicationName != app:
        return False
    if group and job.group != group:
        return False
    if owner and d.owner.teamEmail != owner:
        return False
    if job_type and ("BATCH" if job.batch else "SERVICE") != job_type.upper():
        return False
    if ids and job.id not in ids:
        return False
    for key, value in attrs:
        if d.attributes.get(key) != value and (value or key not in d.attributes):
            return False
    return True


@router.get("/jobs", summary="Find jobs (active by default; jobState=Finished for archived)",
            responses=responses(400,))
async def find_jobs(request: Request, jobState: Optional[str] = None,
                    applicationName: Optional[str] = None, capacityGroup: Optional[str] = None,
                    owner: Optional[str] = None, jobType: Optional[str] = None,
                    jobIds: Optional[str] = None, attributes: Optional[str] = None,
                    pageSize: int = Query(100), cursor: Optional[str] = None):
    """Jobs matching every given filter, oldest first, ``pageSize`` at a time."""
    check_page_size(pageSize)
    if jobState is not None and jobState not in states.JOB_STATES:
        raise SpecError([Problem("jobState", "must be one of " + ", ".join(states.JOB_STATES),
                                 jobState)], "query")
    if jobType is not None and jobType.upper() not in ("BATCH", "SERVICE"):
        raise SpecError([Problem("jobType", "must be BATCH or SERVICE", jobType)], "query")
    ids = set(jobIds.split(",")) if jobIds else None
    attrs = [tuple((p.split(":", 1) + [""])[:2]) for p in attributes.split(",")] if attributes else []
    args = (master_of(request).queries, (jobState, applicationName, capacityGroup, owner,
                                         jobType, ids, attrs), cursor, pageSize)
    if jobState == states.FINISHED:  # the archive: the store
        return await run_in_threadpool(_find_jobs, *args)
    return await read_now(request, _find_jobs, *args)


def _find_jobs(queries, filters: tuple, cursor: Optional[str], page_size: int):
    jobs = queries.archived_jobs() if filters[0] == states.FINISHED else queries.live_jobs()
    jobs = [j for j in jobs if _matches(j, *filters)]
    jobs.sort(key=lambda j: j.seq)
    chunk, pagination = page(jobs, lambda j: j.seq, cursor, page_size)
    return SafeJSONResponse({"items": queries.job_views(chunk), "pagination": pagination})


@router.get("/jobs/{job_id}", summary="One job (live or archived)", responses=responses(404,))
async def get_job(request: Request, job_id: str):
    """A job by id; 404 if it never existed."""
    master = master_of(request)
    if job_id in master.jobs:
        return await read_now(request, _job, master, job_id)
    return await run_in_threadpool(_job, master, job_id)  # archived, or not at all: the store


def _job(master, job_id: str):
    job, _ = master.get_job(job_id)
    return SafeJSONResponse(master.queries.job_views([job])[0])


@router.delete("/jobs/{job_id}", dependencies=[Depends(require_user)], summary="Kill a job",
               responses=responses(401, 404, 409, 503))
def kill_job(request: Request, job_id: str):
    """Kill every task of the job; the job finishes when they have all ended. A retry while
    it is being killed answers the same; once it has finished, 409."""
    master = master_of(request)
    job = master.kill_job(job_id, caller(request))
    return SafeJSONResponse(master.queries.job_views([job])[0])


@router.put("/jobs/{job_id}/instances", dependencies=[Depends(require_user)],
            summary="Change a service job's capacity {min, desired, max}",
            openapi_extra=body(CapacityUpdate),
            responses=responses(400, 401, 403, 404, 409, 413, 503))
async def resize_job(request: Request, job_id: str):
    """Resize a service job; the reconciler starts or kills tasks to match."""
    data = await json_body(request, "capacity")
    master = master_of(request)
    update = parse_capacity_update(data, master.settings.limits, master.settings.input)
    job = await run_in_threadpool(master.resize_job, job_id, update, caller(request))
    return SafeJSONResponse(master.queries.job_views([job])[0])
