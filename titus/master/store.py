"""The master's durable store (SQLAlchemy Core).

``sqlite:///path`` is the embedded default (WAL journal, a busy timeout, ``synchronous=NORMAL``);
``postgresql+psycopg://user:pass@host/db`` the production choice. Both run the same statements.

A SQLite file is opened through SQLite's ``unix-excl`` VFS: the master's process holds the file
exclusively (other processes get "database is locked"; connections of this process share it),
and the WAL index lives in the process's heap instead of the ``-shm`` file every process would
otherwise map into memory. A mapped ``-shm`` that another process truncates kills the master
with SIGBUS; there is none to truncate. The database file itself is never mapped
(``mmap_size=0``): it is read and written with system calls, whose failures are errors.

A write the store cannot take (down, full, read-only, locked, connection lost, its file gone)
raises :class:`~titus.master.errors.StoreUnavailable` from :meth:`Store.transaction`, with the
driver's error as ``__cause__`` (:mod:`titus.master.store_health`).

Write-ahead: the master writes every change here, in one transaction, *before* it changes its
memory or tells anyone (agents, API clients, observers). Writes are batched: a scheduling round,
a heartbeat or a job submission is one transaction, and rows of the same shape go in one
``executemany``.

The schema is upgraded in place when a store is opened (:mod:`titus.master.migrations`,
docs/store.md).
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Iterable, Iterator, Optional
from urllib.parse import quote

from sqlalchemy import (and_, bindparam, create_engine, event, func, insert, or_, select,
                        text)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from titus.master import migrations
from titus.master import store_schema as S
from titus.master.errors import StoreUnavailable
from titus.master.lease import IDLE_IN_TRANSACTION_SEC, Fence, session_name
from titus.master.migrations import StoreSchemaError  # noqa: F401  (raised by Store())
from titus.master.store_health import StoreFileGone, StoreHealth, is_outage

log = logging.getLogger("titus.master.store")


# One process holds a SQLite store; its WAL index is heap memory, not a mapped -shm file.
SQLITE_VFS = "unix-excl"
BUSY_TIMEOUT_SEC = 30
# A PostgreSQL connection attempt fails after this long (unless the URL sets connect_timeout)
# instead of holding the master's lock for the operating system's TCP timeout.
PG_CONNECT_TIMEOUT_SEC = 10
# PostgreSQL ends a session idle inside a transaction this long (titus.master.lease).
IDLE_TXN_MS = IDLE_IN_TRANSACTION_SEC * 1000
# The meta row the readiness probe writes.
PROBE_KEY = "ready_probe"


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite: WAL, a busy timeout, thread sharing and, for a file, the
    exclusive VFS (see the module's docstring); PostgreSQL: a checked pool, a connect timeout."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    args = {}
    if url.startswith("postgresql"):
        query = make_url(url).query
        if "connect_timeout" not in query:
            args["connect_timeout"] = PG_CONNECT_TIMEOUT_SEC
        if "options" not in query:  # a stopped master's open write must not hold locks
            args["options"] = f"-c idle_in_transaction_session_timeout={IDLE_TXN_MS}"
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                         connect_args=args)


def sqlite_file(url: str) -> Optional[str]:
    """The absolute path of a SQLite URL's database file; None if ``url`` is not SQLite, is in
    memory, or names a URI filename (``?uri=true``, opened as given)."""
    parsed = make_url(url)
    if parsed.query or (parsed.database or "").startswith("file:"):
        return None
    return _sqlite_path_any(url)


def _sqlite_path_any(url: str) -> Optional[str]:
    """The file of a SQLite URL even when it has options (``?timeout=1``, ``?uri=true``
    with a ``file:`` name); None for memory or another database."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:"):
        return None
    if path.startswith("file:"):
        path = path[5:].split("?", 1)[0]
        if path in ("", ":memory:") or "mode=memory" in parsed.database:
            return None
    return os.path.abspath(path)


def _sqlite_engine(url: str) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        # every pooled connection opens the file through the exclusive VFS
        engine = create_engine(url, creator=partial(_connect_exclusive, path))
        memory = False
    else:
        memory = ":memory:" in url or url in ("sqlite://", "sqlite:///")
        # An in-memory database exists per connection: share one.
        extra = {"poolclass": StaticPool} if memory else {}
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": BUSY_TIMEOUT_SEC}, **extra)
    event.listen(engine, "connect", partial(_sqlite_pragmas, wal=not memory))
    return engine


