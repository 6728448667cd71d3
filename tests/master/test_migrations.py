"""Store migrations (titus/master/migrations), on SQLite and PostgreSQL.

A store written by the release before migrations is rebuilt from a frozen copy of that release's
tables (fixtures/schema2.py) and the rows its master wrote (fixtures/schema2_rows.json, made by
fixtures/make_schema2_rows.py with that release's code); today's code must open it, upgrade it
and find everything in it.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.operations import Operations
from click.testing import CliRunner
from sqlalchemy.engine import make_url
from sqlalchemy import MetaData, func, inspect, select, text

from titus.autoscale import persist
from titus.autoscale.persist import AutoscaleTables
from titus.cli import main as cli
from titus.master import migrations as M
from titus.master import store_schema as S
from titus.master.store import Store, StoreSchemaError, make_engine, upgrade_store

from tests.master.conftest import drop_everything, postgres_empty, postgres_engine
from tests.master.fixtures import schema2

FIXTURES = Path(__file__).parent / "fixtures"
ROWS = json.loads((FIXTURES / "schema2_rows.json").read_text())
MADE = ROWS["made"]
ALL_TABLES = {*S.metadata.tables, *persist.metadata.tables}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path):
    """An empty database: a SQLite file not made yet, or the test PostgreSQL database emptied."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'master.db'}"
    else:
        yield postgres_empty()
        engine = postgres_engine()
        drop_everything(engine)  # leave no half-made store to other tests
        engine.dispose()


@pytest.fixture
def engines():
    """Engines a test opens (disposed at the end)."""
    made = []

    def engine(url):
        if url.startswith("postgresql"):
            # The checks reflect whole schemas and may idle mid-transaction on a busy machine:
            # not a stopped master, so the store's short idle limit does not apply to them.
            url = make_url(url).update_query_dict(
                {"options": "-c idle_in_transaction_session_timeout=0"}).render_as_string(hide_password=False)
        made.append(make_engine(url))
        return made[-1]

    yield engine
    for e in made:
        e.dispose()


def load_schema2(url: str, autoscale_tables: bool = True) -> None:
    """Make the store the release before migrations left: its tables and its rows."""
    engine = make_engine(url)
    names = [t for t in schema2.metadata.tables
             if autoscale_tables or t not in schema2.AUTOSCALE_TABLES]
    schema2.metadata.create_all(engine, tables=[schema2.metadata.tables[n] for n in names])
    with engine.begin() as conn:
        for name in names:
            data = ROWS["tables"][name]
            if data["rows"]:
                conn.execute(schema2.metadata.tables[name].insert(),
                             [dict(zip(data["columns"], row)) for row in data["rows"]])
        if conn.dialect.name == "postgresql":  # as if the rows had been inserted there
            conn.execute(text("SELECT setval(pg_get_serial_sequence('events', 'seq'), "
                              "(SELECT max(seq) FROM events))"))
    engine.dispose()


def snapshot(engine) -> dict:
    """Every table's columns, indexes and rows (to see that nothing changed)."""
    out = {}
    insp = inspect(engine)
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as conn:
        for name, table in sorted(tables.tables.items()):
            out[name] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"])
                            for c in insp.get_columns(name)],
                "indexes": sorted((i["name"], tuple(i["column_names"]))
                                  for i in insp.get_indexes(name)),
                "rows": sorted(map(tuple, conn.execute(select(table)).all()), key=repr)}
    return out


def kept(engine, name: str, columns: list) -> list:
    """The rows of a table, in the given columns only."""
    table = MetaData()
    table.reflect(engine, only=[name])
    with engine.connect() as conn:
        rows = conn.execute(select(*[table.tables[name].c[c] for c in columns])).all()
    return sorted(map(tuple, rows), key=repr)


def revision_of(engine):
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def meta_schema(engine):
    with engine.connect() as conn:
        return conn.execute(select(S.meta.c.value).where(S.meta.c.key == "schema")).scalar()


# ------------------------------------------------------------------------------ revisions
def test_revisions_are_a_line_and_the_live_tables_name_the_head():
    assert [s.revision for s in M.revisions()][:2] == ["0001", "0002"]
    assert M.head() == S.SCHEMA_VERSION == M.revisions()[-1].revision
    assert all(s.message for s in M.revisions())


