"""A client that sends a mutation twice (it did not see the first answer) gets the same end
state, through the real HTTP server; job submission takes an ``Idempotency-Key``."""
from __future__ import annotations

import pytest

from titus import states
from titus.master.auth import digest
from titus.master.config import MasterSettings

from tests.master.conftest import ScriptedAgent
from tests.master.live import LiveMaster

SERVICE = {"applicationName": "svc", "owner": {"teamEmail": "me@example.com"},
           "container": {"image": {"name": "busybox"}, "resources": {"cpu": 1, "memoryMB": 128}},
           "service": {"capacity": {"min": 1, "desired": 3, "max": 5}}}
BATCH = {"applicationName": "b", "container": {"image": {"name": "busybox"}},
         "batch": {"size": 2}}


@pytest.fixture
def live(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - name: admin\n    sha256: {digest('admin-token')}\n"
                      f"    scopes: [admin]\n")
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}",
                              user_tokens=["alice-token", "bob-token"], token_file=str(tokens))
    with LiveMaster(settings) as lm:
        lm.http.headers["Authorization"] = "Bearer alice-token"
        yield lm


def running_service(live) -> tuple[str, ScriptedAgent]:
    job_id = live.http.post("/api/v3/jobs", json=SERVICE).json()["id"]
    agent = ScriptedAgent(live.master, hosts=3)
    agent.register()
    live.master.scheduling.run_round(force=True)
    agent.start_launched()
    return job_id, agent


def capacity(live, job_id) -> dict:
    return live.http.get(f"/api/v3/jobs/{job_id}").json()["jobDescriptor"]["service"]["capacity"]


def live_tasks(live, job_id) -> list[dict]:
    items = live.http.get("/api/v3/tasks", params={"jobId": job_id}).json()["items"]
    return [t for t in items if t["status"]["state"] != states.FINISHED]


def test_a_retried_shrink_kills_one_task_and_lowers_desired_once(live):
    job_id, agent = running_service(live)
    victim = live_tasks(live, job_id)[0]["id"]
    first = live.http.delete(f"/api/v3/tasks/{victim}", params={"shrink": "true"})
    again = live.http.delete(f"/api/v3/tasks/{victim}", params={"shrink": "true"})
    assert first.status_code == 200
    assert again.status_code in (200, 409)
    assert capacity(live, job_id)["desired"] == 2
    agent.start_launched()  # the agent ends the killed task
    again = live.http.delete(f"/api/v3/tasks/{victim}", params={"shrink": "true"})
    assert again.status_code == 409 and again.json()["problems"]
    assert capacity(live, job_id) == {"min": 1, "desired": 2, "max": 5}
    live.master.reconciler.reconcile()
    assert len(live_tasks(live, job_id)) == 2  # one killed, none replaced


def test_shrink_at_the_minimum_is_refused_naming_min(live):
    job_id, _ = running_service(live)
    live.http.put(f"/api/v3/jobs/{job_id}/instances", json={"min": 3})
    victim = live_tasks(live, job_id)[0]["id"]
    r = live.http.delete(f"/api/v3/tasks/{victim}", params={"shrink": "true"})
    assert r.status_code == 409
    assert r.json()["problems"][0]["field"] == "service.capacity.min"
    assert capacity(live, job_id) == {"min": 3, "desired": 3, "max": 5}
    assert live_tasks(live, job_id)[0]["status"]["state"] == states.STARTED  # not killed


def test_kill_job_and_resize_twice_give_the_same_end_state(live):
    job_id, _ = running_service(live)
    for _ in range(2):
        r = live.http.put(f"/api/v3/jobs/{job_id}/instances", json={"desired": 4})
        assert r.status_code == 200
    assert capacity(live, job_id)["desired"] == 4
    live.master.reconciler.reconcile()
    assert len(live_tasks(live, job_id)) == 4
    first = live.http.delete(f"/api/v3/jobs/{job_id}")
    again = live.http.delete(f"/api/v3/jobs/{job_id}")
    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == again.json()["status"]