def _connect_exclusive(path: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(path)}?vfs={SQLITE_VFS}", uri=True,
                           check_same_thread=False, timeout=BUSY_TIMEOUT_SEC)


def _sqlite_pragmas(dbapi_conn, _record, wal: bool) -> None:
    cur = dbapi_conn.cursor()
    if wal:
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SEC * 1000}")
    cur.execute("PRAGMA mmap_size=0")  # never map the file: a truncated map is a SIGBUS
    cur.close()


def sqlite_in_use(path: str) -> bool:
    """Whether another process holds the SQLite file ``path`` (a running master holds it
    exclusively). Reads only; a file that does not exist is not in use."""
    if not os.path.exists(path):
        return False
    try:
        conn = sqlite3.connect(path, timeout=0.5)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        return getattr(exc, "sqlite_errorname", "") == "SQLITE_BUSY" or "locked" in str(exc)
    return False


def snapshot_engine(path: str) -> Engine:
    """A read-only engine on the SQLite file ``path`` that takes no lock and ignores the WAL:
    the database as of its last checkpoint, readable while a master holds the file. (A master
    checkpoints right after upgrading its schema, so the schema it shows is current.)"""
    uri = f"file:{quote(path)}?mode=ro&immutable=1"
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True),
                         poolclass=StaticPool)


class StoreInUse(RuntimeError):
    """Another process holds the SQLite store: one master per SQLite file (several masters
    share a PostgreSQL store instead, one leading)."""


