"""Store failures are loud and honest: a write the store cannot take answers 503 and changes
nothing; the master keeps running and carries on by itself once the store takes writes again.

Failures are real SQLite errors where SQLite can be made to fail on demand (a read-only
connection, a full database, a lock held by another connection, the file moved away) and an
injected driver error for "the database cannot be opened at all". PostgreSQL (connections
terminated by the server) runs when ``TITUS_TEST_POSTGRES_URL`` is set.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from titus import states as S
from titus.agent.agent import Agent
from titus.agent.config import AgentConfig
from titus.agent.sim import SimRuntime
from titus.master.app import create_app
from titus.master.errors import StoreUnavailable
from titus.master.store import Store
from titus.master.store_health import is_outage
from titus.master.validation import parse_job
from titus.protocol import TaskStatusMsg

from tests.master.conftest import ScriptedAgent, make_master
from tests.waiting import wait_until

KINDS = ["down", "readonly", "full", "locked", "gone"]


class StoreFaults:
    """Makes a SQLite store fail on demand, the way SQLite itself fails."""

    def __init__(self, store: Store):
        self.store = store
        self.kind = None
        self.holder = None
        event.listen(store.engine, "before_cursor_execute", self._before)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        raw = cursor.connection
        raw.execute(f"PRAGMA query_only = {int(self.kind == 'readonly')}")
        raw.execute(f"PRAGMA busy_timeout = {50 if self.kind == 'locked' else 30000}")
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
        raw.execute(f"PRAGMA max_page_count = {pages if self.kind == 'full' else 2**30}")
        if self.kind == "down":
            raise sqlite3.OperationalError("unable to open database file")

    @contextmanager
    def on(self, kind: str):
        """The store fails with ``kind`` inside the block."""
        self.kind = kind
        path = self.store.file
        if kind == "locked":  # another connection of the process holds the write lock
            self.holder = sqlite3.connect(f"file:{quote(path)}?vfs=unix-excl", uri=True,
                                          isolation_level=None, check_same_thread=False)
            self.holder.execute("BEGIN IMMEDIATE")
        elif kind == "gone":
            os.rename(path, path + ".moved")
        try:
            yield
        finally:
            self.kind = None
            if self.holder is not None:
                self.holder.execute("ROLLBACK")
                self.holder.close()
                self.holder = None
            if kind == "gone":
                os.rename(path + ".moved", path)


def batch(size=2, group=None, **env):
    spec = {"applicationName": "app", "container": {"image": {"name": "busybox"}, "env": env},
            "batch": {"size": size}}
    if group:
        spec["capacityGroup"] = group
    return parse_job(spec)


def service(desired=2):
    return parse_job({"applicationName": "svc", "container": {"image": {"name": "nginx"}},
                      "service": {"capacity": {"min": 0, "desired": desired, "max": 10}}})


def memory(master) -> dict:
    """Everything of the master's memory a write could change (agents' liveness aside)."""
    st, engine = master.state, master.engine
    with st.lock:
        return _memory(st, engine)


def _memory(st, engine) -> dict:
    return {
        "jobs": {j.id: (j.state, j.live_count, j.next_index, sorted(j.tasks),
                        sorted(j.done_indices)) for j in st.jobs.values()},
        "tasks": {t.id: (t.state, t.reason_code, t.host_id, t.agent_id, t.in_engine,
                         t.scheduling_failure, t.health) for t in st.tasks.values()},
        "counts": dict(st.state_counts), "queue": len(st.queue),
        "usage": {g: dict(u) for g, u in st.group_usage.items()},
        "timers": sorted((due, tid, kind, stamp) for due, _, tid, kind, stamp in st.timers),
        "orders": {a.id: list(a.orders) for a in st.registry.agents.values()},
        "agents": {a.id: sorted(a.hosts) for a in st.registry.agents.values()},
        "agent_tasks": {a: sorted(t) for a, t in st.agent_tasks.items()},
        "hosts": {h: engine.host_usage(h) for h in sorted(engine.hosts)},
        "held_off": sorted(engine.held_off), "groups": sorted(st.capacity.groups),
        "idempotency": sorted(st.idempotency),
    }


def stored(store: Store) -> dict:
    """What the store holds."""
    return {"jobs": sorted(r["id"] for r in store.load_jobs()),
            "tasks": {r["id"]: (r["state"], r["host_id"]) for r in store.load_tasks()},
            "agents": sorted(r["id"] for r in store.load_agents()),
            "groups": sorted(r["name"] for r in store.load_capacity_groups()),
            "events": len(store.events(limit=10**6)), "seq": store.max_seq()}


@pytest.fixture
def master(settings, clock, tmp_path):
    m = make_master(settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'f.db'}"}),
                    clock)
    yield m
    m.store.close()


@pytest.fixture
def faults(master):
    return StoreFaults(master.store)


@pytest.fixture
def agent(master):
    a = ScriptedAgent(master)
    a.register()
    return a


@pytest.fixture
def heard(master, monkeypatch):
    """Every event observers were told of."""
    out = []
    monkeypatch.setattr(master.events, "publish", lambda kind, job_id, render: out.append(kind))
    monkeypatch.setattr(type(master.events), "active", property(lambda self: True))
    return out


def running(master, agent, size=2):
    job = master.submit_job(batch(size))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    return job


# ------------------------------------------------------------------------------ the facade
@pytest.mark.parametrize("kind", KINDS)
def test_a_write_the_store_cannot_take_changes_nothing_and_a_retry_succeeds(
        master, agent, faults, heard, kind):
    running(master, agent)
    master.submit_job(batch(1))  # one waiting
    before, on_disk, events = memory(master), stored(master.store), len(heard)
    with faults.on(kind):
        with pytest.raises(StoreUnavailable) as failure:
            master.submit_job(batch(300))  # 300 tasks: a full database has no page for them
        assert is_outage(failure.value.__cause__)
        assert memory(master) == before and len(heard) == events
        assert not master.store.health.writable
    assert stored(master.store) == on_disk
    job = master.submit_job(batch(300))
    assert len(job.tasks) == 300 and master.store.health.wire()["writable"]
    assert stored(master.store)["jobs"] == sorted(on_disk["jobs"] + [job.id])


def test_what_clients_are_told_names_the_failure_not_the_statement(master, agent, faults):
    told = {}
    for kind in KINDS:
        with faults.on(kind), pytest.raises(StoreUnavailable) as failure:
            master.submit_job(batch(300))
        told[kind] = str(failure.value)
    assert "read-only" in told["readonly"] and "disk is full" in told["full"]
    assert "lock" in told["locked"] and "deleted or replaced" in told["gone"]
    assert "cannot be used" in told["down"]
    assert not any("INSERT" in text or "[SQL" in text for text in told.values())


def test_a_failed_submit_never_reuses_a_sequence_number(master, faults, settings, clock,
                                                        tmp_path):
    first = master.submit_job(batch(2))
    with faults.on("down"), pytest.raises(StoreUnavailable):
        master.submit_job(batch(2))
    after = master.submit_job(batch(2))
    seqs = [t.seq for j in (first, after) for t in j.tasks.values()]
    assert after.seq > first.seq + 1 and len(set(seqs)) == len(seqs)  # the failed ones are spent
    again = make_master(master.settings, clock, Store(master.settings.store_url))
    try:
        restarted = again.submit_job(batch(1))
        assert restarted.seq > after.seq
        assert min(t.seq for t in restarted.tasks.values()) > max(seqs)
    finally:
        again.store.close()


def test_a_refused_statement_is_a_bug_not_an_outage(master):
    job = master.submit_job(batch(1))
    with pytest.raises(sa_exc.IntegrityError), master.ledger.transaction() as tx:
        tx.insert_job(job.row())  # the same key again
    assert master.store.health.writable


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(master, faults, caplog):
    caplog.set_level(logging.DEBUG, logger="titus.master.store")
    with faults.on("readonly"):
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                master.submit_job(batch(1))
    master.submit_job(batch(1))
    loud = [r for r in caplog.records
            if r.name == "titus.master.store" and r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["ERROR", "WARNING"]
    assert loud[0].exc_info is not None and "read-only" in loud[0].getMessage()
    assert "5 refused" in loud[1].getMessage()


# ------------------------------------------------------------------------------ heartbeats
def test_a_heartbeat_the_store_refuses_applies_nothing_and_its_resend_is_taken(
        master, agent, faults, clock, heard):
    job = running(master, agent, size=1)
    task_id = next(iter(agent.running))
    master.submit_job(batch(1))
    master.scheduling.run_round(force=True)  # a launch order waits for the agent
    before, events = memory(master), len(heard)
    report = [TaskStatusMsg(task_id=task_id, state="Finished", exit_code=0,
                            host_id=agent.running[task_id])]
    clock.advance(1)
    with faults.on("down"), pytest.raises(StoreUnavailable):
        master.heartbeat(agent.id, report, [])
    assert memory(master) == before and len(heard) == events  # the order still waits too
    assert master.registry.get(agent.id).last_seen == clock.now  # heard from, all the same
    assert master.heartbeat(agent.id, report, [])  # the agent sends it again
    assert job.id not in master.jobs  # finished and archived
    assert master.store.archived_job(job.id)["state"] == S.FINISHED


def test_silence_during_an_outage_does_not_lose_agents(master, agent, faults, clock):
    running(master, agent)
    clock.advance(master.settings.heartbeat_timeout_sec + 1)  # silent (its reports refused)
    with faults.on("down"), pytest.raises(StoreUnavailable):
        master.reconciler.reconcile()
    master.reconciler.reconcile()  # the store is back: a full timeout to be heard again
    assert master.registry.get(agent.id) is not None
    clock.advance(master.settings.heartbeat_timeout_sec + 1)
    master.reconciler.reconcile()
    assert master.registry.get(agent.id) is None  # still silent: lost now


def test_timers_a_refused_pass_acted_on_are_acted_on_later(master, agent, faults, clock):
    job = master.submit_job(batch(1))
    master.scheduling.run_round(force=True)  # Launched, never started
    task = next(iter(job.tasks.values()))
    clock.advance(master.settings.launched_timeout_sec + 1)
    agent.heartbeat()  # the agent is alive; only the timer is due
    with faults.on("readonly"), pytest.raises(StoreUnavailable):
        master.reconciler.reconcile()
    assert task.state == S.LAUNCHED
    assert task.id in {tid for _, tid, _, _ in memory(master)["timers"]}  # armed again
    master.reconciler.reconcile()
    assert task.state == S.FINISHED and task.reason_code == S.STUCK_IN_STATE


# ------------------------------------------------------------------------------ scheduling
def test_the_loop_backs_off_while_the_store_fails_and_resumes_by_itself(settings, tmp_path):
    settings = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'l.db'}",
                                           "schedule_interval_sec": 0.01,
                                           "reconcile_interval_sec": 0.05})
    master = make_master(settings, time.time)
    faults = StoreFaults(master.store)
    agent = ScriptedAgent(master, hosts=3)
    agent.register()
    jobs = [master.submit_job(batch(3)) for _ in range(3)]
    loop = master.loop()
    try:
        with faults.on("locked"):
            loop.start()
            wait_until(lambda: loop.pause >= 0.04, what="the loop to back off")
            assert loop.is_alive() and loop.store_failing
            assert all(t.state == S.ACCEPTED for j in jobs for t in j.tasks.values())
            assert not master.registry.get(agent.id).orders
            assert not any(v for usage in memory(master)["hosts"].values()
                           for v in usage.values())  # the engine holds nothing
        wait_until(lambda: all(t.state == S.LAUNCHED for j in jobs for t in j.tasks.values()),
                   what="every task to be placed")
        assert loop.is_alive() and loop.pause == 0 and not loop.store_failing
        assert len(master.registry.get(agent.id).orders) == 9
    finally:
        loop.stop()
        master.store.close()


def test_a_round_the_store_refuses_gives_the_engine_back_what_it_placed(master, agent, faults):
    job = master.submit_job(batch(4))
    before = memory(master)
    with faults.on("readonly"), pytest.raises(StoreUnavailable):
        master.scheduling.run_round(force=True)
    assert memory(master) == before
    assert master.scheduling.run_round(force=True) == 4
    assert all(t.state == S.LAUNCHED for t in job.tasks.values())


# ------------------------------------------------------------------------------ REST
@pytest.fixture
def cluster(master, agent):
    """A master with a capacity group, a running batch job, a service job, an agent."""
    from titus.master.capacity import CapacityGroup

    master.put_capacity_group(CapacityGroup("g", "Flex", {}, limit={"cpus": 100.0}))
    batch_job = running(master, agent, size=2)
    svc = master.submit_job(service(2))
    master.scheduling.run_round(force=True)
    agent.start_launched()
    return {"job": batch_job.id, "task": min(batch_job.tasks), "service": svc.id}


GROUP = {"name": "g2", "tier": "Critical", "resources": {"cpu": 4}}
MUTATIONS = {
    "submit": ("POST", "/api/v3/jobs", {
        "applicationName": "a", "container": {"image": {"name": "busybox"}},
        "batch": {"size": 3}}),
    "kill job": ("DELETE", "/api/v3/jobs/{job}", None),
    "resize": ("PUT", "/api/v3/jobs/{service}/instances", {"min": 0, "desired": 4, "max": 10}),
    "kill task": ("DELETE", "/api/v3/tasks/{task}", None),
    "create group": ("POST", "/api/v3/capacityGroups", GROUP),
    "replace group": ("PUT", "/api/v3/capacityGroups/g", {**GROUP, "name": "g"}),
    "delete group": ("DELETE", "/api/v3/capacityGroups/g", None),
    "register": ("POST", "/api/v3/agents/register", {
        "agent_id": "agent-2", "hosts": [{"host_id": "h2", "cpus": 4, "memory_mb": 8192}]}),
    "heartbeat": ("POST", "/api/v3/agents/agent-1/heartbeat", {
        "statuses": [{"task_id": "{task}", "state": "Finished", "exit_code": 0}],
        "running": [], "wait_ms": 0}),
    "deregister": ("DELETE", "/api/v3/agents/agent-1", None),
    "instance group": ("POST", "/api/v3/instanceGroups", {
        "name": "ig", "instance_type": {"name": "m5.xlarge", "cpus": 4, "memory_mb": 16384},
        "zones": ["a"], "min_size": 0, "max_size": 2}),
}


def _filled(value, ids):
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    return value


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_every_rest_mutation_answers_503_and_changes_nothing_during_an_outage(
        master, cluster, faults, heard, name, monkeypatch):
    monkeypatch.delenv("TITUS_AUTOSCALE_PROVIDER", raising=False)
    method, path, body = MUTATIONS[name]
    path, body = _filled(path, cluster), _filled(body, cluster)
    if name == "heartbeat":
        host = master.tasks[cluster["task"]].host_id
        body["statuses"][0]["host_id"] = host
    with TestClient(create_app(master=master, start_loop=False)) as client:
        service = client.app.state.autoscale
        groups = sorted(g.name for g in service.groups)
        before, on_disk, events = memory(master), stored(master.store), len(heard)
        with faults.on("down"):
            r = client.request(method, path, json=body)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert set(r.json()) == {"error", "problems"}
            assert r.json()["problems"][0]["field"] == "(store)"
            assert memory(master) == before and len(heard) == events
            assert sorted(g.name for g in service.groups) == groups
        assert stored(master.store) == on_disk
        r = client.request(method, path, json=body)  # the same request, the store back
        assert r.status_code < 300, r.text


# ------------------------------------------------------------------------------ health
def test_readiness_follows_the_store_and_liveness_always_answers(master, faults):
    with TestClient(create_app(master=master, start_loop=True)) as client:
        assert client.get("/health/ready").json()["status"] == "ready"
        for kind in ("readonly", "down"):  # reads work on a read-only file: not enough
            with faults.on(kind):
                ready = client.get("/health/ready")
                assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
                assert set(ready.json()) == {"error", "problems"}
                live = client.get("/health")
                assert live.status_code == 200 and live.json()["status"] == "ok"
                assert live.json()["store"]["writable"] is False
            ready = client.get("/health/ready")
            assert ready.status_code == 200 and ready.json()["store"]["writable"] is True
        # the loop leaves its back-off at its next attempt (it may be pausing up to 5 s)
        wait_until(lambda: client.get("/health").json()["loop"] == "running",
                   what="the loop to run again")


def test_readiness_fails_when_the_loop_has_stopped(master):
    with TestClient(create_app(master=master, start_loop=True)) as client:
        client.app.state.loop.stop()
        r = client.get("/health/ready")
        assert r.status_code == 503 and r.json()["problems"][0]["field"] == "(loop)"
        assert client.get("/health").json()["loop"] == "stopped"


# ------------------------------------------------------------------------------ end to end
def test_a_real_agent_loses_no_report_across_an_outage(settings, tmp_path):
    """A sim agent over HTTP: its task finishes while the store is down; the Finished report
    is refused (503), kept, sent again, and applied once the store is back; the agent never
    registers again and the master never loses it."""
    settings = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'e.db'}",
                                           "schedule_interval_sec": 0.02,
                                           "reconcile_interval_sec": 0.1,
                                           "heartbeat_interval_sec": 0.05})
    master = make_master(settings, time.time)
    faults = StoreFaults(master.store)
    with TestClient(create_app(master=master, start_loop=True)) as client:
        config = AgentConfig(master_url="http://testserver", agent_id="sim-1", hosts=1,
                             heartbeat_interval_sec=0.05, max_backoff_sec=0.2)
        agent = Agent(config, SimRuntime(), client=client)
        agent.start()
        try:
            r = client.post("/api/v3/jobs", json={
                "applicationName": "e2e", "container": {
                    "image": {"name": "sim"}, "env": {"TITUS_SIM_DURATION_SEC": "2.5"}},
                "batch": {"size": 1}})
            job_id = r.json()["id"]
            wait_until(lambda: task_state(client, job_id) == "Started", what="the task to start")
            with faults.on("down"):
                wait_until(lambda: agent.stats["master_busy"] >= 2 and agent.pending_count(),
                           what="the Finished report to be refused")
                assert client.get("/health/ready").status_code == 503
                assert task_state(client, job_id) == "Started"
            wait_until(lambda: client.get(f"/api/v3/jobs/{job_id}").json()["status"]["state"]
                       == "Finished", what="the job to finish")
            assert task_state(client, job_id) == "Finished"
            assert agent.stats["registrations"] == 1 and agent.pending_count() == 0
            assert client.get("/health/ready").status_code == 200
        finally:
            agent.stop()
    master.store.close()


def task_state(client, job_id):
    items = client.get("/api/v3/tasks", params={"jobId": job_id}).json()["items"]
    return items[0]["status"]["state"] if items else None




# ------------------------------------------------------------------------------ PostgreSQL
def _postgres_url() -> str:
    """The test database, only when named: it may be shared, so it is never guessed."""
    if not os.environ.get("TITUS_TEST_POSTGRES_URL"):
        if os.environ.get("TITUS_REQUIRE_POSTGRES") == "1":
            pytest.fail("TITUS_REQUIRE_POSTGRES=1 but TITUS_TEST_POSTGRES_URL is not set")
        pytest.skip("TITUS_TEST_POSTGRES_URL is not set")
    from tests.master.conftest import postgres_empty

    return postgres_empty()


def _terminate(url: str, application: str) -> int:
    """End, on the server, every connection of ``application``; how many there were."""
    from sqlalchemy import create_engine, text

    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :app AND pid <> pg_backend_pid()"),
                {"app": application}).all())
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_postgres_connections_terminated_by_the_server(settings, clock):
    from sqlalchemy.engine import make_url

    base = _postgres_url()
    application = f"titus-failures-{os.getpid()}"
    url = make_url(base).update_query_dict({"application_name": application}) \
        .render_as_string(hide_password=False)
    master = make_master(settings.model_copy(update={"store_url": url}), clock)
    try:
        master.submit_job(batch(2))
        assert _terminate(base, application) >= 1  # idle pooled connections die
        job = master.submit_job(batch(2))  # the pool checks before use: the write goes through
        assert job.id in {r["id"] for r in master.store.load_jobs()}
        # killed in the middle of a transaction: refused, nothing kept, the next one works
        before = memory(master)
        with pytest.raises(StoreUnavailable) as failure, master.ledger.transaction() as tx:
            tx.event(clock(), "probe")
            _terminate(base, application)
            tx.event(clock(), "probe")
        assert is_outage(failure.value.__cause__)  # the driver's error, kept
        assert memory(master) == before
        assert not [e for e in master.store.events(limit=10**6) if e["kind"] == "probe"]
        master.submit_job(batch(1))
        master.ledger.check_writable()
        assert master.store.health.writable
    finally:
        master.store.close()
