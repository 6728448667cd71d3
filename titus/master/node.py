"""One master process among several on one store: leader or standby, and the moves between.

A :class:`Node` holds the store, the lease (:mod:`titus.master.lease`) and the master the REST
API serves (``node.master``):

- **leader**: a :class:`~titus.master.master.Master` rebuilt from the store when the lease was
  taken, with its scheduling loop and autoscaler running; every write is fenced by its epoch;
- **standby**: a read-only copy of the store, rebuilt every ``standby_refresh_sec`` (or twice
  as long as a rebuild takes, whichever is longer): reads are served from it, with their
  staleness; writes are forwarded to the leader (:mod:`titus.master.api.forward`);
- **starting**: between taking the lease and serving as leader (the rebuild): writes wait.

A thread (``titus-lease``) renews or tries to take the lease. A leader that cannot renew for a
whole lease, that finds the lease taken, or whose write was fenced, stops its loop and
autoscaler and becomes a standby again (Kubernetes' components exit instead; staying up keeps
serving reads). Memory is never trusted across roles: each new term rebuilds from the store.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from typing import Callable, Optional

from titus.master.config import MasterSettings
from titus.master.errors import StoreUnavailable
from titus.master.events import EventBus
from titus.master.follow import Views, publish_changes
from titus.master.lease import Fence, Lease
from titus.master.master import Master
from titus.master.store import Store

log = logging.getLogger("titus.master.node")

LEADER, STANDBY, STARTING = "leader", "standby", "starting"
# The longest an agent waits on one request to a master (titus.agent.config's
# request_timeout_sec default): a new leader's grace covers it.
AGENT_REQUEST_SEC = 30.0


class Node:
    """A master process's role, its master, and the election thread.

    ``make_services(master)`` returns what runs beside a leader's master (started on taking
    the lease, stopped on losing it): objects with ``start()`` and ``stop()``."""

    def __init__(self, settings: MasterSettings, store: Optional[Store] = None,
                 make_services: Optional[Callable[[Master], list]] = None,
                 clock: Callable[[], float] = time.time):
        self.settings, self.clock = settings, clock
        self.store = store or Store(settings.store_url)
        self.instance = uuid.uuid4().hex
        self.store.name_sessions(self.instance)
        self.url = settings.own_url
        self.events = EventBus()  # observers keep listening across roles
        self.fence = Fence(self.instance, on_fenced=self._fenced)
        self.store.fence = self.fence
        self.lease = Lease(self.store, self.instance, self.url, settings.lease_sec)
        self.make_services = make_services or (lambda master: [])
        self.role = STANDBY
        self.leader_url: Optional[str] = None
        self.epoch = 0  # this master's epoch while it leads; else the leader's as last read
        self.master: Optional[Master] = None
        self.read_at = 0.0  # when the standby's copy was read (epoch seconds)
        self.on_master: list[Callable[[Master], None]] = []  # told of each new master
        self._services: list = []
        self._views: Optional[Views] = None
        self._renewed = 0.0  # monotonic time of the leader's latest renewal
        self._next_read = 0.0
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._lost = threading.Event()  # a write was fenced: step down
        self._thread: Optional[threading.Thread] = None
        self._running = False  # services start only once the app serves (run())

    # ------------------------------------------------------------------ life
    def begin(self) -> None:
        """The first election, before serving: lead at once if the lease is free (the
        master rebuilt from the store), else read a first copy as a standby. Raises
        :class:`StoreUnavailable` if the store cannot be read at all."""
        self._elect(predecessor_gone=self._address_free())
        if self.master is None:
            self._read_copy()
            if self.master is None:
                raise StoreUnavailable("cannot read the store to serve as a standby")

    def run(self) -> None:
        """Serve: the leader's services start, and the election goes on in a thread (again
        after a :meth:`stop`: an app's lifespan may run more than once)."""
        if self._thread is not None:
            return
        self._halt.clear()
        self._running = True
        if self.role == LEADER and not self._services:
            self._start_services(self.master)
        self._thread = threading.Thread(target=self._run, name="titus-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the election and the leader's services (the lease is kept until it runs out
        or :meth:`resign` gives it up)."""
        self._halt.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)
        self._running = False
        self._stop_services()

    def resign(self) -> None:
        """Give the lease up at once (a clean shutdown): a standby takes over without
        waiting for it to run out."""
        self.stop()
        if self.role != STANDBY:
            self.fence.epoch = 0
            self.role = STANDBY
            self.lease.release()

    @property
    def staleness(self) -> float:
        """How old what this master serves may be, in seconds (0 while it leads)."""
        if self.role == LEADER:
            return 0.0
        return max(0.0, self.clock() - self.read_at) if self.read_at else float("inf")

    def health(self) -> dict:
        """Role, epoch and leader URL (for ``/health``)."""
        return {"role": self.role, "epoch": self.epoch, "leader": self.leader_url,
                "self": self.url}

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while not self._halt.is_set():
            period = self.settings.lease_sec / 3 if self.role == LEADER else min(
                1.0, self.settings.lease_sec / 3)
            self._wake.wait(period)
            self._wake.clear()
            if self._halt.is_set():
                return
            try:
                self._elect()
                if self.role == STANDBY and time.monotonic() >= self._next_read:
                    self._read_copy()
            except Exception:  # never end the thread unseen; the next tick retries
                log.exception("leader election error")

    def _address_free(self) -> bool:
        """Whether this master's own address can be bound now: a master restarted after
        ``kill -9`` finds its predecessor's socket gone (one merely stopped still holds it),
        so a lease left under this URL need not be waited out."""
        try:
            with socket.socket(socket.AF_INET6 if ":" in self.settings.bind
                               else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self.settings.bind, self.settings.port))
            return True
        except OSError:
            return False

    def _elect(self, predecessor_gone: bool = False) -> None:
        """One round of the election: renew, take, or follow."""
        if self._lost.is_set():
            self._lost.clear()
            self._step_down("a write was refused: another master took the lease")
        try:
            view = self.lease.try_acquire(predecessor_gone)
        except StoreUnavailable:
            if self.role == LEADER and time.monotonic() - self._renewed > self.settings.lease_sec:
                self._step_down("the lease could not be renewed for a whole lease")
            return
        if view.held_by(self.instance):
            self._renewed = time.monotonic()
            if self.role != LEADER:
                self._lead(view.epoch)
            return
        if self.role == LEADER:
            self._step_down(f"the lease is held by {view.url} (epoch {view.epoch})")
        self.leader_url = view.url if view.remaining > 0 and view.url else None
        self.epoch = view.epoch
        self.fence.leader = self.leader_url

    def _lead(self, epoch: int) -> None:
        """Taken the lease: rebuild from the store, then serve and schedule as leader."""
        self.role, self.epoch = STARTING, epoch
        self.leader_url = self.fence.leader = self.url
        self.fence.epoch = epoch  # the rebuild's own follow-up writes are of this epoch
        try:
            master = Master(self.settings, self.store, self.clock, events=self.events)
            master.state.epoch = epoch
            restored = master.recover()
        except Exception:
            self.fence.epoch = 0
            self.role = STANDBY
            log.exception("could not take over in epoch %d; trying again", epoch)
            return
        if self.fence.epoch != epoch:  # fenced while rebuilding
            self.role = STANDBY
            return
        # agents looked for a leader while the old lease ran out, and one may still be waiting
        # on a request to a stopped leader (which takes connections): a heartbeat timeout
        # from now, plus a lease, plus the agents' longest request, before any is silent
        master.agents.grace(self.settings.lease_sec + AGENT_REQUEST_SEC)
        self._views = publish_changes(self.events, self._views, master)
        self._install(master)
        if self._running:
            self._start_services(master)
        self.role = LEADER
        log.info("leader in epoch %d at %s: %s", epoch, self.url, restored)

    def _step_down(self, why: str) -> None:
        """Stop leading: no more writes, the loop and autoscaler stop, reads go on from a
        fresh copy of the store."""
        if self.role == STANDBY:
            return
        log.error("no longer the leader (epoch %d): %s", self.epoch, why)
        self.fence.epoch = 0
        self.lease.epoch = 0
        self.role = STANDBY
        self.leader_url = self.fence.leader = None
        self._stop_services()
        self._next_read = 0.0

    def _fenced(self, _epoch: int) -> None:
        """Called by the fence from the thread whose write was refused: the election thread
        steps down (never the writer itself: it may be the loop being stopped)."""
        self._lost.set()
        self._wake.set()

    def _start_services(self, master: Master) -> None:
        self._services = list(self.make_services(master))
        for service in self._services:
            service.start()

    def _stop_services(self) -> None:
        services, self._services = self._services, []
        for service in reversed(services):
            try:
                service.stop()
            except Exception:
                log.exception("could not stop %s", type(service).__name__)

    def _read_copy(self) -> None:
        """A standby's rebuild of its read-only copy (observers hear what changed)."""
        began, started = time.monotonic(), self.clock()
        try:
            copy = Master(self.settings, self.store, self.clock, events=self.events)
            copy.recover(follow_up=False)
        except StoreUnavailable:
            self._next_read = time.monotonic() + self.settings.standby_refresh_sec
            return
        if self.role != STANDBY:  # became leader meanwhile
            return
        self._views = publish_changes(self.events, self._views, copy)
        self._install(copy)
        self.read_at = started
        cost = time.monotonic() - began
        self._next_read = began + max(self.settings.standby_refresh_sec, 2 * cost)

    def _install(self, master: Master) -> None:
        self.master = master
        for callback in self.on_master:
            callback(master)


class FixedNode:
    """One given master that always leads (no lease, no fence): tests, tools, and apps built
    around a master object. Same interface as :class:`Node`."""

    role, epoch, leader_url, staleness = LEADER, 0, None, 0.0

    def __init__(self, master: Master, make_services: Optional[Callable[[Master], list]] = None):
        self.master = master
        self.make_services = make_services or (lambda m: [])
        self.on_master: list[Callable[[Master], None]] = []
        self.url = master.settings.own_url
        self._services: list = []

    def begin(self) -> None:
        """Nothing to elect."""

    def run(self) -> None:
        """Start the master's services."""
        self._services = list(self.make_services(self.master))
        for service in self._services:
            service.start()

    def resign(self) -> None:
        """Stop the services (there is no lease to give up)."""
        self.stop()

    def stop(self) -> None:
        """Stop them."""
        services, self._services = self._services, []
        for service in reversed(services):
            service.stop()

    def health(self) -> dict:
        """Role, epoch and leader URL (for ``/health``)."""
        return {"role": LEADER, "epoch": 0, "leader": self.url, "self": self.url}
