"""Who is calling and what they may do (scopes in :mod:`titus.master.auth`, docs/security.md).

Each route declares the scope it needs with one dependency: :func:`require_read` (every GET),
:func:`require_user` (job writes), :func:`require_admin` (capacity and instance groups) or
:func:`require_agent` (the agent protocol). The caller's :class:`~titus.master.auth.Principal`
is resolved once per request from its bearer token, or from the web UI's session cookie when
there is no bearer token (a write with the cookie must carry the session's ``X-Titus-CSRF``
header): 401 without a valid token or session, 403 when it lacks the scope. A master without
any token (``--insecure``) treats every caller as ``anonymous`` with every scope.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

from fastapi import HTTPException, Request

from titus.master.auth import ADMIN, AGENT, ANONYMOUS, READ, USER, Principal, TokenBook

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def tokens_of(request: Request) -> TokenBook:
    """The app's token book."""
    return request.app.state.tokens


def bearer(request: Request) -> Optional[str]:
    """The request's bearer token, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def caller(request: Request) -> Principal:
    """The principal of this request (401 if a token is needed and none is valid)."""
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    book = tokens_of(request)
    if not book.enabled:
        who = ANONYMOUS
    else:
        token = bearer(request)
        sessions = getattr(request.app.state, "sessions", None)
        if token is None and sessions is not None and sessions.cookie_of(request):
            # the web UI's session (titus.master.ui.sessions): a write also needs its
            # CSRF header (403 without it)
            who = sessions.principal_of(request)
        else:
            who = book.lookup(token) or request.app.state.master.agent_principal(token)
        if who is None:
            raise HTTPException(401, "a valid token is required (Authorization: Bearer ...)",
                                headers=CHALLENGE)
    request.state.principal = who
    return who


def _require(scope: str):
    # async: a dictionary lookup and a digest, not worth a worker thread per request
    async def check(request: Request) -> Principal:
        who = caller(request)
        if not who.can(scope):
            raise HTTPException(403, f"this token lacks the {scope!r} scope")
        return who
    check.__name__ = f"require_{scope}"
    check.__doc__ = f"The caller, who must hold the {scope!r} scope (401 / 403 otherwise)."
    return check


require_read = _require(READ)
require_user = _require(USER)
require_admin = _require(ADMIN)
require_agent = _require(AGENT)


def caller_scope(request: Request) -> str:
    """Who is calling, for scoping what they remember (idempotency keys): the principal."""
    return caller(request).name


class SubmitRate:
    """A token bucket per principal: at most ``burst`` submissions at once, refilled at
    ``rate`` per second (429 with ``Retry-After`` beyond it). ``rate`` 0 turns it off."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, name: str, now: Optional[float] = None) -> None:
        """Spend one submission of ``name``, or raise HTTP 429."""
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.rate
                self._buckets[name] = (tokens, now)
                raise HTTPException(429, f"more than {self.rate:g} submissions per second; "
                                         f"retry in {wait:.1f} s",
                                    headers={"Retry-After": str(max(1, round(wait)))})
            self._buckets[name] = (tokens - 1.0, now)


class StreamCap:
    """At most ``limit`` concurrent streams of one kind (observe, task logs) per principal
    (429 beyond it)."""

    def __init__(self, limit: int, kind: str = "observe"):
        self.limit = limit
        self.kind = kind
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def open(self, name: str) -> None:
        """Count one more stream of ``name``, or raise HTTP 429."""
        with self._lock:
            if self._open.get(name, 0) >= self.limit:
                raise HTTPException(429, f"at most {self.limit} {self.kind} streams per token")
            self._open[name] = self._open.get(name, 0) + 1

    def count(self, name: str) -> int:
        """How many streams ``name`` has open now."""
        with self._lock:
            return self._open.get(name, 0)

    def close(self, name: str) -> None:
        """One stream of ``name`` ended."""
        with self._lock:
            left = self._open.get(name, 1) - 1
            if left > 0:
                self._open[name] = left
            else:
                self._open.pop(name, None)


__all__ = ["ADMIN", "AGENT", "READ", "USER", "SubmitRate", "StreamCap", "bearer", "caller",
           "caller_scope", "require_admin", "require_agent", "require_read", "require_user"]
