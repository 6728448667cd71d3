"""Schema migrations of the master's store, with Alembic, configured in code (no alembic.ini).

``Store(url)`` calls :func:`upgrade` at start: the store is brought to the newest revision of
``versions/`` in one transaction, under a lock, so that two masters starting on one database
never both migrate it:

* an empty database gets every revision;
* a store written by the release before migrations (tables, ``meta.schema`` = "2", no
  ``alembic_version``) is adopted at revision 0001 (only the tables it lacks are created),
  then upgraded;
* a store at a revision this code does not know (written by a newer release) is refused.

``titus store current`` / ``titus store upgrade [--dry-run]`` run the same code by hand.
See docs/store.md.
"""
from __future__ import annotations

import io
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator, Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import String, Text, column, inspect, select, table, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("titus.master.migrations")

SCRIPT_LOCATION = os.path.dirname(os.path.abspath(__file__))
VERSION_TABLE = "alembic_version"
# meta.schema of the release before migrations; such a store is adopted at BASELINE.
LEGACY_SCHEMA = "2"
BASELINE = "0001"
# The key of the PostgreSQL advisory lock held while a store is upgraded ("titus-st").
LOCK_ID = 0x74697475732D7374
# Set on the config to the tables a legacy store has when it is adopted: revision 0001 keeps
# those and creates the rest.
ADOPT = "titus.adopt"

# Alembic's ``op`` and ``context`` are module-level proxies: one migration run at a time per
# process (stores on different databases opened by threads at once would otherwise collide).
_ALEMBIC = threading.Lock()

META = table("meta", column("key", String(64)), column("value", Text))

FRESH, LEGACY, VERSIONED = "fresh", "legacy", "versioned"


class StoreSchemaError(RuntimeError, SQLAlchemyError):
    """The store's schema cannot be brought to this code's (written by a newer release, or
    by an unknown one). Also a SQLAlchemyError, so that what reports a store that cannot be
    opened (``titus master``) reports this the same way."""


@dataclass
class Step:
    """One revision an upgrade would run."""

    revision: str
    message: str

    def __str__(self) -> str:
        return f"{self.revision}  {self.message}"


@dataclass
class Plan:
    """Where a store is and what an upgrade to the newest revision runs."""

    state: str  # FRESH (empty), LEGACY (schema 2, no history) or VERSIONED
    current: Optional[str]  # the store's revision (None: empty or legacy)
    head: str
    steps: list[Step] = field(default_factory=list)
    # LEGACY: tables of the baseline the store has (kept) and lacks (created when adopted)
    adopted_tables: list[str] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.steps

    def describe_current(self) -> str:
        """The store's revision, in words."""
        if self.state == LEGACY:
            return (f"none: schema {LEGACY_SCHEMA}, written before migrations "
                    f"(adopted as {BASELINE} on upgrade)")
        if self.current is None:
            return "none: empty store"
        return self.current + (" (head)" if self.current == self.head else "")


def default_store_url() -> str:
    """The store URL the master would use (``TITUS_STORE_URL``, else the settings' default)."""
    from titus.master.config import MasterSettings

    return MasterSettings.from_env().store_url


def config(connection: Optional[Connection] = None, url: Optional[str] = None,
           output: Optional[io.StringIO] = None) -> Config:
    """An Alembic config for the store's migrations (the package's script location)."""
    cfg = Config(output_buffer=output)
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def script_directory() -> ScriptDirectory:
    """The revisions in ``versions/``."""
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision this code knows."""
    return script_directory().get_current_head()


def revisions() -> list[Step]:
    """Every revision, oldest first."""
    scripts = reversed(list(script_directory().walk_revisions()))
    return [Step(s.revision, _message(s)) for s in scripts]


def _message(script) -> str:
    """The first line of a revision's docstring."""
    lines = (script.doc or "").strip().splitlines()
    return lines[0] if lines else ""


