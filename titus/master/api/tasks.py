"""``/api/v3/tasks``: find, get and kill tasks; read a task's logs through its agent."""
from __future__ import annotations

from typing import Optional

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from titus import states
from titus.master.agents import logs_url
from titus.master.api.errors import SafeJSONResponse
from titus.master.api.schemas import responses
from titus.master.api.deps import check_page_size, master_of, page, read_now
from titus.master.api.security import caller, require_read, require_user
from titus.master.errors import Conflict, NotFound
from titus.master.validation import Problem, SpecError
from titus.tls import client_context

router = APIRouter(prefix="/api/v3", tags=["tasks"], dependencies=[Depends(require_read)])


def _states(raw: Optional[str]) -> Optional[set]:
    if not raw:
        return None
    wanted = {s.strip() for s in raw.split(",") if s.strip()}
    bad = sorted(wanted - set(states.TASK_STATES))
    if bad:
        raise SpecError([Problem("taskStates", "unknown task state", bad)], "query")
    return wanted


@router.get("/tasks", summary="Find tasks (of a job, in some states)",
            responses=responses(400, 404))
async def find_tasks(request: Request, jobId: Optional[str] = None,
                     taskStates: Optional[str] = None, state: Optional[str] = None,
                     taskIds: Optional[str] = None, pageSize: int = Query(100),
                     cursor: Optional[str] = None):
    """Tasks matching the filters, oldest first; a finished job's tasks come from the archive."""
    check_page_size(pageSize)
    wanted = _states(taskStates or state)
    ids = set(taskIds.split(",")) if taskIds else None
    master = master_of(request)
    args = (master.queries, jobId or None, wanted, ids, cursor, pageSize)
    if jobId and jobId not in master.jobs:  # archived, or not at all: the store
        return await run_in_threadpool(_find_tasks, *args)
    return await read_now(request, _find_tasks, *args)


def _find_tasks(queries, job_id, wanted, ids, cursor, page_size):
    tasks = queries.tasks(job_id)  # jobId= (empty) means every job
    if wanted:
        tasks = [t for t in tasks if t.state in wanted]
    if ids:
        tasks = [t for t in tasks if t.id in ids]
    tasks.sort(key=lambda t: t.seq)
    chunk, pagination = page(tasks, lambda t: t.seq, cursor, page_size)
    return SafeJSONResponse({"items": queries.task_views(chunk), "pagination": pagination})


@router.get("/tasks/{task_id}", summary="One task, with why it is not placed if it waits",
            responses=responses(404,))
async def get_task(request: Request, task_id: str):
    """A task by id (live or archived); 404 if unknown."""
    master = master_of(request)
    if task_id in master.tasks:
        return await read_now(request, _task, master, task_id)
    return await run_in_threadpool(_task, master, task_id)  # archived, or not at all


def _task(master, task_id: str):
    task, _, _ = master.get_task(task_id)
    return SafeJSONResponse(master.queries.task_views([task])[0])


@router.delete("/tasks/{task_id}", dependencies=[Depends(require_user)], summary="Kill a task",
               responses=responses(401, 404, 409, 503))
def kill_task(request: Request, task_id: str, shrink: bool = False):
    """Kill a task; a service job replaces it unless ``shrink=true`` lowers its desired count."""
    master = master_of(request)
    task = master.kill_task(task_id, shrink=shrink, caller=caller(request))
    return SafeJSONResponse(master.queries.task_views([task])[0])


@router.get("/tasks/{task_id}/logs", summary="The task's output, read from its agent",
            response_class=StreamingResponse,
            responses={**responses(400, 404, 409), 200: {
                "description": "The task's output", "content": {"text/plain": {}}}})
async def task_logs(request: Request, task_id: str, follow: bool = False):
    """Stream the task's stdout/stderr from the agent that runs (or ran) it.

    The master only goes to the base URL the agent registered (checked then against where the
    registration came from), on this one fixed path, presenting that agent's own log token."""
    master = master_of(request)
    task, _, _ = master.get_task(task_id)
    address = master.queries.agent_address(task.agent_id)
    if not address:
        raise NotFound(task_id)
    try:
        url = logs_url(address, task.id)
    except ValueError:  # stored before addresses were checked: not one to contact
        raise Conflict("the task's agent has no usable address") from None
    # a log read lasts as long as the agent streams: not admitted (it would hold a slot),
    # capped per caller instead (429 past the cap)
    name, streams = caller(request).name, request.app.state.log_streams
    streams.open(name)
    try:
        token = await run_in_threadpool(master.agent_log_token, task.agent_id)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None),
                                   verify=client_context(master.settings.agent_ca))
        try:
            upstream = await client.send(
                client.build_request("GET", url, params={"follow": int(follow)},
                                     headers=headers),
                stream=True)
        except httpx.HTTPError as exc:
            await client.aclose()
            raise Conflict(f"the task's agent did not answer: {type(exc).__name__}") from None
        if upstream.status_code != 200:
            await upstream.aclose()
            await client.aclose()
            raise NotFound(task_id)
    except BaseException:
        streams.close(name)
        raise

    async def relay():
        try:
            async for chunk in upstream.aiter_bytes():
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()
            streams.close(name)

    # plain text whatever the agent says: an agent's HTML must not run on the master's origin
    return StreamingResponse(relay(), media_type="text/plain; charset=utf-8",
                             headers={"X-Content-Type-Options": "nosniff"})
