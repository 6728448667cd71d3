"""Which store errors are outages, and whether the store takes writes now.

An *outage* is an error that says the store cannot take a write at the moment: the database is
down or unreachable, its disk is full, its file is read-only or gone, a lock was not granted in
time, the connection was lost (a PostgreSQL backend terminated, a failover). The store turns
each into :class:`~titus.master.errors.StoreUnavailable` (HTTP 503, retry later), keeping the
driver's error as ``__cause__``. A statement the database *refuses* (a duplicate key, bad SQL,
a value out of range) is a bug, not an outage: it is left as it is (HTTP 500), since retrying
would never help.

:class:`StoreHealth` remembers the outcome of the latest write. It logs an outage once, when it
begins (with the driver's error and traceback), and once when it ends (how long, how many writes
were refused); the failures in between go to the debug log.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time

from sqlalchemy import exc as sa_exc

from titus.master.errors import StoreUnavailable

log = logging.getLogger("titus.master.store")

# The database refused the statement itself: retrying the same write cannot succeed.
_REFUSED = (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.DataError,
            sa_exc.NotSupportedError, sqlite3.IntegrityError, sqlite3.ProgrammingError,
            sqlite3.DataError, sqlite3.NotSupportedError)
# The database (or the way to it) failed: OperationalError, InterfaceError, InternalError and
# plain DatabaseError from any driver, a connection found dead, the pool out of connections.
_OUTAGE = (sa_exc.DBAPIError, sa_exc.DisconnectionError, sa_exc.TimeoutError, sqlite3.Error)

# What clients are told, by words found in the driver's message (the log has the message
# itself, which may name hosts, users and statements).
_REASONS = (
    (("readonly", "read-only", "read only"), "the store is read-only"),
    (("full", "no space"), "the store's disk is full"),
    (("locked", "lock timeout", "lock_timeout", "could not obtain lock", "deadlock"),
     "the store's lock was not granted in time"),
    (("connect", "terminat", "closed", "broken pipe", "shutdown", "server"),
     "the connection to the store failed"),
    (("disk i/o", "i/o error", "malformed", "not a database", "unable to open"),
     "the store's file cannot be used"),
)


class StoreFileGone(sqlite3.OperationalError):
    """The SQLite file the store opened was deleted or replaced (SQLite itself would go on
    writing to the unlinked file, and every later write would be lost)."""


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` (from SQLAlchemy or a driver) means the store cannot take writes now."""
    return isinstance(error, _OUTAGE) and not isinstance(error, _REFUSED)


def reason(error: BaseException) -> str:
    """A short, safe description of an outage for clients: what failed and the error's type."""
    if isinstance(error, StoreFileGone):
        return str(error)
    cause = getattr(error, "orig", None) or error
    text = str(cause).lower()
    for words, said in _REASONS:
        if any(w in text for w in words):
            return f"{said} ({type(cause).__name__})"
    return f"the store failed ({type(cause).__name__})"


class StoreHealth:
    """Whether the latest write was taken, since when, and how many were refused since."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self.writable = True
        self.since = clock()
        self.error = ""
        self.refused = 0

    def ok(self) -> None:
        """A write was taken; ends an outage (logged once)."""
        if self.writable:  # the hot path: one attribute read
            return
        with self._lock:
            if self.writable:
                return
            now = self._clock()
            log.warning("the store takes writes again, after %.1fs of outage and %d refused "
                        "operations", now - self.since, self.refused)
            self.writable, self.since, self.error, self.refused = True, now, "", 0

    def failed(self, error: BaseException) -> StoreUnavailable:
        """Record an outage error; returns the :class:`StoreUnavailable` to raise from it.
        The first error of an outage is logged with its traceback, the rest at debug level."""
        said = reason(error)
        with self._lock:
            first = self.writable
            if first:
                self.writable, self.since = False, self._clock()
            self.error = said
            self.refused += 1
        if first:
            log.error("the store is unavailable: %s; writes are refused (HTTP 503) until it "
                      "answers again", said, exc_info=error)
        else:
            log.debug("store still unavailable: %s: %s", said, error)
        return StoreUnavailable(said)

    def wire(self) -> dict:
        """JSON-ready: ``writable``, ``since`` (epoch seconds), ``error``, ``refused``."""
        with self._lock:
            return {"writable": self.writable, "since": self.since, "error": self.error,
                    "refused": self.refused}
