"""What a standby does with a request: serve a read, forward a write, send an agent away.

Every answer carries ``X-Titus-Staleness-Ms``: how old the data behind it may be (0 on the
leader; on a standby, the age of its copy of the store). On a standby:

- **reads** (GET) are served from its copy, except instance groups (their autoscaler runs on
  the leader only), which are forwarded like writes;
- **writes** (POST, PUT, PATCH, DELETE under ``/api/``) are forwarded to the leader with the
  caller's own headers (``Authorization``, ``Idempotency-Key``, ``Content-Type``): a redirect
  would drop the credentials in most clients. The leader's answer is passed back as it is;
  with no leader known, or the leader unreachable, the answer is 503 with ``Retry-After``;
- **agent traffic** (registration, heartbeats, orders, deregistration) gets 503 with
  ``X-Titus-Leader``: an agent must talk to the leader itself, which checks the agent's
  network address against the connection's.

A request that already came through a standby is never forwarded again (``X-Titus-
Forwarded-By``): two masters that each think the other leads answer 503 instead of looping.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re

import httpx

from titus.boundary import Problem
from titus.master.api.deps import BODY_READ_SEC
from titus.master.api.errors import error_body
from titus.master.node import LEADER as LEADING
from titus.protocol import LEADER_HEADER, ROLE_HEADER, STALENESS_HEADER

log = logging.getLogger("titus.master.forward")

STALENESS = STALENESS_HEADER.lower()
LEADER = LEADER_HEADER.lower()
ROLE = ROLE_HEADER.lower()
FORWARDED_BY = "x-titus-forwarded-by"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# headers of the caller's request that go to the leader
PASSED_ON = frozenset({"authorization", "content-type", "idempotency-key", "accept",
                       "user-agent"})
# headers of the leader's answer that come back (the rest are the connection's own)
PASSED_BACK = frozenset({"content-type", "retry-after", "location", "www-authenticate",
                         LEADER, ROLE, STALENESS})
_AGENT = re.compile(r"^/api/v3/agents/(register$|[^/]+/(heartbeat|orders)$|[^/]+$)")
FORWARD_TIMEOUT_SEC = 15.0
_BY_ID = re.compile(r"^/api/v3/(jobs|tasks)/([^/]+)$")


def agent_traffic(method: str, path: str) -> bool:
    """Whether this is an agent's own call (never served by a standby)."""
    if not _AGENT.match(path):
        return False
    return method in WRITES or path.endswith("/orders")