def test_a_kill_retried_after_the_job_finished_is_a_documented_409(live):
    job_id = live.http.post("/api/v3/jobs", json=BATCH).json()["id"]
    assert live.http.delete(f"/api/v3/jobs/{job_id}").status_code == 200  # nothing placed yet
    again = live.http.delete(f"/api/v3/jobs/{job_id}")
    assert again.status_code == 409 and again.json()["problems"][0]["field"] == "(state)"
    doc = live.app.openapi()["paths"]["/api/v3/jobs/{job_id}"]["delete"]["responses"]
    assert "409" in doc
    # another user's finished job is 403 as a live one is, not 409
    bob = {"Authorization": "Bearer bob-token"}
    assert live.http.delete(f"/api/v3/jobs/{job_id}", headers=bob).status_code == 403
    assert live.http.put(f"/api/v3/jobs/{job_id}/instances", json={"desired": 1},
                         headers=bob).status_code == 403


def test_capacity_group_put_twice_is_one_group(live):
    group = {"tier": "Critical", "resources": {"cpu": 8, "memoryMB": 1024}}
    assert live.http.put("/api/v3/capacityGroups/g1", json=group).status_code == 403  # a user
    for _ in range(2):
        r = live.http.put("/api/v3/capacityGroups/g1", json=group,
                          headers={"Authorization": "Bearer admin-token"})
        assert r.status_code == 200
    names = [g["name"] for g in live.http.get("/api/v3/capacityGroups").json()["items"]]
    assert names.count("g1") == 1


def test_an_idempotency_key_makes_one_job_also_after_a_restart(live):
    key = {"Idempotency-Key": "submit-42"}
    first = live.http.post("/api/v3/jobs", json=BATCH, headers=key)
    # the same body written differently (key order, spaces) is the same body
    again = live.http.post("/api/v3/jobs", headers={**key, "content-type": "application/json"},
                           content=b'{ "batch": {"size": 2}, "container": {"image": {"name": '
                                   b'"busybox"}}, "applicationName": "b" }')
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert len(live.master.jobs) == 1
    live.restart()
    live.http.headers["Authorization"] = "Bearer alice-token"
    after = live.http.post("/api/v3/jobs", json=BATCH, headers=key)
    assert after.json()["id"] == first.json()["id"] and len(live.master.jobs) == 1


def test_the_same_key_with_another_body_is_422(live):
    key = {"Idempotency-Key": "submit-43"}
    first = live.http.post("/api/v3/jobs", json=BATCH, headers=key)
    other = live.http.post("/api/v3/jobs", json={**BATCH, "applicationName": "c"}, headers=key)
    assert other.status_code == 422
    body = other.json()
    assert body["problems"][0]["field"] == "Idempotency-Key"
    assert first.json()["id"] in body["error"] and len(live.master.jobs) == 1


def test_keys_are_scoped_to_the_caller(live):
    key = {"Idempotency-Key": "same-key"}
    alice = live.http.post("/api/v3/jobs", json=BATCH, headers=key).json()["id"]
    bob = live.http.post("/api/v3/jobs", json=BATCH,
                         headers={**key, "Authorization": "Bearer bob-token"}).json()["id"]
    assert alice != bob and len(live.master.jobs) == 2


@pytest.mark.parametrize("bad", ["", "two words", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_400(live, bad):
    r = live.http.post("/api/v3/jobs", json=BATCH,
                       headers={"Idempotency-Key": bad.encode("utf-8")})
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "Idempotency-Key"
    assert not live.master.jobs


def test_keys_are_forgotten_after_their_time(tmp_path):
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}",
                              idempotency_keep_sec=0.5, events_trim_interval_sec=0.0)
    with LiveMaster(settings) as live:
        key = {"Idempotency-Key": "short-lived"}
        first = live.http.post("/api/v3/jobs", json=BATCH, headers=key).json()["id"]
        import time
        time.sleep(0.6)
        live.master.reconciler.reconcile()
        assert not live.master.state.idempotency
        second = live.http.post("/api/v3/jobs", json=BATCH, headers=key).json()["id"]
        assert second != first


def test_a_missing_token_is_401_in_the_one_error_shape(live):
    r = live.http.post("/api/v3/jobs", json=BATCH, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    body = r.json()
    assert isinstance(body["error"], str) and body["problems"] == []
    assert not live.master.jobs
