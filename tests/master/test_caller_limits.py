"""Limits per caller: submissions per second (a token bucket) and concurrent event streams."""
from __future__ import annotations

import time

import pytest
from fastapi import HTTPException

from titus.master.api.security import StreamCap, SubmitRate
from titus.master.auth import TokenBook, digest, load_token_file, startup_problem
from titus.master.config import MasterSettings

from tests.master.live import LiveMaster

JOB = {"applicationName": "b", "container": {"image": {"name": "busybox"}}, "batch": {"size": 1}}


def test_the_bucket_allows_a_burst_then_the_rate():
    bucket = SubmitRate(rate=2.0, burst=3)
    for _ in range(3):
        bucket.take("alice", now=0.0)
    with pytest.raises(HTTPException) as refused:
        bucket.take("alice", now=0.0)
    assert refused.value.status_code == 429 and refused.value.headers["Retry-After"] == "1"
    bucket.take("bob", now=0.0)  # per principal
    bucket.take("alice", now=0.5)  # one more after half a second at 2/s
    with pytest.raises(HTTPException):
        bucket.take("alice", now=0.5)
    SubmitRate(rate=0, burst=1).take("alice")  # off


def test_the_stream_cap_counts_per_principal():
    cap = StreamCap(2)
    cap.open("a"), cap.open("a"), cap.open("b")
    with pytest.raises(HTTPException) as refused:
        cap.open("a")
    assert refused.value.status_code == 429
    cap.close("a")
    cap.open("a")


def test_submissions_over_the_rate_are_429_in_the_error_shape(tmp_path):
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}", user_tokens=["t"],
                              agent_token="a", submit_rate_per_sec=0.01, submit_burst=2)
    with LiveMaster(settings) as live:
        auth = {"Authorization": "Bearer t"}
        codes = [live.http.post("/api/v3/jobs", json=JOB, headers=auth).status_code
                 for _ in range(3)]
        assert codes == [202, 202, 429]
        r = live.http.post("/api/v3/jobs", json=JOB, headers=auth)
        assert r.headers["retry-after"] and r.json()["error"].startswith("more than")
        assert len(live.master.jobs) == 2


def test_observe_streams_over_the_cap_are_429(tmp_path):
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}", user_tokens=["t"],
                              agent_token="a", max_observe_streams=1)
    with LiveMaster(settings) as live:
        auth = {"Authorization": "Bearer t"}
        with live.http.stream("GET", "/api/v3/observe", headers=auth) as first:
            assert first.status_code == 200
            lines = first.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines) == "event: snapshotEnd"
            second = live.http.get("/api/v3/observe", headers=auth,
                                   params={"snapshotOnly": "true"})
            assert second.status_code == 429
        anonymous = live.http.get("/api/v3/observe", params={"snapshotOnly": "true"})
        assert anonymous.status_code == 401


def test_token_file_errors_name_the_entry(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n  - name: alice\n    sha256: nothex\n    scopes: [user]\n")
    with pytest.raises(ValueError, match=r"tokens\[0\]\.sha256"):
        load_token_file(str(path))
    path.write_text(f"tokens:\n  - name: alice\n    sha256: {digest('x')}\n    scopes: [root]\n")
    with pytest.raises(ValueError, match=r"tokens\[0\]\.scopes"):
        load_token_file(str(path))


def test_a_token_is_found_by_digest_only():
    book = TokenBook.from_settings(["u1", "u2"], "boot", None)
    assert book.lookup("u2").name == "user-2" and book.lookup("u2").can("read")
    assert book.lookup("boot").is_bootstrap and not book.lookup("boot").can("read")
    assert book.lookup("u") is None and book.lookup("") is None and book.lookup(None) is None
    assert all(len(e.sha256) == 64 for e in book.entries)  # no token kept in clear


def test_a_master_needs_tokens_or_insecure():
    assert "insecure" in startup_problem(TokenBook(), insecure=False)
    assert startup_problem(TokenBook(), insecure=True) is None
    users_only = TokenBook.from_settings(["u"], None, None)
    assert "agent" in startup_problem(users_only, insecure=False)
    assert startup_problem(TokenBook.from_settings(["u"], "a", None), insecure=False) is None


def test_task_log_streams_hold_no_admission_slot_and_are_capped_per_caller(tmp_path):
    """A log read (``follow=true``, or an agent that answers slowly) lasts as long as its
    agent streams: counted by admission, a reader with a few open streams took every slot and
    every other caller got 429. Log streams are capped per caller instead, as observe streams
    are."""
    import asyncio

    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    from tests.tls_certs import serve_app

    agent = FastAPI()

    @agent.get("/tasks/{task_id}/logs")
    async def logs(task_id: str):
        async def lines():
            while True:  # a follow that never ends
                yield f"{task_id} is running\n".encode()
                await asyncio.sleep(0.05)
        return StreamingResponse(lines(), media_type="text/plain")

    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}", insecure=True,
                              max_inflight_requests=1, admission_queue=0,
                              admission_wait_sec=0.0, max_observe_streams=1)
    with serve_app(agent) as url, LiveMaster(settings) as live:
        r = live.http.post("/api/v3/agents/register", json={
            "agent_id": "a1", "address": url,
            "hosts": [{"host_id": "h1", "cpus": 4, "memory_mb": 4096}]})
        assert r.status_code == 200, r.text
        assert live.http.post("/api/v3/jobs", json=JOB).status_code == 202
        live.master.scheduling.run_round(force=True)
        (task_id,) = list(live.master.tasks)
        path = f"/api/v3/tasks/{task_id}/logs"
        with live.http.stream("GET", path, params={"follow": "true"}) as first:
            assert first.status_code == 200
            lines = first.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines) == f"{task_id} is running"
            # the open stream holds no slot: other requests are admitted
            assert live.http.get("/api/v3/jobs").status_code == 200
            second = live.http.get(path)
            assert second.status_code == 429
            assert second.json()["problems"] is not None
        deadline = time.monotonic() + 10
        while live.app.state.log_streams.count("anonymous"):  # the relay ends once closed
            assert time.monotonic() < deadline, "the closed stream was not counted out"
            time.sleep(0.05)
        with live.http.stream("GET", path) as again:
            assert again.status_code == 200
