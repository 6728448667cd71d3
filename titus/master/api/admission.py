"""Admission of user requests: at most ``max_inflight_requests`` at once, a bounded queue for
the rest, and 429 with ``Retry-After`` beyond it.

In the spirit of Kubernetes' API Priority and Fairness: the master's own traffic is never
queued behind users' — agents' calls (registration, heartbeats, orders), health probes and
metrics scrapes are exempt, and observe and task-log streams have their own caps
(:class:`~titus.master.api.security.StreamCap`). A user request waits at most
``admission_wait_sec`` for a slot; a full queue, or a wait that runs out, is answered 429 at
once: a client that backs off costs the master nothing, while a master that takes every
request answers all of them late (and its agents' heartbeats with them). One priority level
and one queue; per-principal fairness is the submission rate limit's
(:class:`~titus.master.api.security.SubmitRate`).
"""
from __future__ import annotations

import asyncio

from titus.master.api.forward import agent_traffic, send_error

EXEMPT_PREFIXES = ("/health", "/metrics")


def exempt(method: str, path: str) -> bool:
    """Whether a request is admitted without counting (agents, probes, scrapes, streams).
    Streams (observe, task logs) last as long as their source has something to say: they are
    capped per caller instead (:class:`~titus.master.api.security.StreamCap`), or a few of
    them would hold every slot."""
    return (path.startswith(EXEMPT_PREFIXES) or agent_traffic(method, path)
            or path.endswith("/observe")
            or (method == "GET" and path.startswith("/api/v3/tasks/") and path.endswith("/logs")))


class AdmissionStats:
    """What admission is doing now: requests in flight and waiting, 429s answered so far
    (for ``/metrics``)."""

    def __init__(self):
        self.inflight = 0
        self.waiting = 0
        self.rejected = 0


class Admission:
    """ASGI middleware admitting user requests (see the module's docstring); ``limit`` 0 turns
    it off. ``stats`` is shared with ``/metrics``."""

    def __init__(self, app, limit: int, queue: int, wait_sec: float,
                 stats: AdmissionStats | None = None, node_of=None):
        self.app, self.limit, self.queue, self.wait_sec = app, limit, queue, wait_sec
        self.node_of = node_of
        self.stats = stats if stats is not None else AdmissionStats()
        self._slots: dict = {}  # event loop -> its semaphore (an app may serve several loops)

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or self.limit <= 0
                or exempt(scope["method"], scope["path"])):
            return await self.app(scope, receive, send)
        slots = self._semaphore()
        if self.stats.inflight >= self.limit:
            if self.stats.waiting >= self.queue:
                return await self._refuse(send, "the master is at its limit of requests")
            self.stats.waiting += 1
            try:
                await asyncio.wait_for(slots.acquire(), self.wait_sec)
            except asyncio.TimeoutError:
                return await self._refuse(send, "the master could not take this request in "
                                          f"{self.wait_sec:g}s")
            finally:
                self.stats.waiting -= 1
        else:
            await slots.acquire()
        self.stats.inflight += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.stats.inflight -= 1
            slots.release()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
            for old in [k for k in self._slots if k.is_closed()]:
                del self._slots[old]
        return slots

    async def _refuse(self, send, message: str) -> None:
        self.stats.rejected += 1
        node = self.node_of() if self.node_of is not None else None
        await send_error(send, 429, f"{message}; retry after a second", "(server)",
                         node.role if node is not None else "leader",
                         node.leader_url if node is not None else None)
