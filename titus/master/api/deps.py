"""Shared pieces of the REST routers: the master, authentication, bodies, paging."""
from __future__ import annotations

import hashlib
import hmac
from typing import Optional

from fastapi import HTTPException, Request

from titus.boundary import BodyTooLarge, decode_json
from titus.master.master import Master
from titus.master.validation import SpecError


def master_of(request: Request) -> Master:
    """The master behind this app."""
    return request.app.state.master


async def read_body(request: Request, bound: int) -> bytes:
    """The request body, refused with :class:`BodyTooLarge` (413) as soon as it passes
    ``bound`` bytes (a declared ``Content-Length`` over it is refused before reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > bound:
        raise BodyTooLarge(int(declared), bound)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > bound:
            raise BodyTooLarge(size, bound)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, what: str = "request", agent: bool = False):
    """The request body decoded at the input boundary (:func:`titus.boundary.decode_json`):
    400 naming every bad field, 413 over the body bound (larger for agents)."""
    limits = master_of(request).settings.input
    bound = limits.max_agent_body_bytes if agent else limits.max_body_bytes
    return decode_json(await read_body(request, bound), limits, what, max_bytes=bound)


def caller_scope(request: Request) -> str:
    """Who is calling, for scoping what they remember (idempotency keys): a digest of the
    bearer token, or ``anonymous``."""
    token = _bearer(request)
    if token is None:
        return "anonymous"
    return "token:" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]


def _bearer(request: Request) -> Optional[str]:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(token: Optional[str], allowed) -> bool:
    if token is None:
        return False
    return any(hmac.compare_digest(token.encode(), a.encode()) for a in allowed)


def require_user(request: Request) -> None:
    """Writes need a valid user token when the master has any (401 otherwise)."""
    tokens = master_of(request).settings.user_tokens
    if tokens and not _matches(_bearer(request), tokens):
        raise HTTPException(401, "a valid user token is required (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})


def require_agent(request: Request) -> None:
    """Agent calls need the agent token when the master has one (401 otherwise)."""
    token = master_of(request).settings.agent_token
    if token and not _matches(_bearer(request), [token]):
        raise HTTPException(401, "a valid agent token is required (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})


def page(items: list, key, cursor: Optional[str], page_size: int) -> tuple[list, dict]:
    """Cursor pagination over ``items`` sorted by the integer ``key``.

    The cursor is the key of the last item returned; the next page starts after it.
    """
    after = -1
    if cursor:
        try:
            after = int(cursor)
        except ValueError:
            raise SpecError([_problem("cursor", "must be a cursor returned by a previous page",
                                      cursor)], "query") from None
    rest = [it for it in items if key(it) > after]
    chunk = rest[:page_size]
    has_more = len(rest) > page_size
    next_cursor = str(key(chunk[-1])) if chunk and has_more else ""
    return chunk, {"currentPage": {"pageSize": page_size, "cursor": cursor or ""},
                   "hasMore": has_more, "cursor": next_cursor, "totalItems": len(items)}


def _problem(field, message, value=None):
    from titus.master.validation import Problem

    return Problem(field, message, value)


def check_page_size(page_size: int) -> int:
    """A page size between 1 and 10000, else a 400 naming ``pageSize``."""
    if not (1 <= page_size <= 10_000):
        raise SpecError([_problem("pageSize", "must be between 1 and 10000", page_size)], "query")
    return page_size