def test_revision_0001_is_exactly_schema_2(empty_url, engines):
    """The baseline creates what the release before migrations created, column for column."""
    engine = engines(empty_url)
    schema2.metadata.create_all(engine)
    old = snapshot(engine)
    drop_everything(engine)
    with engine.connect() as conn, M.locked(conn):
        command.upgrade(M.config(connection=conn), "0001")
    new = snapshot(engine)
    assert new.pop("alembic_version")["rows"] == [("0001",)]
    assert new["meta"].pop("rows") == [("schema", "0001")]
    old["meta"].pop("rows")
    assert new == old
    if engine.dialect.name == "sqlite":  # the very same DDL
        ddl = "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE '%alembic%' ORDER BY name"
        made_now = engines(empty_url.replace("master.db", "old.db"))
        schema2.metadata.create_all(made_now)
        with engine.connect() as a, made_now.connect() as b:
            assert a.execute(text(ddl)).all() == b.execute(text(ddl)).all()


# ------------------------------------------------------------------------------ fresh store
def test_fresh_store_is_created_at_head(empty_url):
    store = Store(empty_url)
    try:
        assert revision_of(store.engine) == M.head()
        assert meta_schema(store.engine) == M.head()
        assert ALL_TABLES | {"alembic_version"} == set(inspect(store.engine).get_table_names())
        assert ("ix_events_entity", ["entity_id", "seq"]) in [
            (i["name"], i["column_names"]) for i in inspect(store.engine).get_indexes("events")]
    finally:
        store.close()


