"""The sim runtime: durations, exit codes, kills with grace, one timer thread for many tasks."""
import threading
import time

import pytest

from titus.agent.sim import SimRuntime
from titus.protocol import LaunchOrder, TaskStatusMsg


class Recorder:
    """Collects emitted statuses; tests poll it (no wake-up per status, which would make
    5,000 tasks a convoy of thread switches on a busy machine)."""

    def __init__(self):
        self.statuses = []
        self.finished_total = 0
        self.lock = threading.Lock()

    def __call__(self, status):
        with self.lock:
            self.statuses.append(status)
            self.finished_total += status.state == "Finished"

    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if predicate(self.statuses):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError((self.finished_total, len(self.statuses),
                                          self.statuses[-3:]))
            time.sleep(0.01)

    def finished(self, task_id):
        return [s for s in self.statuses if s.task_id == task_id and s.state == "Finished"]


@pytest.fixture
def sim(tmp_path):
    runtime = SimRuntime(launch_log=str(tmp_path / "launches.log"))
    recorder = Recorder()
    runtime.start(recorder)
    yield runtime, recorder
    runtime.close()


def spec(task_id, **env):
    return LaunchOrder(task_id=task_id, job_id="job-1", image="sim:latest", host_id="h1",
                       env={k: str(v) for k, v in env.items()})


def test_task_runs_for_its_duration_then_finishes_normally(sim):
    runtime, rec = sim
    began = time.monotonic()
    runtime.launch(spec("t1", TITUS_SIM_DURATION_SEC=0.3))
    assert [s.state for s in rec.statuses] == ["StartInitiated", "Started"]
    rec.wait_for(lambda ss: rec.finished("t1"))
    assert time.monotonic() - began >= 0.29
    done = rec.finished("t1")[0]
    assert (done.reason, done.exit_code, done.host_id) == ("normal", 0, "h1")


def test_default_duration_is_zero(sim):
    runtime, rec = sim
    runtime.launch(spec("t1"))
    rec.wait_for(lambda ss: rec.finished("t1"), timeout=1.0)


def test_nonzero_exit_code_fails(sim):
    runtime, rec = sim
    runtime.launch(spec("t1", TITUS_SIM_EXIT_CODE=3))
    rec.wait_for(lambda ss: rec.finished("t1"))
    done = rec.finished("t1")[0]
    assert (done.reason, done.exit_code) == ("failed", 3)


def test_bad_env_fails_the_task_naming_the_variable(sim):
    runtime, rec = sim
    runtime.launch(spec("t1", TITUS_SIM_DURATION_SEC="soon"))
    done = rec.finished("t1")[0]
    assert done.reason == "failed"
    assert "TITUS_SIM_DURATION_SEC" in done.message and "'soon'" in done.message


@pytest.mark.parametrize("code", ["9" * 100, "2147483648", "-5", "256", "3.0", "", "0x1"])
def test_an_exit_code_no_process_can_have_fails_the_task_not_the_agent(sim, code):
    # a status with exit code 10**99 was refused by the master with the whole heartbeat,
    # then every registration: one job's env took its agent's hosts out of the cluster
    runtime, rec = sim
    runtime.launch(spec("t1", TITUS_SIM_EXIT_CODE=code))
    done = rec.finished("t1")[0]
    assert done.reason == "failed" and done.exit_code is None
    assert "TITUS_SIM_EXIT_CODE" in done.message and len(done.message) < 200
    TaskStatusMsg(task_id=done.task_id, state=done.state, reason=done.reason,
                  message=done.message, exit_code=done.exit_code, host_id=done.host_id)


def test_kill_exits_on_sigterm_when_the_task_stops_in_time(sim):
    runtime, rec = sim
    runtime.launch(spec("t1", TITUS_SIM_DURATION_SEC=60, TITUS_SIM_KILL_DELAY_SEC=0.2))
    began = time.monotonic()
    runtime.kill("t1", grace_sec=5)
    rec.wait_for(lambda ss: rec.finished("t1"))
    took = time.monotonic() - began
    done = rec.finished("t1")[0]
    assert (done.reason, done.exit_code) == ("killed", 143)
    assert 0.19 <= took < 2


def test_kill_sigkills_when_grace_runs_out(sim):
    runtime, rec = sim
    runtime.launch(spec("t1", TITUS_SIM_DURATION_SEC=60, TITUS_SIM_KILL_DELAY_SEC=30))
    began = time.monotonic()
    runtime.kill("t1", grace_sec=0.2)
    rec.wait_for(lambda ss: rec.finished("t1"))
    assert time.monotonic() - began < 2
    assert (rec.finished("t1")[0].reason, rec.finished("t1")[0].exit_code) == ("killed", 137)


