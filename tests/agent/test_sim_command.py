"""The sim runtime honours simple commands: sleep and exit, also inside ``sh -c``."""
import time

import pytest

from titus.agent.sim import SimRuntime, plan
from titus.agent.sim_command import MAX_COMMAND_CHARS, MAX_SLEEP_SEC, SimPlan, simulate
from titus.protocol import LaunchOrder
from titus.sample_jobs import load_samples


@pytest.mark.parametrize("argv, duration, code", [
    (["/bin/sleep", "1h"], 3600.0, 0),                      # the Titus README's job
    (["sleep", "30"], 30.0, 0),
    (["sleep", "0.5"], 0.5, 0),
    (["sleep", "1.5m", "30s"], 120.0, 0),                   # GNU sleep sums its arguments
    (["sleep", "2d"], 172800.0, 0),
    (["sleep", ".25"], 0.25, 0),
    (["exit", "3"], 0.0, 3),
    (["/bin/sh", "-c", "sleep 1; exit 1"], 1.0, 1),         # the sample batch-flaky job
    (["sh", "-c", "echo hello from $TITUS_TASK_INDEX; sleep 3"], 3.0, 0),
    (["bash", "-c", "sleep 2 && exit 4"], 2.0, 4),
    (["sh", "-c", "false && sleep 5"], 0.0, 1),
    (["sh", "-c", "false || sleep 2"], 2.0, 0),
    (["sh", "-c", "sleep 1\nsleep 2\nexit 7"], 3.0, 7),
    (["sh", "-c", "sleep 1; exit"], 1.0, 0),
    (["sh", "-c", "false; exit"], 0.0, 1),
    (["sh", "-c", "exit 300"], 0.0, 44),                    # modulo 256, as a shell
    (["sh", "-c", "exit -1"], 0.0, 255),
    (["sh", "-c", "exit 1; sleep 100"], 0.0, 1),            # nothing runs after exit
    (["sh", "-c", "true # sleep 100"], 0.0, 0),
])
def test_simple_commands_give_their_duration_and_exit_code(argv, duration, code):
    assert simulate(argv) == SimPlan(duration, code)


@pytest.mark.parametrize("arg", ["nan", "NaN", "-1", "-0.5", "0x10", "1y", "", "abc", "\ud800",
                                 "1..2", "1e", "+5"])
@pytest.mark.parametrize("shape", ["plain", "shell"])
def test_an_invalid_sleep_fails_at_once_as_gnu_sleep_does(arg, shape):
    argv = ["sleep", arg] if shape == "plain" else ["sh", "-c", f"sleep '{arg}'"]
    assert simulate(argv) == SimPlan(0.0, 1)
    assert simulate(["sleep"]) == SimPlan(0.0, 1)          # "missing operand"


@pytest.mark.parametrize("arg", ["inf", "infinity", "1e999", "99999999999d"])
def test_endless_sleeps_are_bounded(arg):
    assert simulate(["sleep", arg]) == SimPlan(MAX_SLEEP_SEC, 0)


@pytest.mark.parametrize("argv", [
    [], ["nginx"], ["/usr/bin/python3", "app.py"], ["sh", "-c"],
    ["sh", "-c", "sleep 1 | cat"], ["sh", "-c", "sleep 1 &"], ["sh", "-c", "sleep $N"],
    ["sh", "-c", "sleep 1 > /tmp/x"], ["sh", "-c", "sleep \"1"], ["sh", "-c", "sleep 1 &&"],
    ["sh", "-c", "&& sleep 1"], ["sh", "-c", "sleep 1 ;; exit 2"], ["sh", "-c", "\ud800"],
    ["sh", "-c", "sleep 1; run-the-thing"], ["sleep", "1" * (MAX_COMMAND_CHARS + 1)],
    ["sh", "-c", "sleep 1; exit $CODE"],
])
def test_anything_else_is_not_understood(argv):
    assert simulate(argv) is None


def test_hostile_strings_never_raise():
    for argv in (["sh", "-c", "sleep " + "9" * 5000], ["sh", "-c", ";" * 10_000],
                 ["sh", "-c", "'" * 10_000], ["sleep", "1e308", "1e308"],
                 ["sh", "-c", "exit " + "9" * 5000], ["\ud800", "\udfff"], ["x" * 10_000_000]):
        result = simulate(argv)
        assert result is None or 0 <= result.duration_sec <= MAX_SLEEP_SEC


def order(entry_point=(), command=(), **env):
    return LaunchOrder(task_id="t1", job_id="j1", image="sim:latest", host_id="h1",
                       entry_point=list(entry_point), command=list(command),
                       env={k: str(v) for k, v in env.items()})


def test_env_wins_over_the_command_each_variable_on_its_own():
    assert plan(order(["/bin/sleep", "1h"])) == (3600.0, 0)
    assert plan(order(["/bin/sleep", "1h"], TITUS_SIM_DURATION_SEC=2)) == (2.0, 0)
    assert plan(order(["sh", "-c", "sleep 1; exit 1"], TITUS_SIM_EXIT_CODE=0)) == (1.0, 0)
    assert plan(order(["sh", "-c", "sleep 1; exit 1"], TITUS_SIM_DURATION_SEC=3,
                      TITUS_SIM_EXIT_CODE=5)) == (3.0, 5)
    assert plan(order(["/bin/sleep"], ["90"])) == (90.0, 0)     # entry point + command
    assert plan(order(["nginx"])) == (0.0, 0)                   # the default duration
    assert plan(order()) == (0.0, 0)


def test_the_sample_jobs_and_c1m_keep_their_durations():
    """Jobs that set TITUS_SIM_* (the samples, the C1M bench) run as long as they say."""
    from bench.c1m import job_descriptor

    for name, descriptor in load_samples().items():
        c = descriptor["container"]
        got = plan(order(c.get("entryPoint", []), c.get("command", []), **c.get("env", {})))
        assert got[0] == float(c["env"]["TITUS_SIM_DURATION_SEC"]), name
    c = job_descriptor(0, 10, 1.0, 512)["container"]
    assert plan(order(c.get("entryPoint", []), c.get("command", []), **c["env"])) == (3600.0, 0)


def test_a_runtime_runs_a_sleeping_task_for_its_time_and_ends_it_with_its_code():
    statuses = []
    runtime = SimRuntime()
    runtime.start(statuses.append)
    try:
        began = time.monotonic()
        runtime.launch(order(["/bin/sh", "-c", "sleep 0.3; exit 3"]))
        deadline = time.monotonic() + 5
        while not any(s.state == "Finished" for s in statuses) and time.monotonic() < deadline:
            time.sleep(0.01)
        end = [s for s in statuses if s.state == "Finished"][0]
        assert time.monotonic() - began >= 0.29
        assert (end.reason, end.exit_code) == ("failed", 3)
    finally:
        runtime.close()


def test_an_endless_sleep_runs_until_killed():
    statuses = []
    runtime = SimRuntime()
    runtime.start(statuses.append)
    try:
        runtime.launch(order(["sleep", "inf"]))
        time.sleep(0.1)
        assert not any(s.state == "Finished" for s in statuses)
        runtime.kill("t1", grace_sec=5)
        deadline = time.monotonic() + 5
        while not any(s.state == "Finished" for s in statuses) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [s.reason for s in statuses if s.state == "Finished"] == ["killed"]
    finally:
        runtime.close()
