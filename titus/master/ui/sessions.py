"""Web UI sessions: a token entered once, remembered by the master behind a cookie.

Signing in (``POST /ui/signin``) checks the token like a bearer token and, if it grants at
least the ``read`` scope, opens a session: a random 256-bit id sent to the browser in the
``titus_session`` cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS). The
master keeps only the id's SHA-256, the principal and a second random value, the session's
CSRF value; the token itself is never kept nor sent back. A session ends after
:data:`IDLE_SEC` without use, :data:`LIFETIME_SEC` after sign-in, at sign-out, or when the
master restarts (sessions live in its memory: sign in again).

A request with the cookie and no ``Authorization`` header acts as the session's principal
(``titus.master.api.security.caller``), with the same scopes and ownership rules as its
token. A write (POST, PUT, PATCH, DELETE) must also carry ``X-Titus-CSRF`` equal to the
session's CSRF value (403 otherwise): a page on another site cannot read that value, and the
cookie is not sent across sites at all (``SameSite=Strict``). This is OWASP's "synchronizer
token" pattern with a custom header.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

from fastapi import HTTPException, Request

from titus.master.auth import Principal

COOKIE = "titus_session"
CSRF_HEADER = "X-Titus-CSRF"
IDLE_SEC = 2 * 3600.0
LIFETIME_SEC = 12 * 3600.0
MAX_SESSIONS = 10_000  # the oldest session ends beyond this (each sign-in needs a valid token)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _key(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()


@dataclass
class Session:
    """One signed-in browser: who it is, its CSRF value, when it began and was last used
    (epoch seconds)."""

    principal: Principal
    csrf: str
    started: float
    used: float


class SessionBook:
    """Open sessions by the SHA-256 of their id (thread-safe)."""

    def __init__(self, idle_sec: float = IDLE_SEC, lifetime_sec: float = LIFETIME_SEC,
                 limit: int = MAX_SESSIONS, clock: Callable[[], float] = time.time):
        self.idle_sec, self.lifetime_sec, self.limit, self.clock = (
            idle_sec, lifetime_sec, limit, clock)
        self._open: OrderedDict[bytes, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, who: Principal) -> tuple[str, Session]:
        """A new session of ``who``: (the id for the cookie, the session)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(who, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._open[_key(session_id)] = session
            while len(self._open) > self.limit:
                self._open.popitem(last=False)
        return session_id, session

    def get(self, session_id: Optional[str]) -> Optional[Session]:
        """The live session of ``session_id`` (its idle time starts again), or None."""
        if not session_id or len(session_id) > 128:
            return None
        key = _key(session_id)
        now = self.clock()
        with self._lock:
            session = self._open.get(key)
            if session is None:
                return None
            if now - session.used > self.idle_sec or now - session.started > self.lifetime_sec:
                del self._open[key]
                return None
            session.used = now
            return session

    def close(self, session_id: Optional[str]) -> None:
        """End a session (sign-out); unknown ids are ignored."""
        if session_id:
            with self._lock:
                self._open.pop(_key(session_id), None)

    def __len__(self) -> int:
        return len(self._open)

    # -- requests ------------------------------------------------------------------------
    @staticmethod
    def cookie_of(request: Request) -> Optional[str]:
        """The session id a request's cookie carries, or None."""
        return request.cookies.get(COOKIE) or None

    def session_of(self, request: Request) -> Optional[Session]:
        """The live session of a request's cookie, or None."""
        return self.get(self.cookie_of(request))

    def principal_of(self, request: Request) -> Optional[Principal]:
        """The principal of the request's session (None: no live session). A write without
        the session's CSRF header raises HTTP 403 naming the header."""
        session = self.session_of(request)
        if session is None:
            return None
        if request.method not in SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                       session.csrf.encode()):
                raise HTTPException(403, f"a write with the session cookie needs the "
                                         f"{CSRF_HEADER} header of its page")
        return session.principal