def test_the_migrated_store_matches_the_live_tables(empty_url):
    """What the migrations make is what store_schema.py and persist.py describe."""
    store = Store(empty_url)
    try:
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = [d for d in compare_metadata(ctx, [S.metadata, persist.metadata])
                     if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
        assert diffs == []
    finally:
        store.close()


def test_reopening_is_a_no_op(empty_url, monkeypatch, engines):
    Store(empty_url).close()
    before = snapshot(engines(empty_url))

    def must_not_run(*_a, **_k):
        raise AssertionError("an up-to-date store was migrated again")

    monkeypatch.setattr(M, "_run_upgrade", must_not_run)
    store = Store(empty_url)
    store.close()
    assert snapshot(engines(empty_url)) == before
    assert M.current(engines(empty_url)).up_to_date


def test_a_failed_upgrade_changes_nothing(empty_url, monkeypatch, engines):
    """One transaction: when a revision fails, the store is left as it was (SQLite too)."""
    load_schema2(empty_url)
    before = snapshot(engines(empty_url))
    create_index = Operations.create_index

    def fail_after(self, name, *args, **kw):
        create_index(self, name, *args, **kw)
        if name == "ix_events_entity":
            raise RuntimeError("disk full")

    monkeypatch.setattr(Operations, "create_index", fail_after)
    with pytest.raises(RuntimeError, match="disk full"):
        Store(empty_url)
    assert snapshot(engines(empty_url)) == before


def test_downgrade_then_start_upgrades_again(empty_url, engines):
    Store(empty_url).close()
    engine = engines(empty_url)
    with engine.connect() as conn, M.locked(conn):
        command.downgrade(M.config(connection=conn), "0001")
    assert revision_of(engine) == "0001" and meta_schema(engine) == "0001"
    assert "ix_events_entity" not in {i["name"] for i in inspect(engine).get_indexes("events")}
    Store(empty_url).close()
    assert revision_of(engine) == M.head() and meta_schema(engine) == M.head()


# ------------------------------------------------------------------------------ schema 2
def test_schema2_store_is_adopted_upgraded_and_keeps_every_row(empty_url, engines):
    load_schema2(empty_url)
    store = Store(empty_url)
    try:
        assert revision_of(store.engine) == M.head()
        assert meta_schema(store.engine) == M.head()
        after = snapshot(store.engine)
        for name, data in ROWS["tables"].items():
            if name != "meta":  # every row, in the columns it had (later columns: defaults)
                assert kept(store.engine, name, data["columns"]) == \
                    sorted(map(tuple, data["rows"]), key=repr), name
        assert "ix_events_entity" in {i[0] for i in after["events"]["indexes"]}

        # the loaders find every job and task, live and archived, and the rest
        assert [j["id"] for j in store.load_jobs()] == MADE["live_jobs"]
        live_tasks = {r[1] for r in ROWS["tables"]["tasks"]["rows"]}
        assert {t["id"] for t in store.load_tasks()} == live_tasks
        for job_id in MADE["archived_jobs"]:
            assert store.archived_job(job_id)["state"] == "Finished"
            assert len(store.archived_tasks(job_id)) == 2
        assert [j["id"] for j in store.archived_jobs()] == MADE["archived_jobs"]
        assert [a["id"] for a in store.load_agents()] == MADE["agents"]
        assert [g["name"] for g in store.load_capacity_groups()] == MADE["capacity_groups"]
        jobs, tasks = store.max_seq()
        assert (jobs, tasks) == (5, 10)
        groups, rules = AutoscaleTables(store.engine).load()
        assert [g.name for g in groups] == MADE["instance_groups"]
        assert [r.group for r in rules] == MADE["rules"] and rules[0].max_idle == 2
        assert AutoscaleTables(store.engine).load_draining() == {
            "batch": {h: "scale_down" for h in MADE["draining_hosts"]}}

        # and it goes on writing: the event log continues after the old entries
        with store.transaction() as tx:
            tx.event(2e6, "test", "x")
        assert [e["seq"] for e in store.events(after=7)] == [8]
    finally:
        store.close()


def test_schema2_store_is_recovered_by_the_master(empty_url):
    """The master's start on an old store: Store(url) upgrades it, recovery rebuilds from it."""
    try:
        from titus.master.app import build_master
        from titus.master.config import MasterSettings
    except ImportError as exc:  # the master's modules being reworked
        pytest.skip(f"titus.master.app does not import: {exc}")
    load_schema2(empty_url)
    master = build_master(MasterSettings(store_url=empty_url))
    try:
        assert revision_of(master.store.engine) == M.head()
        assert sorted(master.jobs) == sorted(MADE["live_jobs"])
        assert set(master.tasks) == {r[1] for r in ROWS["tables"]["tasks"]["rows"]}
        for job_id in MADE["archived_jobs"]:
            job, archived = master.get_job(job_id)
            assert archived and job.state == "Finished"
        assert list(master.registry.agents) == MADE["agents"]
        assert [g["name"] for g in master.store.load_capacity_groups()] == MADE["capacity_groups"]
    finally:
        master.store.close()


def test_schema2_store_without_the_autoscale_tables_gets_them(empty_url, engines):
    """That release made the autoscaler's tables only when the autoscaler first ran."""
    load_schema2(empty_url, autoscale_tables=False)
    plan = upgrade_store(engines(empty_url), dry_run=True)
    assert plan.state == M.LEGACY and plan.missing_tables == list(schema2.AUTOSCALE_TABLES)
    sql = M.offline_sql(empty_url, plan)  # what the upgrade will run, as SQL
    assert "CREATE TABLE autoscale_rules" in sql and "CREATE TABLE jobs" not in sql
    assert "CREATE INDEX ix_events_entity" in sql
    store = Store(empty_url)
    try:
        assert ALL_TABLES <= set(inspect(store.engine).get_table_names())
        assert AutoscaleTables(store.engine).load() == ([], [])
        assert [j["id"] for j in store.load_jobs()] == MADE["live_jobs"]
    finally:
        store.close()


def test_dry_run_says_what_it_would_do_and_changes_nothing(empty_url, engines):
    load_schema2(empty_url)
    before = snapshot(engines(empty_url))
    plan = upgrade_store(engines(empty_url), dry_run=True)
    assert (plan.state, plan.current, plan.head) == (M.LEGACY, None, M.head())
    assert [s.revision for s in plan.steps] == [s.revision for s in M.revisions()]
    result = CliRunner().invoke(cli, ["store", "upgrade", "--store", empty_url, "--dry-run",
                                      "--sql"])
    assert result.exit_code == 0, result.output
    assert "schema 2" in result.output and "would apply" in result.output
    assert "0001  Schema 2" in result.output and "0002  Index the event log" in result.output
    assert "CREATE INDEX ix_events_entity ON events (entity_id, seq)" in result.output
    assert snapshot(engines(empty_url)) == before


def test_dry_run_on_a_missing_sqlite_file_does_not_make_it(tmp_path):
    path = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["store", "upgrade", "--dry-run", "--store",
                                      f"sqlite:///{path}"])
    assert result.exit_code == 0, result.output
    assert "none: empty store" in result.output and f"head:    {M.head()}" in result.output
    assert not path.exists()


