"""Shared pieces of the REST routers: the master, bodies, paging (who may call: ``security``)."""
from __future__ import annotations

import asyncio
from typing import Optional
from urllib.parse import unquote_to_bytes

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from titus.boundary import BodyTooLarge, Problem, decode_json
from titus.master.master import Master
from titus.master.validation import SpecError


# How long a client may take to send its body (a slow client is answered 408).
BODY_READ_SEC = 10.0
# Bodies larger than this are decoded on a worker thread.
INLINE_DECODE_BYTES = 64 * 1024


def master_of(request: Request) -> Master:
    """The master behind this app."""
    return request.app.state.master


async def read_now(request: Request, fn, *args):
    """``fn(*args)``, a read of the master's memory: on the event loop when the state lock is
    free at once (a hop to a worker thread costs a page of views more than rendering it), else
    on a worker thread, so the event loop never waits for a scheduling round. Reads that may
    go to the store (the archive) use a worker thread always (:func:`run_in_threadpool`)."""
    done, out = master_of(request).read_if_free(fn, *args)
    if done:
        return out
    return await run_in_threadpool(fn, *args)


async def read_body(request: Request, bound: int) -> bytes:
    """The request body, refused with :class:`BodyTooLarge` (413) as soon as it passes
    ``bound`` bytes (a declared ``Content-Length`` over it is refused before reading), and
    with :class:`UnsupportedMediaType` (415) unless it is declared JSON: a browser cannot send
    that type across origins without asking first, so a page elsewhere cannot post here."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > bound:
        raise BodyTooLarge(int(declared), bound)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_READ_SEC):  # a trickled body must not hold a slot
            async for chunk in request.stream():
                size += len(chunk)
                if size > bound:
                    raise BodyTooLarge(size, bound)
                chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone() from None
    except TimeoutError:
        raise BodyTooSlow(size) from None
    body = b"".join(chunks)
    if body.strip() and not _json_type(request.headers.get("content-type", "")):
        raise UnsupportedMediaType(request.headers.get("content-type", ""))
    return body


def _json_type(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                            and media.endswith("+json"))


class UnsupportedMediaType(ValueError):
    """A body not declared ``application/json`` (HTTP 415)."""

    def __init__(self, given: str):
        super().__init__(f"send the body as Content-Type: application/json (got {given!r})")


class BodyTooSlow(ValueError):
    """The body did not arrive within :data:`BODY_READ_SEC` (HTTP 408): a client that
    trickles its body would otherwise hold one of the master's admission slots."""

    def __init__(self, received: int):
        super().__init__(f"the body did not arrive within {BODY_READ_SEC:g}s "
                         f"({received} bytes came)")


class ClientGone(ConnectionError):
    """The client left before its body arrived: nothing to answer, nothing to log."""


async def json_body(request: Request, what: str = "request", agent: bool = False):
    """The request body decoded at the input boundary (:func:`titus.boundary.decode_json`):
    400 naming every bad field, 413 over the body bound (larger for agents). A large body is
    decoded on a worker thread, never on the event loop that carries agents' heartbeats."""
    limits = master_of(request).settings.input
    bound = limits.max_agent_body_bytes if agent else limits.max_body_bytes
    raw = await read_body(request, bound)
    if len(raw) > INLINE_DECODE_BYTES:
        return await run_in_threadpool(decode_json, raw, limits, what, max_bytes=bound)
    return decode_json(raw, limits, what, max_bytes=bound)


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


def utf8_path(request: Request) -> None:
    """400 naming the path parameter (``job_id``, ``name`` ...) whose percent-decoded bytes
    are not UTF-8 (``/capacityGroups/%ED%A0%80``). The server would read them as U+FFFD, so a
    PUT would create, and a DELETE remove, an object under a name the client never sent.
    Installed on the app: it runs for every route, before the token check."""
    raw = request.scope.get("raw_path") or b""
    if b"%" not in raw:
        return  # the request line itself is ASCII (the HTTP server refuses anything else)
    try:
        unquote_to_bytes(raw).decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    problems = [Problem(name, "not UTF-8 once percent-decoded", value)
                for name, value in request.path_params.items() if "\ufffd" in str(value)]
    raise SpecError(problems or [Problem("(path)", "not UTF-8 once percent-decoded")], "path")