def _redacted(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


@contextmanager
def locked(conn: Connection, write: bool = True) -> Iterator[Connection]:
    """A transaction on ``conn`` holding the migration lock; committed at the end of the block
    (``write``) or rolled back. PostgreSQL: a transaction-level advisory lock, so a second
    master waits here until the first has committed its upgrade. SQLite: ``BEGIN IMMEDIATE``
    (the database's write lock) when ``write``."""
    try:
        if conn.dialect.name == "postgresql":
            # An upgrade may pause between statements (a slow or busy machine): the store's
            # short idle-in-transaction limit, there for a stopped master's writes, must not
            # end it half-way.
            conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        elif conn.dialect.name == "sqlite" and write:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn
    except BaseException:
        conn.rollback()
        raise
    if write:
        conn.commit()
    else:
        conn.rollback()


def inspect_store(conn: Connection) -> Plan:
    """Where the store on ``conn`` is, and the steps to the newest revision.

    Raises :class:`StoreSchemaError` for a store this code cannot upgrade.
    """
    scripts = script_directory()
    newest = head()
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    adopted: list[str] = []
    missing: list[str] = []
    if VERSION_TABLE in tables:
        heads = MigrationContext.configure(conn).get_current_heads()
        if len(heads) > 1:
            raise StoreSchemaError(f"store {_redacted(conn)} has several revisions "
                                   f"{', '.join(heads)}; this release knows one line up to {newest}")
        current = heads[0] if heads else None
        if current is not None and current not in {s.revision for s in revisions()}:
            raise StoreSchemaError(
                f"store {_redacted(conn)} is at revision {current}, which this release does not "
                f"know (its newest is {newest}): a newer release has upgraded it. Run that "
                f"release (or newer), or restore a backup taken before the upgrade.")
        state = VERSIONED if current is not None else FRESH
    elif "meta" in tables:
        schema = conn.execute(select(META.c.value).where(META.c.key == "schema")).scalar()
        if schema not in (None, LEGACY_SCHEMA):
            raise StoreSchemaError(
                f"store {_redacted(conn)} has schema {schema!r} and no migration history "
                f"({VERSION_TABLE}); this release upgrades stores of schema {LEGACY_SCHEMA} and "
                f"revisions {BASELINE} to {newest}")
        state, current = LEGACY, None
        baseline = scripts.get_revision(BASELINE).module
        adopted = [t for t in baseline.TABLES if t in tables]
        missing = [t for t in baseline.TABLES if t not in tables]
    else:
        state, current = FRESH, None
    pending = [Step(s.revision, _message(s))
               for s in reversed(list(scripts.iterate_revisions(newest, current)))]
    return Plan(state=state, current=current, head=newest, steps=pending,
                adopted_tables=adopted, missing_tables=missing)


def _run_upgrade(conn: Connection, plan: Plan) -> None:
    cfg = config(connection=conn)
    cfg.attributes[ADOPT] = plan.adopted_tables if plan.state == LEGACY else None
    with _ALEMBIC:
        command.upgrade(cfg, "head")


def upgrade(engine: Engine, dry_run: bool = False) -> Plan:
    """Bring the store to the newest revision, in one transaction under the migration lock
    (``dry_run``: only say what that would run). Returns the plan as it was before."""
    with engine.connect() as conn:
        with locked(conn, write=not dry_run):
            plan = inspect_store(conn)
            if dry_run or plan.up_to_date:
                return plan
            # An empty store is only being created: not worth a warning.
            (log.info if plan.state == FRESH else log.warning)(
                "upgrading store %s from %s to %s: %s", _redacted(conn),
                plan.describe_current(), plan.head, "; ".join(map(str, plan.steps)))
            _run_upgrade(conn, plan)
    return plan


def current(engine: Engine) -> Plan:
    """Where the store is (reads only)."""
    with engine.connect() as conn:
        with locked(conn, write=False):
            return inspect_store(conn)


def offline_sql(url: str, plan: Plan) -> str:
    """The SQL an upgrade following ``plan`` would run (Alembic's offline mode)."""
    if not plan.steps:
        return ""
    out = io.StringIO()
    cfg = config(url=url, output=out)
    cfg.attributes[ADOPT] = plan.adopted_tables if plan.state == LEGACY else None
    with _ALEMBIC:
        command.upgrade(cfg, f"{plan.current}:head" if plan.current else "head", sql=True)
    return out.getvalue()