class Txn:
    """One open transaction; every write method adds to it. Commit happens on leaving the block."""

    def __init__(self, conn: Connection):
        self.conn = conn

    # jobs ---------------------------------------------------------------------------------
    def insert_job(self, row: dict) -> None:
        """Add a job row (all of :data:`store_schema.JOB_COLUMNS`)."""
        self.conn.execute(insert(S.jobs), [row])

    def update_job(self, job_id: str, values: dict) -> None:
        """Change some columns of a live job."""
        self.conn.execute(S.jobs.update().where(S.jobs.c.id == job_id).values(**values))

    def archive_job(self, job_id: str) -> None:
        """Move a job and all its tasks to the archive tables."""
        cols = [c.name for c in S.tasks.columns]
        self.conn.execute(S.archive_tasks.insert().from_select(
            cols, select(*[S.tasks.c[c] for c in cols]).where(S.tasks.c.job_id == job_id)))
        self.conn.execute(S.tasks.delete().where(S.tasks.c.job_id == job_id))
        jcols = [c.name for c in S.jobs.columns]
        self.conn.execute(S.archive_jobs.insert().from_select(
            jcols, select(*[S.jobs.c[c] for c in jcols]).where(S.jobs.c.id == job_id)))
        self.conn.execute(S.jobs.delete().where(S.jobs.c.id == job_id))
        # its budget is over with it (the event log keeps what happened)
        self.conn.execute(S.disruptions.delete().where(S.disruptions.c.job_id == job_id))

    # tasks --------------------------------------------------------------------------------
    def insert_tasks(self, rows: list, columns: Optional[tuple] = None) -> None:
        """Add task rows: dicts with every column, or tuples in the order of ``columns``.

        The hot path of the platform: one driver-level ``executemany`` with plain tuples.
        """
        if not rows:
            return
        if columns is None:
            columns = S.TASK_COLUMNS
            rows = [tuple(row[c] for c in columns) for row in rows]
        ph = self._placeholder()
        sql = (f"INSERT INTO tasks ({', '.join(columns)}) "
               f"VALUES ({', '.join([ph] * len(columns))})")
        self.conn.exec_driver_sql(sql, rows)

    def update_tasks(self, rows: Iterable[dict]) -> None:
        """Change columns of tasks: each row has ``seq`` (the key) and the columns to set.

        Rows with the same set of columns go in one driver-level ``executemany``.
        """
        by_shape: dict[tuple, list[dict]] = {}
        for row in rows:
            by_shape.setdefault(tuple(sorted(row)), []).append(row)
        ph = self._placeholder()
        for shape, group in by_shape.items():
            cols = [c for c in shape if c != "seq"]
            if not cols:
                continue
            for c in cols:
                if c not in S.tasks.c:
                    raise KeyError(f"tasks has no column {c!r}")
            sql = f"UPDATE tasks SET {', '.join(f'{c} = {ph}' for c in cols)} WHERE seq = {ph}"
            self.conn.exec_driver_sql(sql, [tuple(row[c] for c in cols) + (row["seq"],)
                                            for row in group])

    def _placeholder(self) -> str:
        return "?" if self.conn.dialect.paramstyle == "qmark" else "%s"

    # agents, capacity groups, events ------------------------------------------------------
    def upsert_agent(self, row: dict) -> None:
        """Insert or replace an agent row."""
        self._upsert(S.agents, S.agents.c.id, row["id"], row)

    def touch_agents(self, last_seen: dict[str, float]) -> None:
        """Record when agents were last heard from."""
        if last_seen:
            stmt = (S.agents.update().where(S.agents.c.id == bindparam("b_id"))
                    .values(last_seen=bindparam("b_seen")))
            self.conn.execute(stmt, [{"b_id": k, "b_seen": v} for k, v in last_seen.items()])

    def delete_agent(self, agent_id: str) -> None:
        """Forget an agent."""
        self.conn.execute(S.agents.delete().where(S.agents.c.id == agent_id))

    def upsert_capacity_group(self, name: str, tier: str, spec: dict) -> None:
        """Insert or replace a capacity group."""
        self._upsert(S.capacity_groups, S.capacity_groups.c.name, name,
                     {"name": name, "tier": tier, "spec": json.dumps(spec)})

    def delete_capacity_group(self, name: str) -> None:
        """Remove a capacity group."""
        self.conn.execute(S.capacity_groups.delete().where(S.capacity_groups.c.name == name))

    # disruptions and drained hosts ---------------------------------------------------------
    def insert_disruptions(self, rows: list[dict]) -> None:
        """Record evictions and relocations begun (rows of ``disruptions``)."""
        if rows:
            self.conn.execute(insert(S.disruptions), rows)

    def put_drain(self, row: dict) -> None:
        """Insert or replace a drained host's row."""
        self._upsert(S.drained_hosts, S.drained_hosts.c.host_id, row["host_id"], row)

    def delete_drains(self, host_ids: list[str]) -> None:
        """Forget drained hosts (undrained, or gone)."""
        if host_ids:
            self.conn.execute(S.drained_hosts.delete().where(
                S.drained_hosts.c.host_id.in_(host_ids)))

    def event(self, ts: float, kind: str, entity_id: str = "", data: Optional[dict] = None) -> None:
        """Append to the event log."""
        self.conn.execute(insert(S.events), [{"ts": ts, "kind": kind, "entity_id": entity_id,
                                              "data": json.dumps(data or {})}])

    def trim_events(self, keep: int, at_most: int = 100_000) -> int:
        """Delete the oldest event log entries beyond the newest ``keep``, at most ``at_most``
        of them (a long backlog goes over several calls, each short); returns how many went."""
        oldest, newest = self.conn.execute(
            select(func.min(S.events.c.seq), func.max(S.events.c.seq))).one()
        if newest is None or newest - oldest + 1 <= keep:
            return 0
        upto = min(newest - keep, oldest + at_most - 1)
        return self.conn.execute(S.events.delete().where(S.events.c.seq <= upto)).rowcount

    def insert_idempotency_key(self, row: dict) -> None:
        """Remember a submission's Idempotency-Key (see :mod:`titus.master.idempotency`)."""
        self.conn.execute(insert(S.idempotency_keys), [row])

    def forget_idempotency_keys(self, before: float) -> int:
        """Delete keys created before ``before`` (epoch seconds); returns how many went."""
        return self.conn.execute(S.idempotency_keys.delete().where(
            S.idempotency_keys.c.created_at < before)).rowcount

    def probe(self, now: float) -> None:
        """The readiness probe's write, kept: the time of the latest probe in ``meta``.

        A real write, so that a read-only file, a full disk or a read-only PostgreSQL (a
        standby) fail it; on PostgreSQL it waits at most seconds for a lock."""
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
            self.conn.exec_driver_sql("SET LOCAL statement_timeout = '10s'")
        self.conn.execute(text("INSERT INTO meta (key, value) VALUES (:k, :v) ON CONFLICT (key) "
                               "DO UPDATE SET value = excluded.value"),
                          {"k": PROBE_KEY, "v": repr(now)})

    def meta_setdefault(self, key: str, value: str) -> str:
        """The ``meta`` value of ``key``, set to ``value`` first if it has none. Two masters
        racing on an empty key both end with the first one stored."""
        self.conn.execute(text("INSERT INTO meta (key, value) VALUES (:k, :v) "
                               "ON CONFLICT (key) DO NOTHING"), {"k": key, "v": value})
        return self.meta_get(key) or value

    def meta_get(self, key: str) -> Optional[str]:
        """The ``meta`` value of ``key``, or None."""
        return self.conn.execute(text("SELECT value FROM meta WHERE key = :k"),
                                 {"k": key}).scalar()

    def _upsert(self, table, key_col, key, row: dict) -> None:
        res = self.conn.execute(table.update().where(key_col == key).values(**row))
        if res.rowcount == 0:
            self.conn.execute(insert(table), [row])


