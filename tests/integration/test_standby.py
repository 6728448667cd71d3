"""Two ``titus master`` processes on one PostgreSQL store: one leads, one stands by.

The standby serves reads with their staleness, forwards writes with the caller's credentials
and sends agents to the leader; a leader killed with ``kill -9`` is replaced within about a
lease, and nothing is lost or run twice; a leader stopped past its lease is fenced when it
wakes and stands by. One master per SQLite file."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.integration.conftest import FAST_MASTER_ENV, _postgres_schema
from tests.integration.platform import Platform, batch_job, reason, state
from titus.cli.local_cluster import titus_command

LEASE_SEC = 2
ENV = {**FAST_MASTER_ENV, "TITUS_LEASE_SEC": str(LEASE_SEC),
       "TITUS_STANDBY_REFRESH_SEC": "0.3", "TITUS_HEARTBEAT_TIMEOUT_SEC": "5"}
pytestmark = pytest.mark.postgres


class Pair:
    """Masters ``a`` and ``b`` on one store, with the same tokens."""

    def __init__(self, tmp_path, url: str):
        self.a = Platform(tmp_path / "a", store_url=url, master_env=ENV)
        self.b = Platform(tmp_path / "b", store_url=url, token=self.a.token,
                          agent_token=self.a.agent_token, master_env=ENV)
        self.url = url

    def both(self):
        return (self.a, self.b)

    def urls(self) -> tuple[str, str]:
        return self.a.url, self.b.url

    def health(self, plat: Platform) -> dict:
        return httpx.get(f"{plat.url}/health", timeout=5).json()

    def leader(self):
        for plat in self.both():
            try:
                if self.health(plat)["role"] == "leader":
                    return plat
            except httpx.HTTPError:
                continue
        return None

    def epochs(self) -> list[tuple]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(
                    "SELECT epoch, holder, url FROM leader_epochs ORDER BY epoch"))]
        finally:
            engine.dispose()


@pytest.fixture
def pair(tmp_path):
    with _postgres_schema() as url:
        pair = Pair(tmp_path, url)
        with pair.a, pair.b:
            pair.a.start_master()
            pair.a.wait_for(lambda: pair.health(pair.a)["role"] == "leader", 20, "a to lead")
            pair.b.start_master()
            yield pair


def test_the_standby_serves_reads_forwards_writes_and_sends_agents_away(pair):
    a, b = pair.a, pair.b
    hb = pair.health(b)
    assert (hb["role"], hb["leader"], hb["epoch"]) == ("standby", a.url, 1)
    # a write sent to the standby reaches the leader with the caller's own token
    key = {"Idempotency-Key": "sub-1"}
    first = b.api.post("/api/v3/jobs", json=batch_job(1, name="via-standby"), headers=key)
    assert first.status_code == 202, first.text
    job_id = first.json()["id"]
    assert a.api.get(f"/api/v3/jobs/{job_id}").status_code == 200
    # the same key through the leader: the same job, not a second one
    again = a.api.post("/api/v3/jobs", json=batch_job(1, name="via-standby"), headers=key)
    assert again.json()["id"] == job_id
    # no token: the leader refuses it, the standby passes the refusal back
    anonymous = httpx.post(f"{b.url}/api/v3/jobs", json=batch_job(1), timeout=10)
    assert anonymous.status_code == 401
    # reads: served by the standby from its copy, saying how stale it may be
    seen = b.wait_for(lambda: b.api.get(f"/api/v3/jobs/{job_id}").status_code == 200, 10,
                      "the standby to see the job")
    assert seen
    read = b.api.get("/api/v3/jobs")
    assert read.headers["X-Titus-Role"] == "standby"
    assert 0 <= int(read.headers["X-Titus-Staleness-Ms"]) < 10_000
    assert a.api.get("/api/v3/jobs").headers["X-Titus-Staleness-Ms"] == "0"
    # agents are sent to the leader
    boot = {"Authorization": f"Bearer {a.agent_token}"}
    reg = httpx.post(f"{b.url}/api/v3/agents/register", headers=boot, timeout=10,
                     json={"agent_id": "x", "hosts": [{"host_id": "x-h", "cpus": 1,
                                                       "memory_mb": 512}]})
    assert reg.status_code == 503 and reg.headers["X-Titus-Leader"] == a.url
    assert reg.headers["X-Titus-Role"] == "standby"
    # a request that already came through a standby is not sent around again
    looped = b.api.post("/api/v3/jobs", json=batch_job(1),
                        headers={"X-Titus-Forwarded-By": "http://elsewhere"})
    assert looped.status_code == 503
    # a body too large is refused by the standby itself
    big = b.api.post("/api/v3/jobs", content=b"[" + b"1," * 3_000_000 + b"1]",
                     headers={"Content-Type": "application/json"})
    assert big.status_code == 413


def test_a_killed_leader_is_replaced_and_nothing_is_lost_or_run_twice(pair):
    a, b = pair.a, pair.b
    a.start_agent("ida", hosts=2, cpus=4, masters=pair.urls())
    a.wait_for(lambda: a.api.get("/api/v3/agents").json()["items"], 30, "the agent to join")
    job_id = a.submit(batch_job(8, duration=2.0, name="across-failover"))
    a.wait_for(lambda: any(state(t) == "Started" for t in a.tasks(job_id)), 30,
               "tasks to start")
    a.kill_master(signal.SIGKILL)
    killed = time.monotonic()
    b.wait_for(lambda: pair.health(b)["role"] == "leader", LEASE_SEC + 8, "b to lead")
    took = time.monotonic() - killed
    assert took < LEASE_SEC + 8
    job = b.wait_job_finished(job_id, timeout=60)
    assert reason(job) == "normal"
    tasks = b.tasks(job_id)
    finished = Counter(t["index"] for t in tasks
                       if state(t) == "Finished" and reason(t) == "normal")
    assert len(finished) == 8 and set(finished.values()) == {1}
    launched = Counter(a.launched_task_ids())
    assert launched and max(launched.values()) == 1, launched  # no task started twice
    assert [row[0] for row in pair.epochs()] == [1, 2]
    # the old leader comes back as a standby of the new one
    a.start_master()
    a.wait_for(lambda: pair.health(a)["role"] == "standby", 20, "a to stand by")
    assert pair.health(a)["leader"] == b.url


def test_a_stopped_leader_is_fenced_when_it_wakes(pair):
    a, b = pair.a, pair.b
    a.master.send_signal(signal.SIGSTOP)
    try:
        b.wait_for(lambda: pair.health(b)["role"] == "leader", LEASE_SEC + 10, "b to lead")
    finally:
        a.master.send_signal(signal.SIGCONT)
    a.wait_for(lambda: pair.health(a)["role"] == "standby", 20, "a to stand down")
    assert pair.health(a)["leader"] == b.url
    # writes sent to the old leader now go to the new one
    job_id = a.submit(batch_job(1, name="after-fence"))
    assert b.api.get(f"/api/v3/jobs/{job_id}").status_code == 200
    assert [(e, u) for e, _h, u in pair.epochs()] == [(1, a.url), (2, b.url)]


def test_the_cli_passes_over_a_master_it_cannot_reach(pair, tmp_path):
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    env = {"TITUS_URL": f"{dead},{pair.b.url}", "TITUS_TOKEN": pair.a.token}
    out = subprocess.run(titus_command("job", "list", "--json"), capture_output=True,
                         text=True, timeout=60, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout), (list, dict))


def test_the_standby_refuses_what_it_cannot_pass_on_without_a_server_error(pair):
    """Hostile requests at a standby: refused in the one error shape, never a 500."""
    import socket

    b = pair.b
    host, port = b.url.rsplit("/", 1)[-1].split(":")
    token = f"Bearer {pair.a.token}".encode()

    def raw(request: bytes) -> bytes:
        head, _, rest = request.partition(b"\r\n")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(head + b"\r\nConnection: close\r\n" + rest)
            return b"".join(iter(lambda: s.recv(65536), b""))

    # CR LF encoded in the path; a non-ASCII byte in a forwarded header
    crlf = raw(b"POST /api/v3/jobs%0d%0aX:%20y HTTP/1.1\r\nHost: x\r\nAuthorization: " + token
               + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    assert crlf.split(b" ")[1] not in (b"500",), crlf[:200]
    latin = raw(b"POST /api/v3/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: " + token
                + b"\r\nIdempotency-Key: \xff\xfe\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2\r\n\r\n{}")
    assert latin.split(b" ")[1] != b"500", latin[:200]
    # an unknown token is refused by the standby itself, before any body is read
    refused = httpx.post(f"{b.url}/api/v3/jobs", json=batch_job(1), timeout=10,
                         headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401 and refused.json()["problems"][0]["field"] == "(auth)"
    # the path goes as it was sent: an encoded '?' stays part of the path
    odd = b.api.post("/api/v3/jobs%3Fa=1", json=batch_job(1))
    assert odd.status_code in (404, 405), odd.text


def test_a_trickled_body_is_cut_off_and_does_not_keep_a_slot(pair):
    import socket

    b = pair.b
    host, port = b.url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /api/v3/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + pair.a.token.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{")
        began = time.monotonic()
        answer = s.recv(65536)
        assert b" 408 " in answer.split(b"\r\n")[0], answer[:200]
        assert time.monotonic() - began < 20
    assert b.api.get("/api/v3/jobs").status_code == 200


def test_a_job_just_submitted_is_read_through_the_standby_at_once(pair):
    b = pair.b
    job_id = b.submit(batch_job(1, duration=30, name="read-your-write"))
    got = b.api.get(f"/api/v3/jobs/{job_id}")  # not in the standby's copy yet: the leader's
    assert got.status_code == 200 and got.json()["id"] == job_id
