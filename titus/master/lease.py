"""Leader election and write fencing for several masters on one store.

One master leads at a time, by a **lease** in the store itself: a single row of
``leader_lease`` names the holder (a master's random instance id), its URL, an **epoch** and
when the lease runs out, in seconds on the *database's* clock (masters' clocks never have to
agree). Every ``lease_sec / 3`` the leader renews it; a standby tries every second and takes it
only once it has run out, raising the epoch by one and adding a row to ``leader_epochs``. This
is the lease-plus-epoch scheme of Kubernetes' leader election (a Lease object with
``holderIdentity``, ``leaseDurationSeconds`` and ``leaseTransitions``), kept in the store the
masters already share: no consensus of our own.

A lease alone does not stop a leader that was paused (GC, SIGSTOP, a slow disk) from writing
after it woke: :class:`Fence` does. Every write transaction of a master starts by reading the
lease row with a shared row lock (PostgreSQL ``FOR KEY SHARE``) and is refused in that same
transaction unless the row still names this master and its epoch. A takeover locks that row
``FOR UPDATE`` before it writes the new epoch, so it waits for every write already past the
check to commit, and every later write sees the new epoch: a write of epoch N never lands after
epoch N+1 began. A renewal takes only ``FOR NO KEY UPDATE``, which the fence's lock does not
block: a leader's long write never keeps it from renewing its own lease. A session left
idle in a transaction (its master stopped mid-write) is ended by PostgreSQL after
``IDLE_IN_TRANSACTION_SEC``, which releases its lock for the takeover. A session stopped while
*busy* (a statement running, a result its master does not read, a pipeline it never finished)
is not idle and no timeout of PostgreSQL's ends it: once the lease has run out for longer than
``STALLED_HOLDER_SEC``, a standby that still cannot lock the lease row ends the old holder's
sessions itself (``pg_terminate_backend``, found by the application name every master's
sessions carry, :func:`session_name`). That holder's epoch is over, so nothing it may still
write is lost: its open transaction rolls back and was never acknowledged.

SQLite allows one master per file (the file lock, :mod:`titus.master.store`); the same lease
and fence run there, so an embedded master reports its role and epoch like any other.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Callable, Optional

from sqlalchemy import text
from sqlalchemy.engine import Connection

from titus.master.errors import StoreUnavailable

log = logging.getLogger("titus.master.lease")

LEASE_NAME = "master"
# PostgreSQL ends a session idle inside a transaction this long (a stopped master's open
# write), so the lock it holds on the lease row does not block a takeover for ever.
IDLE_IN_TRANSACTION_SEC = 5
# A standby waits this long for the lease row's lock before trying again later.
LOCK_TIMEOUT_SEC = 1
# A lease run out this long whose row stays locked: its holder's sessions are stalled while
# busy (PostgreSQL has ended any idle one by then), and a standby ends them.
STALLED_HOLDER_SEC = IDLE_IN_TRANSACTION_SEC + 1
# SQLSTATE of lock_not_available (a lock_timeout ran out).
_LOCK_NOT_AVAILABLE = "55P03"


# A holder id used as it is in its sessions' name: PostgreSQL keeps an application name's
# first 63 bytes and shows every byte but printable ASCII as '?', so only such ids are both
# kept whole and told apart.
_PLAIN_HOLDER = re.compile(r"[A-Za-z0-9._-]{1,48}")


def session_name(holder: str) -> str:
    """The PostgreSQL ``application_name`` of every session of the master ``holder``: how a
    standby finds a stalled leader's sessions. ``titus-master:<holder>`` for an id of at
    most 48 letters, digits, '.', '_' or '-' (a master's instance id is 32 hex digits); any
    other id as ``titus-master:~`` and 48 hex digits of its SHA-256, so the name is exactly
    what PostgreSQL shows (printable ASCII, under 64 bytes) and no two holders share one."""
    if _PLAIN_HOLDER.fullmatch(holder):
        return f"titus-master:{holder}"
    digest = hashlib.sha256(holder.encode("utf-8", "surrogatepass")).hexdigest()
    return f"titus-master:~{digest[:48]}"


class NotLeader(StoreUnavailable):
    """This master does not lead (now): it may not write. Answered as HTTP 503; standbys
    forward writes to the leader instead (``leader`` is its URL when known)."""

    def __init__(self, message: str, leader: Optional[str] = None):
        super().__init__(message)
        self.leader = leader


class Fenced(NotLeader):
    """A write was refused because another master took the lease (a newer epoch) after this
    one's: nothing of the transaction is kept, and this master stops leading."""


@dataclass(frozen=True)
class LeaseView:
    """The lease as a master last read it.

    ``epoch`` is 0 before any master led; ``remaining`` is how many seconds it has left on the
    database's clock (negative: run out)."""

    holder: str
    url: str
    epoch: int
    remaining: float

    def held_by(self, holder: str) -> bool:
        """Whether ``holder`` holds it and it has not run out."""
        return self.holder == holder and self.remaining > 0


def db_now(conn: Connection) -> float:
    """The database's clock, in epoch seconds (SQLite: this process's clock; its file lets
    one process in)."""
    if conn.dialect.name == "postgresql":
        return float(conn.exec_driver_sql(
            "SELECT extract(epoch FROM clock_timestamp())").scalar())
    return time.time()


class Lease:
    """One master's side of the election: take, renew, read and give up the lease.

    ``holder`` is this master's instance id (random per process: a restarted master is a new
    candidate), ``url`` where it serves, ``lease_sec`` how long a lease lasts unless renewed.
    Every method raises :class:`StoreUnavailable` when the store cannot be reached."""

    def __init__(self, store, holder: str, url: str, lease_sec: float):
        self.store, self.holder, self.url, self.lease_sec = store, holder, url, lease_sec
        self.epoch = 0  # the epoch this master leads in; 0 while it does not

    def try_acquire(self, predecessor_gone: bool = False) -> LeaseView:
        """Renew the lease if this master holds it, take it if it has run out (a new epoch),
        else leave it; returns the lease as it stands afterwards. ``predecessor_gone``: a
        lease held under this master's own URL is taken at once (a restarted master that
        could bind its predecessor's address; fencing stops that one's writes anyway).

        On PostgreSQL a lease row locked for longer than ``LOCK_TIMEOUT_SEC`` raises
        :class:`StoreUnavailable` (try again later); if its lease ran out more than
        ``STALLED_HOLDER_SEC`` ago, its holder's sessions are ended first, so the next try
        gets the row."""
        try:
            return self._try_acquire(predecessor_gone)
        except StoreUnavailable as exc:
            if _lock_timed_out(exc):
                self._end_stalled_holder()
            raise

    def _try_acquire(self, predecessor_gone: bool) -> LeaseView:
        with self.store.unfenced() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SEC}s'")
            row = self._locked_row(conn, postgres)
            now = db_now(conn)
            if row is None:  # the first master on this store
                conn.execute(text(
                    "INSERT INTO leader_lease (name, holder, url, epoch, expires_at) "
                    "VALUES (:n, '', '', 0, 0) ON CONFLICT (name) DO NOTHING"), {"n": LEASE_NAME})
                row = self._locked_row(conn, postgres)
            holder, url, epoch, expires_at = row
            if holder == self.holder and epoch == self.epoch and self.epoch:
                self._write(conn, epoch, now)
                return LeaseView(self.holder, self.url, epoch, self.lease_sec)
            # SQLite: this process holds the file exclusively, so whoever held the lease is
            # gone (a kill -9 leaves its lease behind); no need to wait for it to run out
            mine_before = predecessor_gone and url == self.url
            if expires_at > now and postgres and not mine_before:  # another's, still valid
                if self.epoch:  # ours was taken: never write again under it
                    self.epoch = 0
                return LeaseView(holder, url, int(epoch), expires_at - now)
            if postgres:  # a takeover waits for every write already past the fence
                self._locked_row(conn, postgres, " FOR UPDATE")
            new = int(epoch) + 1
            self._write(conn, new, now)
            conn.execute(text("INSERT INTO leader_epochs (epoch, holder, url, acquired_at) "
                              "VALUES (:e, :h, :u, :t)"),
                         {"e": new, "h": self.holder, "u": self.url, "t": now})
        self.epoch = new
        # taking over from another master on a shared store is a failover, worth a warning;
        # a first lease, or a restart on one's own SQLite file, is the ordinary start
        taken = postgres and holder and holder != self.holder
        (log.warning if taken else log.info)(
            "leading in epoch %d (the lease of %s ran out)", new, holder or "nobody")
        return LeaseView(self.holder, self.url, new, self.lease_sec)

    def read(self) -> Optional[LeaseView]:
        """The lease as it stands (None before any master tried), without changing it."""
        with self.store.unfenced() as conn:
            row = conn.execute(text("SELECT holder, url, epoch, expires_at FROM leader_lease "
                                    "WHERE name = :n"), {"n": LEASE_NAME}).first()
            if row is None:
                return None
            return LeaseView(row[0], row[1], int(row[2]), row[3] - db_now(conn))

    def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so a standby need not wait for it
        to run out. Does nothing unless this master holds it."""
        if not self.epoch:
            return
        epoch, self.epoch = self.epoch, 0
        try:
            with self.store.unfenced() as conn:
                conn.execute(text("UPDATE leader_lease SET expires_at = 0 WHERE name = :n "
                                  "AND holder = :h AND epoch = :e"),
                             {"n": LEASE_NAME, "h": self.holder, "e": epoch})
        except StoreUnavailable:  # it runs out on its own
            pass

    def _end_stalled_holder(self) -> None:
        """End the sessions of a holder whose lease ran out ``STALLED_HOLDER_SEC`` ago but
        whose lock on the lease row stays (see the module's docstring). Never raises: a
        store that cannot be reached, or a role that may not end them, is logged."""
        try:
            with self.store.unfenced() as conn:
                row = conn.execute(text("SELECT holder, epoch, expires_at FROM leader_lease "
                                        "WHERE name = :n"), {"n": LEASE_NAME}).first()
                if row is None or row[0] in ("", self.holder):
                    return
                overdue = db_now(conn) - row[2]
                if overdue < STALLED_HOLDER_SEC:
                    return
                # Only this database's sessions (pg_stat_activity lists the whole server's:
                # another deployment's master may have the same name), and only while the
                # lease is still that holder's epoch and still long run out, judged in the
                # ending statement itself: a holder that woke and renewed since the read
                # above is a valid leader again.
                ended = conn.execute(text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE application_name = :a "
                    "AND datname = current_database() AND pid <> pg_backend_pid() "
                    "AND EXISTS (SELECT 1 FROM leader_lease WHERE name = :n AND holder = :h "
                    "AND epoch = :e AND expires_at <= "
                    "extract(epoch FROM clock_timestamp()) - :stalled)"),
                    {"a": session_name(row[0]), "n": LEASE_NAME, "h": row[0], "e": row[1],
                     "stalled": STALLED_HOLDER_SEC}).scalar()
        except Exception as exc:  # noqa: BLE001 - the next try logs an outage itself
            log.error("could not end the stalled sessions of the lease's holder: %s", exc)
            return
        log.warning("the lease of %s (epoch %s) ran out %.1f s ago and its sessions still "
                    "held the lease row: ended %d of them", row[0], row[1], overdue, ended)

    def _locked_row(self, conn: Connection, postgres: bool, lock: str = " FOR NO KEY UPDATE"):
        # FOR NO KEY UPDATE orders the masters' attempts but does not wait for the fence's FOR
        # KEY SHARE: a leader renews while its own long writes are open. Only a takeover asks
        # FOR UPDATE, which waits for them.
        return conn.execute(text("SELECT holder, url, epoch, expires_at FROM leader_lease "
                                 "WHERE name = :n" + (lock if postgres else "")),
                            {"n": LEASE_NAME}).first()

    def _write(self, conn: Connection, epoch: int, now: float) -> None:
        conn.execute(text("UPDATE leader_lease SET holder = :h, url = :u, epoch = :e, "
                          "expires_at = :x WHERE name = :n"),
                     {"h": self.holder, "u": self.url, "e": epoch, "x": now + self.lease_sec,
                      "n": LEASE_NAME})


def _lock_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` came from PostgreSQL's ``lock_timeout`` running out."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) == _LOCK_NOT_AVAILABLE or \
                getattr(exc, "pgcode", None) == _LOCK_NOT_AVAILABLE:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
    return False


class Fence:
    """What a master's store checks at the start of every write transaction.

    ``epoch`` 0: this master does not lead, every write is refused (:class:`NotLeader`).
    Otherwise the lease row must still name ``holder`` and ``epoch`` (read under a shared
    row lock on PostgreSQL), else :class:`Fenced` is raised and ``on_fenced`` called once."""

    def __init__(self, holder: str, on_fenced: Optional[Callable[[int], None]] = None):
        self.holder = holder
        self.epoch = 0
        self.leader: Optional[str] = None  # the leader's URL as last known (for NotLeader)
        self.on_fenced = on_fenced

    def check(self, conn: Connection) -> None:
        """Raise unless this master may write in ``conn``'s transaction."""
        epoch = self.epoch
        if not epoch:
            raise NotLeader("this master is a standby; writes go to the leader", self.leader)
        lock = " FOR KEY SHARE" if conn.dialect.name == "postgresql" else ""
        row = conn.execute(text("SELECT holder, epoch FROM leader_lease WHERE name = :n" + lock),
                           {"n": LEASE_NAME}).first()
        if row is not None and row[0] == self.holder and int(row[1]) == epoch:
            return
        self.epoch = 0
        log.error("a write of epoch %d was refused: the lease is now %s's, epoch %s", epoch,
                  row[0] if row else "nobody", row[1] if row else "-")
        if self.on_fenced is not None:
            self.on_fenced(epoch)
        raise Fenced(f"this master's epoch {epoch} is over; writes go to the leader",
                     self.leader)
