"""Fan-out of job and task changes to observers (the SSE observe stream).

The master publishes after each committed change, from whatever thread made it. Each
subscriber owns an ``asyncio.Queue`` on its event loop; rendering happens once per change and
only when someone listens, so an unobserved master pays nothing. A subscriber that falls too
far behind is dropped (its stream ends) rather than letting memory grow without bound.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

MAX_BACKLOG = 100_000
CLOSED = ("closed", None)


@dataclass(eq=False)
class Subscriber:
    """One observer: its loop, its queue and an optional job filter."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    job_id: Optional[str] = None
    dropped: bool = False


class EventBus:
    """Subscribers, and publication to them."""

    def __init__(self):
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, job_id: Optional[str] = None) -> Subscriber:
        """A new subscriber on the running event loop."""
        sub = Subscriber(asyncio.get_running_loop(), asyncio.Queue(), job_id)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop delivering to ``sub``."""
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    @property
    def active(self) -> bool:
        """Whether anyone listens."""
        return bool(self._subs)

    def publish(self, kind: str, job_id: str, render: Callable[[], dict]) -> None:
        """Deliver ``(kind, render())`` to every subscriber interested in ``job_id``."""
        if not self._subs:
            return
        with self._lock:
            subs = [s for s in self._subs if s.job_id in (None, job_id)]
        if not subs:
            return
        payload = render()
        for sub in subs:
            if sub.queue.qsize() > MAX_BACKLOG:
                sub.dropped = True
                self.unsubscribe(sub)
                self._put(sub, CLOSED)
                continue
            self._put(sub, (kind, payload))

    @staticmethod
    def _put(sub: Subscriber, item) -> None:
        try:
            sub.loop.call_soon_threadsafe(sub.queue.put_nowait, item)
        except RuntimeError:  # loop closed
            pass
