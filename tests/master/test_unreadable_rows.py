"""Whatever an older release stored, every read path still answers: a row that cannot be read
back or served is reported and skipped (left in the store), never a 500 for a whole listing."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from titus.autoscale import persist as autoscale_persist
from titus.master import store_schema as S
from titus.master.config import MasterSettings
from titus.master.store import Store

from tests.master.live import LiveMaster

GOOD = {"applicationName": "good", "container": {"image": {"name": "busybox"}},
        "batch": {"size": 1}}


def job_row(job_id: str, seq: int, descriptor: str) -> dict:
    return {"id": job_id, "seq": seq, "state": "Accepted", "reason_code": "",
            "reason_message": "", "descriptor": descriptor, "accepted_at": 1.0,
            "kill_initiated_at": None, "finished_at": None}


def task_row(task_id: str, job_id: str, seq: int, **extra) -> dict:
    row = {}
    row.update({"seq": seq, "id": task_id, "job_id": job_id, "idx": 0, "state": "Accepted",
                "reason_code": "", "reason_message": "", "kill_reason": "", "host_id": "",
                "agent_id": "", "ports": "", "resubmit_of": "", "resubmit_number": 0,
                "system_resubmit_number": 0, "retry_at": 0.0, "accepted_at": 1.0})
    row.update(extra)
    return row


BAD_DESCRIPTORS = {
    "surrogate": json.dumps({**GOOD, "applicationName": "x\ud800"}),  # escaped as \ud800
    "surrogate-extra": json.dumps({**GOOD, "note": "\udfff"}),
    "nan": json.dumps({**GOOD, "container": {"resources": {"cpu": float("nan")}}}),
    "not-json": "{",
    "wrong-shape": json.dumps({**GOOD, "batch": {"size": "lots"}}),
}


@pytest.fixture
def poisoned(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(insert(S.jobs), [job_row("good", 1, json.dumps(GOOD))])
        conn.execute(insert(S.tasks), [task_row("good-t0", "good", 1)])
        for i, (name, text) in enumerate(BAD_DESCRIPTORS.items(), start=2):
            conn.execute(insert(S.jobs), [job_row(name, i, text)])
            conn.execute(insert(S.tasks), [task_row(f"{name}-t0", name, 10 + i)])
        # SQLite keeps inf (NaN would be NULL): a value no strict JSON client can read
        conn.execute(insert(S.tasks), [task_row("bad-task", "good", 50, retry_at=float("inf"))])
        conn.execute(insert(S.tasks), [task_row("bogus-state", "good", 51, state="Bogus"),
                                       task_row("bad-ports", "good", 52, ports="x,y")])
        # archived: a bad descriptor, and a task whose time no client can read
        conn.execute(insert(S.archive_jobs), [job_row("old-bad", 100, "{bad json"),
                                              job_row("old-null", 101, "null"),
                                              {**job_row("old-good", 102, json.dumps(GOOD)),
                                               "state": "Finished"}])
        conn.execute(insert(S.archive_tasks), [
            task_row("old-t0", "old-good", 200, state="Finished", finished_at=float("inf")),
            task_row("old-t1", "old-good", 201, state="Finished", finished_at=2.0)])
        conn.execute(insert(autoscale_persist.instance_groups), [{"name": "igbad",
                                                                   "spec": "{bad"}])
        conn.execute(insert(autoscale_persist.autoscale_rules), [
            {"group_name": "igrace", "spec": '{"group":"igrace","min_idle":NaN}'}])
        conn.execute(insert(S.capacity_groups), [
            {"name": "inf", "tier": "Flex",
             "spec": json.dumps({"name": "inf", "tier": "Flex", "resources": {"cpu": float("inf")}})},
            {"name": "ok", "tier": "Flex",
             "spec": json.dumps({"name": "ok", "tier": "Flex", "resources": {"cpu": 2}})}])
        conn.execute(insert(S.agents), [{"id": "old-agent", "runtime": "sim", "address": "",
                                         "hosts": "not json", "registered_at": 1.0,
                                         "last_seen": 1.0}])
    store.close()
    return url


def test_a_restart_on_a_poisoned_store_serves_every_listing(poisoned):
    with LiveMaster(MasterSettings(store_url=poisoned)) as live:
        for path in ["/api/v3/jobs", "/api/v3/tasks", "/api/v3/hosts", "/api/v3/agents",
                     "/api/v3/capacityGroups", "/health", "/api/v3/jobs/good"]:
            r = live.http.get(path)
            assert r.status_code == 200, (path, r.text[:300])
        jobs = [j["id"] for j in live.http.get("/api/v3/jobs").json()["items"]]
        assert jobs == ["good"]
        groups = {g["name"] for g in live.http.get("/api/v3/capacityGroups").json()["items"]}
        assert "ok" in groups and "inf" not in groups
        skipped = {(s["kind"], s["id"].strip("'")) for s in live.master.state.skipped.rows}
        assert {("job", name) for name in BAD_DESCRIPTORS} <= skipped
        assert ("capacity group", "inf") in skipped and ("agent", "old-agent") in skipped
        assert {("task", "bad-task"), ("task", "bogus-state"), ("task", "bad-ports")} <= skipped
        finished = live.http.get("/api/v3/jobs", params={"jobState": "Finished"})
        assert finished.status_code == 200
        assert [j["id"] for j in finished.json()["items"]] == ["old-good"]
        old = live.http.get("/api/v3/tasks", params={"jobId": "old-good"})
        assert old.status_code == 200 and [t["id"] for t in old.json()["items"]] == ["old-t1"]
        assert live.http.get("/api/v3/tasks/old-t0").status_code == 404
        assert live.http.get("/api/v3/jobs/old-bad").status_code == 404
        assert live.http.get("/api/v3/instanceGroups").status_code == 200
        assert "titus_store_skipped_rows" in live.http.get("/metrics").text
        # skipped rows are left for an operator, not deleted
        assert len(live.master.store.load_jobs()) == 1 + len(BAD_DESCRIPTORS)


def test_a_job_the_store_could_not_have_taken_is_served_sanitised():
    from titus.master.api.errors import SafeJSONResponse

    body = SafeJSONResponse({"items": [{"name": "x\ud800", "cpu": float("nan")}]}).body
    assert json.loads(body) == {"items": [{"name": "x\ufffd", "cpu": None}]}
