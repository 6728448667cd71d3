"""``titus job|task describe``, ``titus events [--follow]`` and the listings (age, full ids,
active tasks by default, a default limit with a line saying how many more) against a master
served over real HTTP."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from tests.master.conftest import ScriptedAgent
from tests.master.live import LiveMaster
from tests.waiting import wait_until
from titus.cli import main
from titus.master.config import MasterSettings

JOB = {"applicationName": "describe-me", "owner": {"teamEmail": "me@example.com"},
       "container": {"image": {"name": "alpine", "tag": "3"},
                     "entryPoint": ["/bin/sh", "-c", "sleep 1; exit 1"],
                     "env": {"PLAIN": "shown", "DB_PASSWORD": "hunter2"},
                     "resources": {"cpu": 2, "memoryMB": 256}},
       "batch": {"size": 3, "retryPolicy": {"delayed": {"delayMs": "500", "retries": 1}}}}
HUGE = dict(JOB, container=dict(JOB["container"], resources={"cpu": 64, "memoryMB": 256}),
            applicationName="too-big")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    path = tmp_path_factory.mktemp("describe") / "m.db"
    with LiveMaster(MasterSettings(store_url=f"sqlite:///{path}")) as lm:
        yield lm


def cli(live, *args):
    result = CliRunner().invoke(main, [*args, "--url", str(live.http.base_url)],
                                catch_exceptions=False)
    return result


def submit(live, spec) -> str:
    r = live.http.post("/api/v3/jobs", json=spec)
    assert r.status_code < 300, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def placed(live):
    """A job with one task running on a host, one finished failed, one waiting for room;
    and a job no host can take."""
    agent = ScriptedAgent(live.master, hosts=1, cpus=4)
    agent.register()
    job = submit(live, JOB)
    big = submit(live, HUGE)
    live.master.scheduling.run_round(force=True)
    started = agent.start_launched()
    assert len(started) == 2
    agent.finish(started[1], exit_code=1)
    live.master.scheduling.run_round(force=True)
    return {"job": job, "big": big, "running": started[0], "failed": started[1]}


def test_task_describe_shows_everything_a_person_asks_first(live, placed):
    out = cli(live, "task", "describe", placed["running"]).output
    for words in (placed["running"], placed["job"], "describe-me", "alpine:3",
                  "/bin/sh -c 'sleep 1; exit 1'", "cpu 2", "memory 256 MB", "PLAIN=shown",
                  "DB_PASSWORD=<redacted>", "agent-1-h0", "Started", "Status history:",
                  "Accepted", "Events:"):
        assert words in out, (words, out)
    assert "hunter2" not in out


def test_a_finished_task_shows_its_reason_and_exit_code(live, placed):
    out = cli(live, "task", "describe", placed["failed"]).output
    assert "Finished: failed" in out and "Exit code:" in out
    assert cli(live, "task", "get", placed["failed"]).output == out  # get shows the same


def test_a_waiting_task_says_why_with_host_counts_per_reason(live, placed):
    waiting = json.loads(cli(live, "task", "list", "--job", placed["big"], "--json").output)
    out = cli(live, "task", "describe", waiting[0]["id"]).output
    assert "Waiting:" in out and "0 of 1 hosts can take it now" in out, out
    assert "cpus" in out and "HOSTS" in out
    assert "normal" not in out  # a task that has not ended has no reason yet


def test_job_describe_has_tasks_history_and_events(live, placed):
    out = cli(live, "job", "describe", placed["job"]).output
    for words in ("describe-me", "batch, 3 task(s)", "delayed: 1 retries", "Tasks (",
                  placed["running"], "Events:", "jobAccepted", "DB_PASSWORD=<redacted>",
                  "Capacity group:  DEFAULT"):  # the group job list shows, not "default"
        assert words in out, (words, out)
    assert "hunter2" not in out
    as_json = json.loads(cli(live, "job", "describe", placed["job"], "--json").output)
    assert as_json["job"]["id"] == placed["job"] and len(as_json["tasks"]) >= 3
    assert as_json["events"][0]["kind"] == "jobAccepted"


def test_lists_show_age_whole_ids_and_reasons_only_for_ended_tasks(live, placed):
    out = cli(live, "task", "list", "--job", placed["job"]).output
    assert "age" in out and placed["running"] in out
    assert placed["failed"] not in out            # active tasks by default
    every = cli(live, "task", "list", "--job", placed["job"], "--state", "all").output
    assert placed["failed"] in every and "failed" in every
    lines = [line for line in every.splitlines() if placed["running"] in line]
    assert lines and "normal" not in lines[0]
    jobs = cli(live, "job", "list").output
    assert placed["job"] in jobs and placed["big"] in jobs and "age" in jobs


def test_ids_are_never_cut_even_when_piped_at_80_columns(live, placed):
    env = {"COLUMNS": "40"}
    result = CliRunner(env=env).invoke(main, ["task", "list", "--state", "all", "--url",
                                              str(live.http.base_url)])
    ids = {placed["running"], placed["failed"]}
    assert all(i in result.output for i in ids), result.output


def test_a_cut_listing_says_how_many_more(live, placed):
    out = cli(live, "task", "list", "--state", "all", "--limit", "2").output
    assert "more tasks; use --limit" in out
    assert "more" not in cli(live, "task", "list", "--state", "all", "--limit", "1000").output


def test_events_print_the_log_and_filter_by_job(live, placed):
    out = cli(live, "events").output
    assert "jobAccepted" in out and placed["big"] in out
    mine = cli(live, "events", "--job", placed["job"]).output
    assert placed["job"] in mine and placed["big"] not in mine
    assert cli(live, "events", "--job", "nope").exit_code != 0


def test_events_follow_prints_live_changes(live, placed):
    """--follow over the observe stream: a new job's acceptance and its kill arrive."""
    url = str(live.http.base_url)
    assert not live.master.events.active  # so the next subscriber is the command's
    proc = subprocess.Popen([sys.executable, "-c", "from titus.cli import main; main()",
                             "events", "--limit", "0", "--follow", "--url", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the stream is open (its snapshot skipped): changes from now on reach the command
        # (a fixed wait lost both changes when the command took longer to start)
        wait_until(lambda: live.master.events.active or proc.poll() is not None, 60,
                   "the command to open the observe stream")
        assert proc.poll() is None, proc.stderr.read()
        job = submit(live, dict(JOB, applicationName="followed"))
        live.http.delete(f"/api/v3/jobs/{job}")
        deadline, seen = time.monotonic() + 20, ""
        import os
        import select
        # raw reads of the pipe: a non-blocking text read raised TypeError when no byte was
        # there yet (TextIOWrapper cannot concatenate the None it got)
        while time.monotonic() < deadline and "Finished" not in seen:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                seen += os.read(proc.stdout.fileno(), 65536).decode("utf-8", "replace")
        assert f"job {job} (followed)" in seen, seen
        assert "Finished" in seen
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_instance_group_actions_are_not_epoch_seconds():
    from titus.cli.show import age, span, when

    assert when("1700000000000").startswith("2023-11-1")
    assert when(1700000000, seconds=True) == when("1700000000000")
    assert span(42) == "42s" and span(330) == "5m30s" and span(7200) == "2h"
    assert span(90000) == "1d1h"
    assert age(None) == "" and age("nan") == "" and age("1e400") == ""


@pytest.mark.parametrize("args", [
    ["task", "list", "--limit", "0"], ["task", "list", "--limit", "-5"],
    ["task", "list", "--limit", "nan"], ["task", "list", "--limit", "1e999"],
    ["task", "list", "--state", "Bogus"], ["task", "list", "--state", "x\ud800"],
    ["events", "--limit", "-1"], ["events", "--job", "a\x00b"], ["events", "--task", "t" * 100_000],
    ["job", "describe", "nope"], ["job", "describe", "x\ud800"], ["task", "describe", "\x00"],
    ["task", "describe", "t" * 100_000], ["job", "describe", "../../etc/passwd"],
])
def test_hostile_cli_input_is_a_clear_error_not_a_traceback(live, args):
    """Refused by click (2) or by the master or the client (1), in words."""
    result = CliRunner().invoke(main, [*args, "--url", str(live.http.base_url)])
    assert result.exit_code == 2 or result.exit_code == 1, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)


def test_a_huge_limit_is_just_everything(live, placed):
    result = cli(live, "job", "list", "--limit", "99999999999999999999999")
    assert result.exit_code == 0 and placed["job"] in result.output


def test_terminal_controls_in_what_users_submitted_are_shown_not_obeyed(live):
    # a job's env, command or message with ESC ]0;title BEL, ESC [2J ... retitled, cleared
    # and recoloured the terminal of whoever ran titus job describe on it
    evil = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED\r\u202e\x9b"
    spec = dict(JOB, applicationName="controls", container=dict(
        JOB["container"], env={"V": evil}, entryPoint=["sh", "-c", "echo " + evil]))
    job_id = submit(live, spec)
    for args in (["job", "describe", job_id], ["events", "--job", job_id],
                 ["task", "list", "--job", job_id]):
        out = cli(live, *args).output
        assert not any(ch in out for ch in "\x1b\x07\r\u202e\x9b"), (args, out)
    out = cli(live, "job", "describe", job_id).output
    assert "V=\\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31mRED\\x0d\\u202e\\x9b" in out, out
