"""Fixtures for the master's tests: stores (SQLite and PostgreSQL), a master on a fake clock,
a REST client, and a scripted agent that speaks the agent protocol in-process.

PostgreSQL: ``TITUS_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://titus:titus@127.0.0.1:5432/titus_test``; under pytest-xdist a database
of each worker's own, see ``tests/postgres_db.py``); provision it with ``.ci/postgres.sh``.
Tests needing it skip when it is unreachable, unless ``TITUS_REQUIRE_POSTGRES=1`` makes that
a failure.
"""
from __future__ import annotations

import os

import pytest

from tests import postgres_db
from titus.protocol import HostInfo, RegisterRequest, TaskStatusMsg
from titus.master.config import MasterSettings
from titus.master.master import Master
from titus.master.store import Store

POSTGRES_URL = postgres_db.database_url()


def postgres_engine():
    """An engine on the test PostgreSQL database (skips, or fails, if unreachable)."""
    from titus.master.store import make_engine

    try:
        postgres_db.ensure(POSTGRES_URL)
        engine = make_engine(POSTGRES_URL)
        with engine.connect():
            pass
    except Exception as exc:  # unreachable, no role, no database ...
        message = (f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}: {exc}). "
                   "Run .ci/postgres.sh (or set TITUS_TEST_POSTGRES_URL).")
        if os.environ.get("TITUS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return engine


def drop_everything(engine) -> None:
    """Drop every table of the database (the store's, the autoscaler's, ``alembic_version``,
    and any a test made)."""
    from sqlalchemy import MetaData

    existing = MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)


def postgres_empty() -> str:
    """The test PostgreSQL database emptied (skips, or fails, if unreachable); its URL."""
    engine = postgres_engine()
    drop_everything(engine)  # a clean database for every test
    engine.dispose()
    return POSTGRES_URL


def _postgres_store() -> Store:
    """A store on a PostgreSQL database emptied first (skips, or fails, if unreachable)."""
    return Store(postgres_empty())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """A fresh store URL: SQLite in a temporary directory, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'master.db'}"
    else:
        _postgres_store().close()
        yield POSTGRES_URL


@pytest.fixture
def store(store_url):
    """An open store on each database."""
    s = Store(store_url)
    yield s
    s.close()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def settings():
    return MasterSettings(store_url="sqlite://", heartbeat_timeout_sec=10.0,
                          launched_timeout_sec=30.0, start_initiated_timeout_sec=60.0,
                          kill_initiated_timeout_sec=20.0, unhealthy_replace_sec=15.0)


def make_master(settings, clock, store=None) -> Master:
    master = Master(settings, store or Store(settings.store_url), clock=clock)
    master.recover()
    return master


@pytest.fixture
def master(settings, clock, tmp_path):
    settings = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'm.db'}"})
    m = make_master(settings, clock)
    yield m
    m.store.close()


class ScriptedAgent:
    """An agent driven by the test: registers hosts, takes orders, reports statuses."""

    def __init__(self, master: Master, agent_id: str = "agent-1", hosts: int = 2, cpus: float = 4,
                 memory_mb: float = 8192, zones=("a", "b")):
        self.master = master
        self.id = agent_id
        self.hosts = [HostInfo(host_id=f"{agent_id}-h{i}", cpus=cpus, memory_mb=memory_mb,
                               attributes={"zone": zones[i % len(zones)],
                                           "instance_type": "m5.xlarge",
                                           "instance_id": f"i-{agent_id}-{i}"})
                      for i in range(hosts)]
        self.running: dict[str, str] = {}  # task id -> host id
        self.orders: list = []

    def register(self, tasks: list[TaskStatusMsg] = ()):
        return self.master.register_agent(RegisterRequest(
            agent_id=self.id, hosts=self.hosts, tasks=list(tasks)))

    def heartbeat(self, statuses=()) -> list:
        ok = self.master.heartbeat(self.id, list(statuses), list(self.running))
        if not ok:
            return ["reregister"]
        orders = self.master.registry.take(self.id)
        self.orders += orders
        return orders

    def start_launched(self) -> list[str]:
        """Take orders; start every launched task (Started) and end every killed one."""
        orders = self.heartbeat()
        statuses = []
        for o in orders:
            if o.type == "launch":
                self.running[o.task_id] = o.host_id
                statuses.append(TaskStatusMsg(task_id=o.task_id, state="Started",
                                              host_id=o.host_id))
            elif o.type == "kill" and o.task_id in self.running:
                host = self.running.pop(o.task_id)
                statuses.append(TaskStatusMsg(task_id=o.task_id, state="Finished",
                                              reason="killed", host_id=host))
        self.heartbeat(statuses)
        return [o.task_id for o in orders if o.type == "launch"]

    def finish(self, task_id: str, exit_code: int = 0, reason: str = ""):
        host = self.running.pop(task_id)
        self.heartbeat([TaskStatusMsg(task_id=task_id, state="Finished", exit_code=exit_code,
                                      reason=reason, host_id=host)])


@pytest.fixture
def agent(master):
    a = ScriptedAgent(master)
    a.register()
    return a