class Forwarding:
    """ASGI middleware in front of the REST app; ``node_of()`` gives the app's
    :class:`~titus.master.node.Node` (or ``FixedNode``), ``body_bytes`` the largest body
    forwarded (a larger one is 413 here, as the leader would answer), ``known(token)`` whether
    a bearer token is one the masters accept (a caller without one is refused here, before
    its body is read or a slot is spent waiting on the leader)."""

    def __init__(self, app, node_of, body_bytes: int, verify=True, known=None):
        self.app, self.node_of, self.body_bytes, self.verify = app, node_of, body_bytes, verify
        self.known = known or (lambda token: True)
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        node = self.node_of()
        method, path = scope["method"], scope["path"]
        if node.role != LEADING and path.startswith("/api/"):
            if agent_traffic(method, path):
                return await self._answer(send, 503, node, "this master is a standby: agents "
                                          "talk to the leader", "(leader)")
            if (method in WRITES or path.startswith("/api/v3/instanceGroups")
                    or self._unknown_here(method, path, node)):
                return await self._forward(scope, receive, send, node)
        stale = str(int(min(node.staleness, 1e12) * 1000)) if node.staleness != float(
            "inf") else "-1"

        async def stamped(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (STALENESS.encode(), stale.encode()),
                    (ROLE.encode(), node.role.encode())]
            await send(message)

        return await self.app(scope, receive, stamped)

    @staticmethod
    def _unknown_here(method: str, path: str, node) -> bool:
        """A job or task asked for by id that this standby's copy does not hold (yet): the
        leader answers, so a client reads its own writes (a job it just submitted)."""
        if method != "GET" or not node.leader_url or node.leader_url == node.url:
            return False  # no leader to ask: the copy answers
        match = _BY_ID.match(path)
        if match is None:
            return False
        kind, ident = match.groups()
        held = node.master.jobs if kind == "jobs" else node.master.tasks
        return ident not in held

    async def _forward(self, scope, receive, send, node) -> None:
        headers = [(k.lower(), v) for k, v in scope.get("headers", [])]
        names = {k for k, _ in headers}
        leader = node.leader_url
        if FORWARDED_BY.encode() in names:
            return await self._answer(send, 503, node, "this request already came through a "
                                      "standby; send it to the leader", "(leader)")
        if not leader or leader == node.url:
            return await self._answer(send, 503, node, "no leader is known right now; retry "
                                      "shortly", "(leader)")
        token = next((v for k, v in headers if k == b"authorization"), b"")
        scheme, _, value = token.partition(b" ")
        if not self.known(value.strip().decode("latin-1") if scheme.lower() == b"bearer"
                          else None):
            return await self._answer(send, 401, node, "a valid token is required "
                                      "(Authorization: Bearer ...)", "(auth)")
        body, size = [], 0
        try:
            async with asyncio.timeout(BODY_READ_SEC):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.body_bytes:
                        return await self._answer(send, 413, node, f"the body is larger than "
                                                  f"{self.body_bytes} bytes", "(body)")
                    body.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            return await self._answer(send, 408, node, f"the body did not arrive within "
                                      f"{BODY_READ_SEC:g}s", "(body)")
        passed = [(k, v) for k, v in headers if k.decode("latin-1") in PASSED_ON]
        passed.append((FORWARDED_BY.encode(), node.url.encode("latin-1", "replace")))
        # the path as the caller sent it, not decoded: %3F stays %3F, %2e%2e stays put
        target = leader.rstrip("/") + scope.get("raw_path", scope["path"].encode()).decode(
            "latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            answer = await self._http().request(scope["method"], target + ("?" + query if query
                                                                           else ""),
                                                content=b"".join(body), headers=passed)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
            log.warning("could not reach the leader %s: %s", leader, exc)
            return await self._answer(send, 503, node, "the leader could not be reached; "
                                      "nothing was sent, retry shortly", "(leader)")
        except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
            return await self._answer(send, 400, node, f"the request cannot be passed on: "
                                      f"{type(exc).__name__}", "(request)")
        except httpx.HTTPError as exc:  # sent: the leader may have applied it
            log.warning("no answer from the leader %s to %s %s: %s", leader, scope["method"],
                        scope["path"], exc)
            return await self._answer(send, 504, node, "the leader did not answer in time; it "
                                      "may have applied the request: repeat it with the same "
                                      "Idempotency-Key, or check before repeating",
                                      "(leader)")
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()
               if k.lower() in PASSED_BACK]
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": out + [(b"content-length", str(len(answer.content)).encode())]})
        await send({"type": "http.response.body", "body": answer.content})

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_SEC, verify=self.verify)
        return self._client

    async def _answer(self, send, status: int, node, message: str, field: str) -> None:
        await send_error(send, status, message, field, node.role, node.leader_url)


async def send_error(send, status: int, message: str, field: str, role: str,
                     leader=None, staleness: str = "0") -> None:
    """An answer in the one error shape, straight to ASGI ``send``, with the role and
    staleness headers (503: ``Retry-After``; ``leader``: ``X-Titus-Leader``)."""
    body = json.dumps(error_body(message, [Problem(field, message)])).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               (STALENESS.encode(), staleness.encode()), (ROLE.encode(), role.encode())]
    if status in (429, 503):
        headers.append((b"retry-after", b"1"))
    if leader:
        headers.append((LEADER.encode(), leader.encode("latin-1", "replace")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
