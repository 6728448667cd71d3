"""The store on SQLite and PostgreSQL: rows in, rows out, batched updates, the archive."""
import time

import pytest

from titus.master.records import JobRecord, TaskRecord
from titus.master.store import Store
from titus.master.validation import parse_job


def job(seq=1):
    d = parse_job({"applicationName": "a", "container": {"image": {"name": "x"}},
                   "batch": {"size": 3, "runtimeLimitSec": "60"}, "someTitusField": {"k": 1}})
    return JobRecord(id=f"job-{seq}", seq=seq, descriptor=d, accepted_at=1.0)


def tasks(j, n, start=0):
    return [TaskRecord(id=f"{j.id}-t{i}", job_id=j.id, seq=start + i + 1, idx=i, accepted_at=1.0)
            for i in range(n)]


def test_sqlite_uses_wal(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'w.db'}")
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    s.close()


def test_round_trip_update_and_archive(store):
    j = job()
    ts = tasks(j, 3)
    with store.transaction() as tx:
        tx.insert_job(j.row())
        tx.insert_tasks([t.row() for t in ts])
    with store.transaction() as tx:
        tx.update_tasks([{"seq": ts[0].seq, "state": "Launched", "launched_at": 2.0,
                          "host_id": "h1", "agent_id": "a1", "ports": "31000"},
                         {"seq": ts[1].seq, "state": "Launched", "launched_at": 2.0,
                          "host_id": "h2", "agent_id": "a1", "ports": ""},
                         {"seq": ts[2].seq, "state": "Finished", "reason_code": "killed",
                          "finished_at": 3.0}])
        tx.event(3.0, "test", j.id, {"x": 1})
    loaded = {r["id"]: TaskRecord.from_row(r) for r in store.load_tasks()}
    assert loaded[ts[0].id].state == "Launched" and loaded[ts[0].id].port_list == [31000]
    assert loaded[ts[2].id].reason_code == "killed"
    back = JobRecord.from_row(store.load_jobs()[0])
    assert back.descriptor.wire()["someTitusField"] == {"k": 1}
    assert back.descriptor.wire()["batch"]["runtimeLimitSec"] == "60"
    with store.transaction() as tx:
        tx.update_job(j.id, {"state": "Finished", "finished_at": 4.0, "reason_code": "normal"})
        tx.archive_job(j.id)
    assert store.load_jobs() == [] and store.load_tasks() == []
    assert store.archived_job(j.id)["state"] == "Finished"
    assert len(store.archived_tasks(j.id)) == 3
    assert store.archived_task(ts[0].id)["host_id"] == "h1"
    assert store.max_seq() == (1, 3)
    assert store.events()[0]["kind"] == "test"


def test_failed_transaction_leaves_nothing(store):
    j = job()
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.insert_job(j.row())
            raise RuntimeError("boom")
    assert store.load_jobs() == []


def test_agents_and_capacity_groups_upsert(store):
    row = {"id": "a1", "runtime": "sim", "address": "", "hosts": "[]", "registered_at": 1.0,
           "last_seen": 1.0}
    with store.transaction() as tx:
        tx.upsert_agent(row)
        tx.upsert_agent({**row, "address": "http://x"})
        tx.touch_agents({"a1": 9.0})
        tx.upsert_capacity_group("g", "Flex", {"name": "g"})
        tx.upsert_capacity_group("g", "Critical", {"name": "g", "tier": "Critical"})
    agents = store.load_agents()
    assert len(agents) == 1 and agents[0]["address"] == "http://x" and agents[0]["last_seen"] == 9.0
    groups = store.load_capacity_groups()
    assert len(groups) == 1 and groups[0]["tier"] == "Critical"
    with store.transaction() as tx:
        tx.delete_agent("a1")
        tx.delete_capacity_group("g")
    assert store.load_agents() == [] and store.load_capacity_groups() == []


def test_batched_writes_are_fast(store):
    """20,000 task inserts and state updates, one transaction each (prints the rate)."""
    j = job()
    ts = tasks(j, 20_000)
    started = time.perf_counter()
    with store.transaction() as tx:
        tx.insert_job(j.row())
        tx.insert_tasks([t.row() for t in ts])
    with store.transaction() as tx:
        tx.update_tasks([{"seq": t.seq, "state": "Launched", "launched_at": 2.0, "host_id": "h",
                          "agent_id": "a", "ports": ""} for t in ts])
    elapsed = time.perf_counter() - started
    print(f"{store.dialect}: 40,000 row writes in {elapsed:.2f}s ({40_000 / elapsed:,.0f}/s)")
    assert len(store.load_tasks()) == 20_000
