"""``/api/v3/observe``: a server-sent event stream of job and task changes.

The stream sends the current state first (``jobUpdate`` and ``taskUpdate`` events), then a
``snapshotEnd`` marker, then every change as it is committed. ``jobId`` narrows it to one job;
``limit`` ends the stream after that many live events (handy for scripts and tests). A comment
line is sent every 15 s of silence to keep proxies from closing the connection.
"""
from __future__ import annotations

import asyncio
import json
from typing import Optional

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from titus.master.api.schemas import responses
from titus.master.api.deps import master_of
from titus.master.api.security import caller, require_read
from titus.master.api.errors import servable
from titus.master.events import CLOSED

router = APIRouter(prefix="/api/v3", tags=["observe"])

KEEPALIVE_SEC = 15.0


def sse(kind: str, payload) -> str:
    """One server-sent event (strict JSON: a value no client can read is replaced)."""
    try:
        data = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except ValueError:
        data = json.dumps(servable(payload), separators=(",", ":"), allow_nan=False)
    return f"event: {kind}\ndata: {data}\n\n"


@router.get("/observe", summary="Server-sent events: snapshot, snapshotEnd, then live changes",
            response_class=StreamingResponse,
            dependencies=[Depends(require_read)],
            responses={**responses(400, 429), 200: {"description": "An event stream",
                                               "content": {"text/event-stream": {}}}})
@router.get("/jobs/observe", include_in_schema=False, dependencies=[Depends(require_read)])
async def observe(request: Request, jobId: Optional[str] = None, limit: int = 0,
                  snapshotOnly: bool = False):
    """Stream the state of jobs and tasks, then their changes (at most ``limit`` of them if
    given; none with ``snapshotOnly=true``, which ends the stream after ``snapshotEnd``)."""
    master = master_of(request)
    name = caller(request).name
    streams = request.app.state.observe_streams
    streams.open(name)  # 429 past the cap: each stream holds memory for its subscriber
    try:
        sub = master.events.subscribe(jobId)  # before the snapshot, so nothing is missed
        try:
            snapshot = [sse(kind, payload)
                        for kind, payload in master.queries.observe_snapshot(jobId)]
        except BaseException:
            master.events.unsubscribe(sub)
            raise
    except BaseException:
        streams.close(name)
        raise

    async def stream():
        try:
            for chunk in snapshot:
                yield chunk
            yield sse("snapshotEnd", {})
            if snapshotOnly:
                return
            sent = 0
            while limit <= 0 or sent < limit:
                try:
                    kind, payload = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SEC)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keepalive\n\n"
                    continue
                if (kind, payload) == CLOSED:
                    return
                yield sse(kind, payload)
                sent += 1
        finally:
            master.events.unsubscribe(sub)
            streams.close(name)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
