"""The agent protocol endpoints (see ``titus.protocol``) and host listings.

Who may call them is decided by :class:`~titus.master.agents.Agents` from the caller's
principal (docs/security.md, "Agents"); the address a registration gives is checked here,
against where the request came from ("Request forgery").
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_json

from titus.boundary import decode_json
from titus.protocol import Heartbeat, HeartbeatReply, RegisterRequest, RegisterResponse
from titus.master.api.errors import SafeJSONResponse
from titus.master.api.deps import json_body, master_of, read_body
from titus.master.agents import address_problem
from titus.master.api.security import caller, require_agent, require_read
from titus.master.api.schemas import body, responses
from titus.master.auth import ANONYMOUS, Principal
from titus.master.engine_adapter import HostRejected
from titus.master.validation import Problem, SpecError, parse_model, problems_of_validation

log = logging.getLogger("titus.master.api.agents")

router = APIRouter(prefix="/api/v3", tags=["agents"])


@router.post("/agents/register", response_model=RegisterResponse,
             dependencies=[Depends(require_agent)], openapi_extra=body(RegisterRequest),
             responses=responses(400, 401, 403, 409, 413, 503))
async def register(request: Request):
    """An agent (re)joins with its hosts and the tasks its runtime holds.

    The body is a ``titus.protocol.RegisterRequest``; a bad host or task is refused whole
    (400 naming it), before anything is registered, so a corrected retry is accepted. Its
    ``address`` must be a base URL on the IP address the request comes from (400). Joining
    with the bootstrap token hands the agent its own ``credential``; a host or agent id that
    a live agent holds is refused (409); another agent's credential may not register (403)."""
    master = master_of(request)
    who = caller(request)
    data = await json_body(request, "agent registration", agent=True)
    registration = parse_model(RegisterRequest, data, "agent registration", master.settings.input)
    problem = address_problem(registration.address, _source(request, who))
    if problem:
        raise SpecError([Problem("address", problem, registration.address)],
                        "agent registration")
    try:
        return await agent_work(request, master.register_agent, registration, who)
    except HostRejected as exc:  # refused whole: nothing was stored or changed
        raise SpecError([Problem(exc.field, str(exc))], "agent registration") from None


def _source(request: Request, who: Principal) -> Optional[str]:
    """The address an authenticated registration comes from ("" if unknown); None for a
    master without tokens, which binds addresses to nothing."""
    if who is ANONYMOUS:
        return None
    return request.client.host if request.client is not None else ""


@router.post("/agents/{agent_id}/heartbeat", response_model=HeartbeatReply,
             dependencies=[Depends(require_agent)], openapi_extra=body(Heartbeat),
             responses=responses(400, 401, 403, 413, 503))
async def heartbeat(request: Request, agent_id: str):
    """Status changes in; orders out. Waits up to ``wait_ms`` for orders when none are queued.

    The body is a ``titus.protocol.Heartbeat``; it is parsed straight from JSON bytes
    (the busiest request of the platform). Only the agent's own credential may send it (403).
    """
    master = master_of(request)
    who = caller(request)
    raw = await read_body(request, master.settings.input.max_agent_body_bytes)
    try:
        body = Heartbeat.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            # the fast parser only says where; the boundary names the field and why
            decode_json(raw, master.settings.input, "heartbeat",
                        max_bytes=master.settings.input.max_agent_body_bytes)
        raise SpecError(problems_of_validation(exc), "heartbeat") from None
    # a readable heartbeat from the agent itself: it is not silent, however long the master
    # takes to get to it (a refused one is no sign of a working agent)
    master.agent_arrived(agent_id, who)
    known = await agent_work(request, master.heartbeat, agent_id, body.statuses, body.running,
                             who)
    if not known:
        return _reply([], reregister=True)
    orders = master.take_orders(agent_id)
    if not orders and body.wait_ms > 0:
        await master.wait_orders(agent_id, body.wait_ms / 1000.0)
        orders = master.take_orders(agent_id)
    return _reply(orders)


def _reply(orders: list, reregister: bool = False) -> Response:
    # Orders are the protocol's dataclasses, built without validation: serialize them
    # directly with pydantic's compiled encoder (thousands of launch orders per reply).
    try:
        body = to_json({"orders": orders, "reregister": reregister})
    except (PydanticSerializationError, ValueError):
        # the orders are already taken: one that cannot be written (a task id an agent
        # reported with a lone surrogate) must not take the others down with it
        body = to_json({"orders": [o for o in orders if _writable(o)], "reregister": reregister})
    return Response(body, media_type="application/json")


def _writable(order) -> bool:
    try:
        to_json(order)
        return True
    except (PydanticSerializationError, ValueError):
        # the order's type and task only: a launch order's env may hold secrets
        log.warning("dropped a %s order for task %s that cannot be serialized",
                    getattr(order, "type", "?"), ascii(getattr(order, "task_id", "?"))[:80])
        return False


@router.delete("/agents/{agent_id}", dependencies=[Depends(require_agent)],
               responses=responses(401, 403, 404, 503))
async def deregister(request: Request, agent_id: str):
    """Graceful leave: the agent's tasks are lost (and replaced), its hosts leave the engine.
    Only the agent's own credential may (403)."""
    await agent_work(request, master_of(request).deregister_agent, agent_id, caller(request))
    return {}


AGENT_THREADS = 4


def agent_pool() -> ThreadPoolExecutor:
    """The threads agents' calls run on: their own, so a heartbeat never queues behind user
    requests for one (user endpoints share the server's default pool)."""
    return ThreadPoolExecutor(max_workers=AGENT_THREADS, thread_name_prefix="titus-agents")


async def agent_work(request: Request, fn, *args):
    """``fn(*args)`` on the app's agent threads."""
    pool = request.app.state.agent_pool
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


@router.get("/agents", summary="Registered agents and their hosts",
            dependencies=[Depends(require_read)])
def list_agents(request: Request):
    """Agents, with their hosts and when they were last heard from."""
    return SafeJSONResponse({"items": master_of(request).queries.agents()})


@router.get("/hosts", summary="Every host with its capacity, usage and attributes",
            dependencies=[Depends(require_read)])
def list_hosts(request: Request):
    """Hosts as the engine sees them: capacity, used resources, task count, attributes."""
    return SafeJSONResponse({"items": master_of(request).queries.hosts()})
