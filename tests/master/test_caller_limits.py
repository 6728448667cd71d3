"""Limits per caller: submissions per second (a token bucket) and concurrent event streams."""
from __future__ import annotations

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
