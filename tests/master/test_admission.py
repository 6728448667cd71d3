"""Heartbeats survive load: user requests are admitted up to a limit (429 with Retry-After
beyond, in the one error shape), agents' calls and health probes are never refused, an agent's
heartbeat counts from when it arrived even while the master is busy, and the master's own lag
is never taken for an agent's silence."""
from __future__ import annotations

import threading
import time

import httpx

from tests.master.conftest import ScriptedAgent
from tests.master.live import LiveMaster
from titus.master.config import MasterSettings
from titus.master.lag import LagMeter


def settings(tmp_path, **extra) -> MasterSettings:
    values = {"max_inflight_requests": 1, "admission_queue": 0, **extra}
    return MasterSettings(store_url=f"sqlite:///{tmp_path / 'adm.db'}", insecure=True,
                          **values)


def in_thread(fn):
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", fn()), daemon=True)
    thread.start()
    return thread, out


def test_requests_beyond_the_limit_get_429_and_agents_and_probes_do_not(tmp_path):
    with LiveMaster(settings(tmp_path)) as live:
        agent = ScriptedAgent(live.master, "busy-agent")
        agent.register()
        lock = live.master.state.lock
        lock.acquire()  # a long scheduling round holds the state
        try:
            first, got = in_thread(lambda: live.http.get("/api/v3/jobs"))
            deadline = time.monotonic() + 10
            while live.app.state.admission.inflight < 1:  # it waits for the state, admitted
                assert time.monotonic() < deadline
                time.sleep(0.02)
            refused = live.http.get("/api/v3/tasks")
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "1"
            body = refused.json()
            assert body["error"].startswith("the master is at its limit")
            assert body["problems"][0]["field"] == "(server)"
            # probes and agents are not counted
            assert live.http.get("/health").status_code == 200
            arrived = time.time()
            beat, beat_out = in_thread(lambda: live.http.post(
                "/api/v3/agents/busy-agent/heartbeat", json={"statuses": [], "running": []}))
            deadline = time.monotonic() + 10
            while live.master.agents.heard.get("busy-agent", 0) < arrived - 0.5:
                assert time.monotonic() < deadline, "the heartbeat was not stamped on arrival"
                time.sleep(0.02)
        finally:
            lock.release()
        first.join(10)
        beat.join(10)
        assert got["r"].status_code == 200 and beat_out["r"].status_code == 200
        # nothing leaked: the slot is free again
        assert [live.http.get("/api/v3/jobs").status_code for _ in range(5)] == [200] * 5


def test_a_client_that_goes_away_does_not_keep_its_slot(tmp_path):
    with LiveMaster(settings(tmp_path)) as live:
        lock = live.master.state.lock
        lock.acquire()
        try:
            url = str(live.http.base_url)
            with httpx.Client(base_url=url, timeout=0.3) as impatient:
                try:
                    impatient.get("/api/v3/jobs")
                except httpx.TimeoutException:
                    pass
        finally:
            lock.release()
        deadline = time.monotonic() + 10
        while True:
            status = live.http.get("/api/v3/jobs").status_code
            if status == 200:
                break
            assert time.monotonic() < deadline, f"the slot was never given back ({status})"
            time.sleep(0.05)


def test_the_masters_own_lag_is_not_an_agents_silence(tmp_path):
    lag = {"total": 0.0}
    from titus.master.master import Master
    from titus.master.store import Store

    now = {"t": 1000.0}
    master = Master(MasterSettings(store_url=f"sqlite:///{tmp_path / 'lag.db'}",
                                   heartbeat_timeout_sec=10), Store(f"sqlite:///{tmp_path / 'lag.db'}"),
                    clock=lambda: now["t"], lag=lambda: lag["total"])
    ScriptedAgent(master, "quiet").register()
    agent = master.registry.get("quiet")
    now["t"] += 12
    lag["total"] += 5  # the master could not run for 5 of those 12 s
    assert master.agents.silence(agent, now["t"]) == 7
    master.agents.lose_silent(now["t"])
    assert master.registry.get("quiet") is not None  # not lost: silent 7 s, not 12
    now["t"] += 4
    master.agents.lose_silent(now["t"])
    assert master.registry.get("quiet") is None  # now silent 11 s of its own


def test_the_lag_meter_counts_a_stall_once():
    meter = LagMeter()
    meter.add(0.01)  # below the tolerance: scheduling noise
    assert meter.total == 0
    meter.add(2.0, "thread")
    meter.add(2.0, "loop")  # the same stall seen by both watchers
    assert meter.total == 2.0 and meter.worst == 2.0


def test_a_refused_heartbeat_is_no_sign_of_life(tmp_path):
    with LiveMaster(settings(tmp_path, max_inflight_requests=0)) as live:
        ScriptedAgent(live.master, "zombie").register()
        before = live.master.agents.heard.get("zombie", 0.0)
        bad = live.http.post("/api/v3/agents/zombie/heartbeat",
                             json={"statuses": "not a list", "running": []})
        assert bad.status_code == 400
        assert live.master.agents.heard.get("zombie", 0.0) == before
        good = live.http.post("/api/v3/agents/zombie/heartbeat",
                              json={"statuses": [], "running": []})
        assert good.status_code == 200
        assert live.master.agents.heard["zombie"] > before
