"""Fixtures that start a REAL platform: a ``titus master`` process on a fresh store and sim
agent processes, all talking HTTP on free local ports.

Stores: every test using ``store_url`` runs on SQLite (a temp file) and on PostgreSQL at
``TITUS_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://titus:titus@127.0.0.1:5432/
titus_test``; under pytest-xdist a database of each worker's own, see ``tests/postgres_db.py``).
Without a reachable PostgreSQL the PostgreSQL variant is skipped with a how-to, unless
``TITUS_REQUIRE_POSTGRES=1``: then it fails.
"""
from __future__ import annotations

import contextlib
import os
import uuid

import pytest

from tests import postgres_db
from tests.integration.platform import Platform

POSTGRES_HOWTO = (
    "PostgreSQL not reachable at {url} ({error}). To run these tests: `sudo sh .ci/postgres.sh` "
    "(starts PostgreSQL 15, creates role titus/titus and database titus_test), or point "
    "TITUS_TEST_POSTGRES_URL at a database you may wipe. Set TITUS_REQUIRE_POSTGRES=1 to make "
    "this a failure instead of a skip."
)
# The master notices a silent agent quickly in tests.
FAST_MASTER_ENV = {
    "TITUS_HEARTBEAT_INTERVAL_SEC": "0.2",
    "TITUS_HEARTBEAT_TIMEOUT_SEC": "3",
    "TITUS_SCHEDULE_INTERVAL_SEC": "0.05",
    "TITUS_RECONCILE_INTERVAL_SEC": "0.2",
    "TITUS_SUBMIT_RATE_PER_SEC": "0",  # tests submit in bursts; the limit has its own test
    # a failing index restarts after 0.2 s, 0.4 s ... (not 1 s, 2 s ...): the back-off itself
    # is tested in tests/master/test_crash_backoff.py
    "TITUS_CRASH_BACKOFF_BASE_SEC": "0.2",
    "TITUS_CRASH_BACKOFF_MAX_SEC": "1",
}


@contextlib.contextmanager
def _postgres_schema():
    """A URL whose search_path is a new, empty schema, dropped afterwards (so tests and
    other users of the database never see each other's tables)."""
    url = postgres_db.database_url()
    schema = f"titus_it_{uuid.uuid4().hex[:12]}"
    try:
        import sqlalchemy

        postgres_db.ensure(url)
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # driver missing, server down, bad credentials ...
        message = POSTGRES_HOWTO.format(url=url, error=f"{type(exc).__name__}: {exc}"[:300])
        if os.environ.get("TITUS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    scoped = sqlalchemy.engine.make_url(url).update_query_dict(
        {"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    """A fresh, empty store: a SQLite file, then the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'titus.db'}"
        return
    with _postgres_schema() as url:
        yield url


@pytest.fixture
def platform(store_url, tmp_path):
    """A running master on ``store_url`` with no agents yet; stopped after the test."""
    with Platform(tmp_path / "cluster", store_url=store_url, master_env=FAST_MASTER_ENV) as plat:
        plat.start_master()
        yield plat
        dead = plat.crashed()
        assert not dead, f"processes died during the test: {dead}\n{plat.log_tail('master.log')}"
