"""The agent loop against a fake master: registration, status batches, orders, outages."""
import time

import pytest

from tests.agent.fake_master import FakeMaster
from titus.agent.agent import Agent
from titus.agent.config import AgentConfig
from titus.agent.runtime import TaskStatus
from titus.agent.sim import SimRuntime
from titus.protocol import LaunchOrder


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def launch(task_id, host="a1-h00000", duration=0, exit_code=0):
    return {"type": "launch", "task_id": task_id, "job_id": "j1", "host_id": host,
            "image": "sim:latest", "env": {"TITUS_SIM_DURATION_SEC": str(duration),
                                           "TITUS_SIM_EXIT_CODE": str(exit_code)}}


@pytest.fixture
def setup(tmp_path):
    master = FakeMaster()
    config = AgentConfig(master_url="http://master.test", agent_id="a1", hosts=3,
                         zones=["z1", "z2"], heartbeat_interval_sec=0.05, max_backoff_sec=0.2,
                         launch_log=str(tmp_path / "launches.log"))
    agent = Agent(config, SimRuntime(launch_log=config.launch_log), client=master.client())
    agent.start()
    yield master, agent, tmp_path
    agent.stop()


def test_registers_its_hosts_spread_over_zones(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    hosts = master.registrations[0]["hosts"]
    assert [h["host_id"] for h in hosts] == ["a1-h00000", "a1-h00001", "a1-h00002"]
    assert [h["attributes"]["zone"] for h in hosts] == ["z1", "z2", "z1"]
    assert all(h["attributes"]["instance_id"].startswith("i-") for h in hosts)
    assert master.registrations[0]["runtime"] == "sim"


def test_launch_order_reports_start_and_finish(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    master.queue(launch("t1", duration=0.1, exit_code=2))
    wait_until(lambda: "Finished" in master.states_of("t1"))
    assert master.states_of("t1") == ["StartInitiated", "Started", "Finished"]
    finished = [s for s in master.statuses if s["state"] == "Finished"][0]
    assert (finished["reason"], finished["exit_code"], finished["host_id"]) == \
        ("failed", 2, "a1-h00000")


def test_running_tasks_are_listed_in_heartbeats(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    master.queue(launch("t1", duration=60))
    wait_until(lambda: any("t1" in hb["running"] for hb in master.heartbeats))
    master.queue({"type": "kill", "task_id": "t1", "grace_sec": 1})
    wait_until(lambda: "Finished" in master.states_of("t1"))
    time.sleep(0.15)
    assert "t1" not in master.heartbeats[-1]["running"]


def test_duplicate_launch_runs_once(setup):
    master, agent, tmp_path = setup
    wait_until(lambda: master.registrations)
    master.queue(launch("t1", duration=60), launch("t1", duration=60))
    wait_until(lambda: "Started" in master.states_of("t1"))
    master.queue(launch("t1", duration=60))
    wait_until(lambda: agent.stats["duplicate_launches"] == 2)
    assert len((tmp_path / "launches.log").read_text().splitlines()) == 1


def test_kill_of_unknown_task_reports_it_finished(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    master.queue({"type": "kill", "task_id": "ghost", "grace_sec": 1})
    wait_until(lambda: master.states_of("ghost") == ["Finished"])


def test_statuses_survive_a_master_outage_and_agent_registers_again(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    master.queue(launch("t1", duration=0.3))
    wait_until(lambda: "Started" in master.states_of("t1"))
    master.down = True
    time.sleep(0.8)  # t1 finishes while nobody listens
    assert agent.pending_count() >= 1
    master.down = False
    wait_until(lambda: len(master.registrations) >= 2)
    # the new registration lists the task in its latest state, or the heartbeat delivers it
    registered = {t["task_id"]: t["state"] for t in master.registrations[-1]["tasks"]}
    wait_until(lambda: registered.get("t1") == "Finished" or "Finished" in master.states_of("t1"))
    assert agent.stats["master_unavailable"] >= 1


def test_unknown_agent_reply_and_reregister_flag_trigger_registration(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    master.known.clear()
    wait_until(lambda: len(master.registrations) == 2)
    master.reregister_once = True
    wait_until(lambda: len(master.registrations) == 3)


def test_sim_agent_deregisters_on_stop(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    agent.stop()
    assert master.deregistered == ["a1"]


def test_a_master_without_long_poll_is_not_hammered(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    time.sleep(0.5)
    # interval 0.05 s: about 10 heartbeats, not thousands
    assert len(master.heartbeats) <= 15


def test_a_long_running_list_is_sent_only_now_and_then(tmp_path):
    master = FakeMaster()
    config = AgentConfig(master_url="http://master.test", agent_id="a1", hosts=1,
                         heartbeat_interval_sec=0.02, running_list_every_heartbeat_max=2,
                         running_report_sec=60)
    agent = Agent(config, SimRuntime(), client=master.client())
    agent.start()
    try:
        wait_until(lambda: master.registrations)
        master.queue(*(launch(f"t{i}", duration=60) for i in range(3)))
        wait_until(lambda: any(len(hb["running"]) == 3 for hb in master.heartbeats))
        seen = len(master.heartbeats)
        wait_until(lambda: len(master.heartbeats) >= seen + 5)
        assert all(hb["running"] == [] for hb in master.heartbeats[seen:])
    finally:
        agent.stop()


def test_wrong_token_is_retried_with_back_off_and_then_accepted():
    master = FakeMaster()
    master.token = "right"
    config = AgentConfig(master_url="http://master.test", agent_id="a1", agent_token="wrong",
                         heartbeat_interval_sec=0.05, max_backoff_sec=0.5)
    agent = Agent(config, SimRuntime(), client=master.client())
    agent.start()
    try:
        wait_until(lambda: agent.stats["rejected"] >= 2)
        assert not master.registrations and not agent.registered.is_set()
        attempts = agent.stats["rejected"]
        time.sleep(0.6)
        assert agent.stats["rejected"] <= attempts + 3  # backing off, not hammering
        master.token = "wrong"  # the operator fixes the master's side
        wait_until(lambda: master.registrations)
    finally:
        agent.stop()


def test_unreadable_replies_keep_statuses_and_the_loop_alive(setup):
    master, agent, _ = setup
    wait_until(lambda: master.registrations)
    master.garbage = True
    master.queue(launch("t1", duration=0))  # never delivered while the master talks garbage
    agent._emit(TaskStatus(task_id="t9", state="Finished", reason="normal", exit_code=0))
    wait_until(lambda: agent.stats["master_unavailable"] >= 2)
    # each failure leads to a new registration, which carries t9's latest state
    assert any(t["task_id"] == "t9" and t["state"] == "Finished"
               for r in master.registrations[1:] for t in r["tasks"])
    master.garbage = False
    beats = len(master.heartbeats)
    wait_until(lambda: len(master.heartbeats) > beats + 2)  # the loop lives on


@pytest.mark.parametrize("bad", [
    {"type": "launch", "task_id": 5, "job_id": "j1", "host_id": "a1-h00000", "image": "sim"},
    {"type": "launch", "job_id": "j1", "host_id": "a1-h00000", "image": "sim"},
    {"type": "kill", "task_id": ["t1"]},
    {"type": "resize", "task_id": "t1", "cpus": 4},
], ids=["wrong-task-id-type", "missing-task-id", "kill-bad-task-id", "unknown-order-type"])
def test_a_malformed_order_is_skipped_and_the_others_run(setup, bad):
    master, agent, tmp_path = setup
    wait_until(lambda: master.registrations)
    agent._emit(TaskStatus(task_id="t9", state="Finished", reason="normal", exit_code=0))
    # one reply: the bad order between two good ones
    master.queue(launch("t1", duration=0))
    master.queue(bad)
    master.queue(launch("t2", duration=0))
    wait_until(lambda: "Finished" in master.states_of("t1"))
    wait_until(lambda: "Finished" in master.states_of("t2"))
    wait_until(lambda: "Finished" in master.states_of("t9"))
    assert agent.stats["orders_unread"] == 1 and agent.stats["master_unavailable"] == 0
    assert agent.stats["loop_errors"] == 0 and agent.stats["launches"] == 2
    assert agent._loop.is_alive() and agent._worker.is_alive()


class RecordingRuntime(SimRuntime):
    """A sim runtime that keeps every launch order it is handed."""

    def __init__(self):
        super().__init__()
        self.launched = []

    def launch(self, order):
        self.launched.append(order)
        super().launch(order)


def test_the_runtime_is_handed_the_launch_order_itself():
    master = FakeMaster()
    config = AgentConfig(master_url="http://master.test", agent_id="a1", hosts=1,
                         heartbeat_interval_sec=0.05)
    runtime = RecordingRuntime()
    agent = Agent(config, runtime, client=master.client())
    agent.start()
    try:
        wait_until(lambda: master.registrations)
        new = {**launch("t1"), "task_index": 3,
               "health_check": {"command": ["true"], "interval_sec": 1}}
        legacy = launch("t2")  # a master that puts the index into env itself
        legacy["env"] = {**legacy["env"], "TITUS_TASK_ID": "t2", "TITUS_TASK_INDEX": "5"}
        master.queue(new, legacy)
        wait_until(lambda: len(runtime.launched) == 2)
        first, second = runtime.launched
        assert isinstance(first, LaunchOrder) and isinstance(second, LaunchOrder)
        assert (first.task_id, first.task_index, first.host_id) == ("t1", 3, "a1-h00000")
        assert first.health_check.command == ["true"] and first.health_check.retries == 3
        assert first.env == new["env"]  # the job's env, as the master sent it
        assert (second.task_id, second.task_index) == ("t2", 5)
        wait_until(lambda: "Finished" in master.states_of("t2"))
    finally:
        agent.stop()
