"""``/api/v3/events``: the event log, read in pages (:mod:`titus.master.event_log`)."""
from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from titus.master.api.deps import master_of
from titus.master.api.errors import SafeJSONResponse
from titus.master.api.schemas import responses
from titus.master.api.security import require_read
from titus.master.event_log import DEFAULT_LIMIT, MAX_LIMIT, events_page

router = APIRouter(prefix="/api/v3", tags=["events"], dependencies=[Depends(require_read)])


@router.get("/events", summary="The event log, oldest first, in pages",
            responses={**responses(400, 401, 403, 404, 429, 503), 200: {
                "description": "A page: items (cursor, timestamp, kind, entityId, jobId, "
                               "taskId, agentId, data) and pagination {cursor, hasMore}"}})
async def events(request: Request, jobId: Optional[str] = None, taskId: Optional[str] = None,
                 cursor: Optional[str] = None,
                 limit: int = Query(DEFAULT_LIMIT, description=f"1 to {MAX_LIMIT}")):
    """Entries of the event log after ``cursor`` (from the start without one), at most
    ``limit``: every entry, or those of one job and its tasks (``jobId``), or of one task
    (``taskId``). ``pagination.cursor`` resumes after the last entry returned, also from an
    empty page, so polling with it sees every later entry exactly once. 404 for a job or task
    that never existed; 400 for a cursor not returned by this API or a limit out of range."""
    master = master_of(request)
    page = await run_in_threadpool(events_page, master.queries, jobId, taskId, cursor, limit)
    return SafeJSONResponse(page)