def upgrade_store(engine: Engine, dry_run: bool = False) -> migrations.Plan:
    """Bring the store on ``engine`` to the schema of this code (see
    :mod:`titus.master.migrations`): an empty database is created, a store of the release
    before migrations is adopted, an older one upgraded; one written by a newer release raises
    :class:`StoreSchemaError`. ``dry_run``: only return what would be run."""
    return migrations.upgrade(engine, dry_run=dry_run)


class Store:
    """The database behind the master: a schema (upgraded in place at start), transactions and
    loaders."""

    def __init__(self, url: str):
        self.url = url
        # None: every transaction may write (one master, tools, tests); a Fence: a write
        # transaction is refused unless this master leads in the current epoch (lease.py)
        self.fence: Optional[Fence] = None
        self._reader = threading.local()  # a connection the loaders share (reading())
        self.file = sqlite_file(url)  # a SQLite store's file (None: PostgreSQL, in memory)
        held = _sqlite_path_any(url)  # URLs with options too
        if held is not None and sqlite_in_use(held):
            raise StoreInUse(f"another process (a running master?) holds the SQLite store "
                             f"{held}: a SQLite store serves one master; run several "
                             "masters on one PostgreSQL store instead")
        self.engine = make_engine(url)
        try:
            upgrade_store(self.engine)
            self._checkpoint()
        except BaseException as exc:
            self.engine.dispose()
            if held is not None and "locked" in str(exc).lower():
                raise StoreInUse(f"the SQLite store {held} stayed locked by another process "
                                 f"for {BUSY_TIMEOUT_SEC}s: a SQLite store serves one "
                                 "master; stop whatever holds it (run several masters on "
                                 "one PostgreSQL store instead)") from exc
            raise
        self._file_id = _file_id(self.file)
        self.health = StoreHealth()
        event.listen(self.engine, "before_cursor_execute", _note_write)
        self._session_name: Optional[str] = None  # PostgreSQL application_name (name_sessions)
        if self.dialect == "postgresql":
            event.listen(self.engine, "do_connect", self._name_session)

    def name_sessions(self, holder: str) -> None:
        """Give every PostgreSQL session of this store the application name of the master
        ``holder`` (:func:`titus.master.lease.session_name`), so that a standby can end them
        should this master stall while holding the lease row. Sessions already open are closed
        (the pool opens named ones). Does nothing on SQLite."""
        if self.dialect == "postgresql":
            self._session_name = session_name(holder)
            self.engine.dispose()

    def _name_session(self, dialect, conn_rec, cargs, cparams) -> None:
        if self._session_name is not None:
            cparams["application_name"] = self._session_name

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Txn]:
        """One transaction; committed when the block ends, rolled back if it raises.

        Raises :class:`StoreUnavailable` (the driver's error as ``__cause__``, logged once per
        outage) if the store cannot take it: down, full, read-only, locked, the connection
        lost, or its file deleted or replaced. Nothing of the transaction is kept then."""
        with self._outages():
            self._check_file()
            with self.engine.begin() as conn:
                if self.fence is not None:
                    self.fence.check(conn)
                conn.info.pop(_WROTE, None)
                yield Txn(conn)
                wrote = conn.info.pop(_WROTE, False)
        if wrote:  # a committed write (not just reads): the store takes writes
            self.health.ok()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """The loaders called in this block (this thread) read one consistent snapshot of the
        store: one connection, in one REPEATABLE READ transaction on PostgreSQL (a standby
        rebuilding while the leader writes sees no job without its tasks)."""
        if getattr(self._reader, "conn", None) is not None:
            yield
            return
        with self._outages(), self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                self._reader.conn = conn
                try:
                    yield
                finally:
                    self._reader.conn = None

    @contextmanager
    def unfenced(self) -> Iterator[Connection]:
        """A transaction that skips the fence: for the lease alone (titus.master.lease), which
        is what the fence checks. Outages raise StoreUnavailable as in :meth:`transaction`."""
        with self._outages(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _outages(self) -> Iterator[None]:
        """Turn the driver's outage errors into StoreUnavailable (logged once per outage)."""
        try:
            yield
        except StoreUnavailable:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            raise self.health.failed(exc) from exc

    def _check_file(self) -> None:
        """SQLite goes on writing to a file that was deleted or replaced (and every such write
        is lost): refuse instead."""
        if self.file is not None and _file_id(self.file) != self._file_id:
            raise StoreFileGone(f"the database file {self.file} was deleted or replaced while "
                                "the master had it open")

    def _checkpoint(self) -> None:
        """SQLite: move the WAL into the database file (and empty the WAL), so that a reader of
        the file alone (``titus store current`` while a master holds it) sees the schema."""
        if self.file is not None:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # loaders ------------------------------------------------------------------------------
    def _rows(self, stmt) -> list[dict]:
        with self._outages(), self._read_connection() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def _read_connection(self):
        """The snapshot's connection inside :meth:`reading` (this thread), else a new one."""
        shared = getattr(self._reader, "conn", None)
        return nullcontext(shared) if shared is not None else self.engine.connect()

    def load_jobs(self) -> list[dict]:
        """Every live job, in submission order."""
        return self._rows(select(S.jobs).order_by(S.jobs.c.seq))

    def load_tasks(self) -> list[dict]:
        """Every task of the live jobs, in creation order."""
        return self._rows(select(S.tasks).order_by(S.tasks.c.seq))

    def load_agents(self) -> list[dict]:
        """Every known agent."""
        return self._rows(select(S.agents))

    def load_disruptions(self) -> list[dict]:
        """Every recorded disruption of a live job, oldest first."""
        live = select(S.jobs.c.id)
        return self._rows(select(S.disruptions).where(S.disruptions.c.job_id.in_(live))
                          .order_by(S.disruptions.c.at))

    def load_drains(self) -> list[dict]:
        """Every drained host."""
        return self._rows(select(S.drained_hosts).order_by(S.drained_hosts.c.host_id))

    def load_capacity_groups(self) -> list[dict]:
        """Every capacity group."""
        return self._rows(select(S.capacity_groups))

    def load_idempotency_keys(self, since: float) -> list[dict]:
        """Idempotency keys created at or after ``since`` (epoch seconds)."""
        return self._rows(select(S.idempotency_keys).where(
            S.idempotency_keys.c.created_at >= since))

    def max_seq(self) -> tuple[int, int]:
        """The highest job and task sequence numbers ever used (live or archived)."""
        with self._outages(), self._read_connection() as conn:
            j = max(conn.execute(select(func.max(S.jobs.c.seq))).scalar() or 0,
                    conn.execute(select(func.max(S.archive_jobs.c.seq))).scalar() or 0)
            t = max(conn.execute(select(func.max(S.tasks.c.seq))).scalar() or 0,
                    conn.execute(select(func.max(S.archive_tasks.c.seq))).scalar() or 0)
        return j, t

    def archived_job(self, job_id: str) -> Optional[dict]:
        """An archived (finished) job, or None."""
        if not _storable(job_id):
            return None
        rows = self._rows(select(S.archive_jobs).where(S.archive_jobs.c.id == job_id))
        return rows[0] if rows else None

    def archived_jobs(self, after_seq: int = 0, limit: int = 100) -> list[dict]:
        """Archived jobs in submission order, after a sequence number."""
        return self._rows(select(S.archive_jobs).where(S.archive_jobs.c.seq > after_seq)
                          .order_by(S.archive_jobs.c.seq).limit(limit))

    def archived_task(self, task_id: str) -> Optional[dict]:
        """An archived task, or None."""
        if not _storable(task_id):
            return None
        rows = self._rows(select(S.archive_tasks).where(S.archive_tasks.c.id == task_id))
        return rows[0] if rows else None

    def archived_tasks(self, job_id: str) -> list[dict]:
        """Every task of an archived job, in creation order."""
        if not _storable(job_id):
            return []
        return self._rows(select(S.archive_tasks).where(S.archive_tasks.c.job_id == job_id)
                          .order_by(S.archive_tasks.c.seq))

    def events(self, after: int = 0, limit: int = 1000) -> list[dict]:
        """Event log entries after a sequence number."""
        return self._rows(select(S.events).where(S.events.c.seq > after)
                          .order_by(S.events.c.seq).limit(limit))

    def latest_events_of(self, entity_ids: list[str], limit: int = 200) -> list[dict]:
        """The newest ``limit`` event log entries about any of ``entity_ids`` (a job and its
        tasks), oldest first (through the ``ix_events_entity`` index)."""
        ids = [i for i in entity_ids if _storable(i)]
        if not ids:
            return []
        rows = self._rows(select(S.events).where(S.events.c.entity_id.in_(ids))
                          .order_by(S.events.c.seq.desc()).limit(limit))
        return rows[::-1]

    def events_of(self, after: int, limit: int, job_id: Optional[str] = None,
                  task_id: Optional[str] = None, task_job_id: Optional[str] = None
                  ) -> list[dict]:
        """Event log entries after sequence number ``after``, oldest first, at most ``limit``.

        ``job_id``: only the job's own entries and those of its tasks (live or archived).
        ``task_id``: only the task's own entries and those of its job (``task_job_id``) that
        name it in their data (e.g. ``taskBackingOff``). Ids that no stored id can hold find
        nothing."""
        if not all(_storable(k) for k in (job_id or "", task_id or "", task_job_id or "")):
            return []
        e = S.events.c
        stmt = select(S.events).where(e.seq > after)
        if job_id:
            stmt = stmt.where(or_(
                e.entity_id == job_id,
                e.entity_id.in_(select(S.tasks.c.id).where(S.tasks.c.job_id == job_id)),
                e.entity_id.in_(select(S.archive_tasks.c.id)
                                .where(S.archive_tasks.c.job_id == job_id))))
        if task_id:
            named = e.entity_id == task_id
            if task_job_id:
                named = or_(named, and_(e.entity_id == task_job_id,
                                        e.data.contains(f'"{task_id}"', autoescape=True)))
            stmt = stmt.where(named)
        return self._rows(stmt.order_by(e.seq).limit(limit))

    def trim_events(self, keep: int, at_most: int = 100_000) -> int:
        """Delete the oldest event log entries beyond the newest ``keep``, in one transaction
        (:meth:`Txn.trim_events`); returns how many went."""
        with self.transaction() as tx:
            return tx.trim_events(keep, at_most)

    def meta_get(self, key: str) -> Optional[str]:
        """The ``meta`` value of ``key``, or None (a read: no write transaction)."""
        rows = self._rows(select(S.meta.c.value).where(S.meta.c.key == key))
        return rows[0]["value"] if rows else None

    def ping(self) -> bool:
        """Whether the database answers a read (StoreUnavailable if not)."""
        with self._outages(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True


_WROTE = "titus_wrote"  # set on a connection's info by a statement that writes


def _note_write(conn, _cursor, statement, _parameters, _context, _executemany) -> None:
    """Mark the connection's transaction as one that wrote (only a committed write shows
    that the store takes writes: a transaction of reads commits on a read-only store too)."""
    if statement[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
        conn.info[_WROTE] = True


def _storable(key: str) -> bool:
    """Whether ``key`` could be a stored id: no id holds NUL (the protocol refuses it, and
    PostgreSQL refuses it in any text it is asked to compare), so a lookup of one finds
    nothing instead of failing."""
    return "\x00" not in key


def _file_id(path: Optional[str]) -> Optional[tuple]:
    """Which file is at ``path`` now (device, inode); None if nothing is."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