def test_kill_unknown_task_raises_key_error(sim):
    runtime, _ = sim
    with pytest.raises(KeyError):
        runtime.kill("nope", 1)


def test_second_launch_of_same_task_is_ignored_and_logged_once(sim, tmp_path):
    runtime, rec = sim
    runtime.launch(spec("t1", TITUS_SIM_DURATION_SEC=60))
    runtime.launch(spec("t1", TITUS_SIM_DURATION_SEC=60))
    assert [s.state for s in rec.statuses] == ["StartInitiated", "Started"]
    lines = (tmp_path / "launches.log").read_text().splitlines()
    assert [line.split()[:3] for line in lines] == [["t1", "job-1", "h1"]]


def test_list_and_remove(sim):
    runtime, rec = sim
    runtime.launch(spec("t1", TITUS_SIM_DURATION_SEC=60))
    runtime.launch(spec("t2"))
    rec.wait_for(lambda ss: rec.finished("t2"))
    states = {s.task_id: s.state for s in runtime.list()}
    assert states == {"t1": "Started", "t2": "Finished"}
    runtime.remove("t1")
    runtime.remove("t2")
    assert runtime.list() == []
    time.sleep(0.05)
    assert not rec.finished("t1")  # a removed task never reports again


def test_logs_follow_until_the_task_ends(sim):
    runtime, _ = sim
    runtime.launch(spec("t1", TITUS_SIM_DURATION_SEC=0.2))
    lines = list(runtime.logs("t1", follow=True))
    assert len(lines) == 2 and b"started on host h1" in lines[0] and b"normal" in lines[1]
    with pytest.raises(KeyError):
        runtime.logs("nope")


def test_many_tasks_share_one_timer_thread(sim):
    runtime, rec = sim
    threads_before = threading.active_count()
    for i in range(5000):
        runtime.launch(spec(f"t{i}", TITUS_SIM_DURATION_SEC=0.001 * (i % 200)))
    assert threading.active_count() == threads_before
    rec.wait_for(lambda ss: rec.finished_total >= 5000, timeout=10)
    time.sleep(0.05)
    assert {s.reason for s in rec.statuses if s.state == "Finished"} == {"normal"}
    sequences = {}
    for status in rec.statuses:
        sequences.setdefault(status.task_id, []).append(status.state)
    # each task reports each state once, in order, even with a zero duration
    assert set(map(tuple, sequences.values())) == {("StartInitiated", "Started", "Finished")}


def test_journal_records_boot_starts_ends_and_close(tmp_path, monkeypatch):
    path = tmp_path / "journal.jsonl"
    monkeypatch.setenv("TITUS_SIM_JOURNAL", str(path))
    runtime = SimRuntime()
    rec = Recorder()
    runtime.start(rec)
    order = spec("t1", TITUS_SIM_DURATION_SEC=0.05)
    order.cpus, order.memory_mb, order.task_index, order.epoch = 2.0, 1024.0, 3, 7
    runtime.launch(order)
    runtime.launch(spec("t1"))  # a repeated order is not a second start
    runtime.launch(spec("t2", TITUS_SIM_DURATION_SEC=60))
    rec.wait_for(lambda ss: rec.finished("t1"))
    runtime.kill("t2", 0)
    runtime.launch(spec("t3", TITUS_SIM_DURATION_SEC=60))
    runtime.remove("t3")
    runtime.close()
    import json

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["ev"], r.get("task")) for r in lines] == [
        ("boot", None), ("start", "t1"), ("start", "t2"), ("end", "t1"), ("end", "t2"),
        ("start", "t3"), ("end", "t3"), ("close", None)]
    start = lines[1]
    assert (start["host"], start["cpus"], start["mem"], start["index"], start["epoch"]) == \
        ("h1", 2.0, 1024.0, 3, 7)
    assert [(r["reason"], r["exit"]) for r in lines if r["ev"] == "end"] == [
        ("normal", 0), ("killed", 143), ("removed", None)]
    assert all(a["mono"] <= b["mono"] for a, b in zip(lines, lines[1:]))


def test_no_journal_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("TITUS_SIM_JOURNAL", raising=False)
    monkeypatch.chdir(tmp_path)
    runtime = SimRuntime()
    runtime.start(Recorder())
    runtime.launch(spec("t1"))
    runtime.close()
    assert list(tmp_path.iterdir()) == []
