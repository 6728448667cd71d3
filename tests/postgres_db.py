"""The PostgreSQL database of this test process.

``TITUS_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://titus:titus@127.0.0.1:5432/
titus_test``) names it. Tests empty that database (the master's tests drop every table), so
processes running at the same time must not share one: under pytest-xdist each worker takes
a database of its own, the named one with the worker's id appended (``titus_test_gw0``,
``titus_test_gw1``, ...), created on first use through the same role. That needs the role to
be allowed to create databases (``ALTER ROLE titus CREATEDB``, which ``.ci/postgres.sh``
grants) or the databases to exist already.
"""
from __future__ import annotations

import os
from typing import Optional

DEFAULT_URL = "postgresql+psycopg://titus:titus@127.0.0.1:5432/titus_test"
_ensured: set[str] = set()


def worker_id() -> Optional[str]:
    """The pytest-xdist worker this process is (``gw0``, ``gw1``, ...), None when not one."""
    return os.environ.get("PYTEST_XDIST_WORKER") or None


def database_url() -> str:
    """The URL of this process's test database (per worker; not created here)."""
    return for_worker(os.environ.get("TITUS_TEST_POSTGRES_URL") or DEFAULT_URL)


def for_worker(url: str, worker: Optional[str] = None) -> str:
    """``url`` with ``_<worker>`` appended to its database name; ``url`` itself outside
    pytest-xdist."""
    worker = worker or worker_id()
    if not worker:
        return url
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(
        hide_password=False)


def ensure(url: str) -> None:
    """Create the database of ``url`` if it does not exist yet (once per process).

    Only a worker's own database is created; it is made through the database named by
    ``TITUS_TEST_POSTGRES_URL`` (or the default) with the same credentials. Raises what the
    driver raised when the server is unreachable, and RuntimeError, saying what to do, when
    the role may not create databases."""
    if url in _ensured or not worker_id():
        return
    import sqlalchemy
    from sqlalchemy.engine import make_url

    target = make_url(url)
    base = make_url(os.environ.get("TITUS_TEST_POSTGRES_URL") or DEFAULT_URL)
    engine = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT",
                                      connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            exists = conn.execute(sqlalchemy.text(
                "SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database}).first()
            if not exists:
                try:
                    conn.execute(sqlalchemy.text(f'CREATE DATABASE "{target.database}"'))
                except sqlalchemy.exc.DBAPIError as exc:
                    if "already exists" not in str(exc):  # else: made meanwhile elsewhere
                        raise RuntimeError(
                            f"cannot create the worker database {target.database!r} as role "
                            f"{base.username!r} ({str(exc.orig).strip()}): grant it the right "
                            f"(`ALTER ROLE {base.username} CREATEDB`, as .ci/postgres.sh "
                            "does) or create the database beforehand") from exc
    finally:
        engine.dispose()
    _ensured.add(url)
