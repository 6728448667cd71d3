"""``/api/v3/hosts/{id}/drain``: drain a host (its tasks move off at the budgets' pace),
stop draining it, and read where its drain stands (see ``titus.master.relocation``).

Draining is a cluster operation: it needs the ``admin`` scope. The host list itself
(``GET /api/v3/hosts``, with each host's drain) is in ``api/agents.py``.
"""
from __future__ import annotations

import math
from typing import Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from titus.master.api.deps import master_of
from titus.master.api.errors import SafeJSONResponse
from titus.master.api.schemas import responses
from titus.master.api.security import caller, require_admin, require_read
from titus.master.validation import Problem, SpecError

router = APIRouter(prefix="/api/v3/hosts", tags=["hosts"], dependencies=[Depends(require_read)])

MAX_DEADLINE_SEC = 30 * 24 * 3600.0


class DrainView(BaseModel):
    """A host's drain: whether it is draining, since when (epoch s), its deadline (epoch s,
    null: none), who asked, and how many tasks are still on it."""

    id: str
    draining: bool
    tasks: int
    since: Optional[float] = None
    deadline: Optional[float] = None
    by: Optional[str] = None


def _deadline(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if not (math.isfinite(value) and 0 <= value <= MAX_DEADLINE_SEC):
        raise SpecError([Problem("deadlineSec", f"must be between 0 and {MAX_DEADLINE_SEC:g} "
                                 "seconds", repr(value))], "query")
    return value


@router.get("/{host_id}/drain", response_model=DrainView, summary="A host's drain state",
            responses=responses(401, 403, 404))
def get_drain(request: Request, host_id: str):
    """Whether the host is draining and the tasks still on it; 404 if the host is neither
    registered nor drained."""
    return SafeJSONResponse(master_of(request).queries.drain(host_id))


@router.put("/{host_id}/drain", response_model=DrainView, dependencies=[Depends(require_admin)],
            summary="Drain a host: no new tasks; its tasks move off as budgets allow",
            responses=responses(400, 401, 403, 404, 503))
async def drain(request: Request, host_id: str,
                deadlineSec: Optional[float] = Query(None, ge=0, le=MAX_DEADLINE_SEC)):
    """Drain the host (stored first: a restarted master goes on). Service tasks move
    make-before-break at their budgets' pace; batch tasks finish, or are killed and run
    elsewhere ``deadlineSec`` seconds from now. Draining again keeps when it began; a new
    ``deadlineSec`` replaces the deadline. 404 if the host is not registered."""
    deadline = _deadline(deadlineSec)
    master = master_of(request)
    await run_in_threadpool(master.drain_hosts, [host_id], deadline, caller(request))
    return SafeJSONResponse(master.queries.drain(host_id))


@router.delete("/{host_id}/drain", response_model=DrainView,
               dependencies=[Depends(require_admin)],
               summary="Stop draining a host: tasks may land on it again",
               responses=responses(401, 403, 404, 503))
async def undrain(request: Request, host_id: str):
    """Let tasks land on the host again (moves already begun go on); a host that is not
    draining is left as it is. 404 if the host is neither registered nor drained."""
    master = master_of(request)
    await run_in_threadpool(master.undrain_hosts, [host_id])
    return SafeJSONResponse(master.queries.drain(host_id))