def test_cli_current_and_upgrade(empty_url):
    runner = CliRunner()
    load_schema2(empty_url)
    result = runner.invoke(cli, ["store", "current", "--store", empty_url])
    assert result.exit_code == 0, result.output
    assert "schema 2, written before migrations" in result.output
    assert f"{len(M.revisions())} revision(s) to apply" in result.output
    result = runner.invoke(cli, ["store", "upgrade"], env={"TITUS_STORE_URL": empty_url})
    assert result.exit_code == 0, result.output
    assert "applied:" in result.output and "0002  Index the event log" in result.output
    result = runner.invoke(cli, ["store", "current", "--store", empty_url])
    assert f"current: {M.head()} (head)" in result.output and "up to date" in result.output
    result = runner.invoke(cli, ["store", "upgrade", "--store", empty_url])
    assert "up to date: nothing to do" in result.output


# ------------------------------------------------------------------------------ refusals
def test_store_from_a_newer_release_is_refused(empty_url, engines):
    Store(empty_url).close()
    engine = engines(empty_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    before = snapshot(engine)
    with pytest.raises(StoreSchemaError, match=rf"revision 0099.*newest is {M.head()}"):
        Store(empty_url)
    result = CliRunner().invoke(cli, ["store", "upgrade", "--store", empty_url])
    assert result.exit_code == 1 and "revision 0099" in result.output
    assert f"newest is {M.head()}" in result.output
    assert snapshot(engine) == before


def test_store_of_an_unknown_old_schema_is_refused(empty_url, engines):
    load_schema2(empty_url)
    with engines(empty_url).begin() as conn:
        conn.execute(S.meta.update().where(S.meta.c.key == "schema").values(value="1"))
    with pytest.raises(StoreSchemaError, match=rf"schema '1'.*schema 2.*0001 to {M.head()}"):
        Store(empty_url)


# ------------------------------------------------------------------------------ concurrency
def test_concurrent_starts_migrate_once(empty_url, engines):
    """Masters starting together on one database: one migrates, the others find it done."""
    # The database exists (on SQLite: the file, already in WAL mode; switching a new file to
    # WAL from several connections at once can fail in make_engine, before any migration).
    engines(empty_url).connect().close()
    barrier = threading.Barrier(3)
    errors, plans = [], []

    def start():
        engine = make_engine(empty_url)
        try:
            barrier.wait()
            plans.append(upgrade_store(engine))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(len(p.steps) for p in plans) == [0, 0, len(M.revisions())]  # one did it all
    engine = engines(empty_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(M.head(),)]
        assert conn.execute(select(func.count()).select_from(S.meta)).scalar() == 1
    assert ALL_TABLES <= set(inspect(engine).get_table_names())


@pytest.mark.postgres
def test_upgrade_waits_for_the_advisory_lock():
    """On PostgreSQL the upgrade holds an advisory lock: a second one waits for it."""
    url = postgres_empty()
    holder = make_engine(url)
    conn = holder.connect()
    conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": M.LOCK_ID})
    done = threading.Event()

    def start():
        Store(url).close()
        done.set()

    thread = threading.Thread(target=start)
    thread.start()
    try:
        time.sleep(1.0)
        assert not done.is_set()  # waiting for the lock
        assert "alembic_version" not in inspect(holder).get_table_names()
    finally:
        conn.rollback()  # releases the lock
        conn.close()
    thread.join(30)
    assert done.is_set()
    assert revision_of(holder) == M.head()
    drop_everything(holder)
    holder.dispose()
