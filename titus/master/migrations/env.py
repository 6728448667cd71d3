"""Alembic's environment for the master's store.

Run by :mod:`titus.master.migrations` (``Store(url)``, ``titus store upgrade``), which hands over
an open connection in ``config.attributes["connection"]``, already in a transaction that holds
the migration lock. Run by the ``alembic`` command itself (``alembic upgrade head -x
store=URL``), it opens the store and takes the same lock. Offline (``--sql``) it prints SQL.

After the revisions have run, ``meta.schema`` is set to the store's revision, for people
reading the database.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import delete, insert, inspect

from titus.master import migrations as M

config = context.config


def _target_metadata() -> list:
    """The live tables (what ``alembic revision --autogenerate`` compares the store with)."""
    from titus.autoscale import persist
    from titus.master import store_schema

    return [store_schema.metadata, persist.metadata]


def _url() -> str:
    given = context.get_x_argument(as_dictionary=True).get("store")
    return given or config.get_main_option("sqlalchemy.url") or M.default_store_url()


def _record_schema(revision) -> None:
    if revision:
        context.execute(delete(M.META).where(M.META.c.key == "schema"))
        context.execute(insert(M.META).values(key="schema", value=revision))


def _configure(**kw) -> None:
    # transactional_ddl: upgrades run in one transaction on SQLite too (BEGIN IMMEDIATE, see
    # migrations.locked), and the offline SQL says so.
    context.configure(target_metadata=_target_metadata(), render_as_batch=True,
                      compare_type=True, transactional_ddl=True, **kw)


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
        destination = context.get_revision_argument()
        script = context.script.get_revision(destination) if destination else None
        _record_schema(script.revision if script is not None else None)


def _run(connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        before = context.get_context().get_current_heads()
        context.run_migrations()
        after = context.get_context().get_current_heads()
        if after != before and inspect(connection).has_table(M.META.name):
            _record_schema(context.get_context().get_current_revision())


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from titus.master.store import make_engine

    engine = make_engine(_url())
    try:
        with engine.connect() as connection, M.locked(connection):
            if M.ADOPT not in config.attributes:  # a store of the release before migrations?
                plan = M.inspect_store(connection)
                config.attributes[M.ADOPT] = plan.adopted_tables if plan.state == M.LEGACY else None
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
