"""``titus local --sample``: master and agents start, samples run, what happened is said in
plain words with the next commands to try, everything stops."""
import os
import signal
import subprocess

import httpx

from titus.cli.local_cluster import titus_command
from tests.waiting import read_until


def test_local_sample_runs_batch_jobs_to_the_end_and_cleans_up(tmp_path):
    workdir = tmp_path / "local"
    result = subprocess.run(titus_command("local", "--sample", "--port", "0", "--agents", "2",
                                          "--dir", str(workdir)),
                            capture_output=True, text=True, timeout=180)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "User token" in out and "http://127.0.0.1:" in out
    assert "What happened:" in out and "Try next" in out
    # the flaky sample's tasks run `sh -c "sleep 1; exit 1"`: every try fails
    assert "0 of 5 tasks succeeded; 15 tries ended failed" in out, out
    assert "40 of 40 tasks succeeded" in out
    assert "export TITUS_URL" not in out          # it would point at a stopped master
    assert "--keep" in out and f"kept in {workdir}" in out
    assert (workdir / "titus.db").exists()  # the store stays in a given --dir
    # every child is gone: no agent still points at the master's URL
    url = next(word for word in out.split() if word.startswith("http://127.0.0.1:"))
    assert subprocess.run(["pgrep", "-f", "--", f"--master {url}"]).returncode == 1


def test_local_sample_keep_stays_up_to_explore_and_says_how(tmp_path):
    """--keep: after the summary the platform answers at the exported URL until Ctrl-C; a
    temporary directory is removed at exit, and says so."""
    env = dict(os.environ, TITUS_TOKEN="keep-token", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(titus_command("local", "--sample", "--keep", "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = ""
    try:
        out = read_until(proc.stdout, "running; press Ctrl-C", 120)
        assert "running; press Ctrl-C" in out, out
        assert "removed when this command ends" in out
        export = next(line for line in out.splitlines()
                      if line.strip().startswith("export TITUS_URL="))
        url = export.split("TITUS_URL=")[1].split()[0]
        jobs = httpx.get(f"{url}/api/v3/jobs", params={"jobState": "Finished"},
                         headers={"authorization": "Bearer keep-token"}, timeout=10)
        assert jobs.status_code == 200 and len(jobs.json()["items"]) == 3
        assert "titus job describe " in out and "JOB_ID" not in out
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert "stopped; removed" in rest, rest


def test_local_docker_without_an_engine_says_what_to_do(tmp_path):
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    result = subprocess.run(titus_command("local", "--runtime", "docker", "--port", "0"),
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "no Docker engine answers at unix://" in said, said
    assert ".ci/docker.sh" in said and "--runtime sim" in said
    assert "Traceback" not in said and "starting master" not in said  # checked first


def test_sample_progress_says_why_tasks_wait_and_why_tries_ended():
    # on the Docker runtime without network, the bars said "8 tries failed" and nothing
    # more: the pull error was only in the agent's log
    from titus.cli.local import Progress

    def task(state, reason="", message="", failure=None, ts="1"):
        t = {"status": {"state": state, "reasonCode": reason, "reasonMessage": message,
                        "timestamp": ts}}
        return {**t, "schedulingFailure": failure} if failure else t

    tasks = [task("Finished", "transientSystemError", "old", ts="1"),
             task("Finished", "transientSystemError", "pull failed: no such host", ts="2"),
             task("Finished", "failed", "exited with code 1", ts="3"),
             task("Accepted", failure="0/1 hosts: 1 constraint:UniqueHostAttr(hostname)")]
    words = Progress({"status": {"state": "Accepted"}}, tasks).words(True)
    assert "1 waiting (0/1 hosts: 1 constraint:UniqueHostAttr(hostname))" in words
    assert words.endswith("; last: pull failed: no such host"), words
    flaky = Progress({"status": {"state": "Accepted"}}, tasks[2:3]).words(True)
    assert flaky == "1 try failed"  # a task's own failing exit is what the sample shows


def test_a_one_task_per_host_sample_asks_for_no_more_tasks_than_hosts():
    # with one Docker host, 5 of the 6 tasks of the spread sample waited forever and
    # titus local --sample never ended
    from titus.cli.local import _fit_to_hosts
    from titus.sample_jobs import load_samples

    spread = load_samples()["batch-unique-hosts.json"]
    assert _fit_to_hosts("s", spread, 1)["batch"]["size"] == 1
    assert _fit_to_hosts("s", spread, 10) == spread
    hello = load_samples()["batch-hello.json"]
    assert _fit_to_hosts("h", hello, 1) == hello


def test_a_crashed_agent_leaves_the_logs_the_message_points_to(tmp_path):
    # "see the logs in /tmp/titus-local-..." named a directory removed a moment later
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.Popen(titus_command("local", "--port", "0", "--agents", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "running; press Ctrl-C" in line:
                break
        url = next(w for w in "".join(lines).split() if w.startswith("http://127.0.0.1:"))
        agent = subprocess.run(["pgrep", "-f", "--", f"--master {url}"], capture_output=True,
                               text=True).stdout.split()
        assert len(agent) == 1, lines
        os.kill(int(agent[0]), signal.SIGKILL)
        out = "".join(lines) + proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and "stopped unexpectedly" in out, out
    logs = out.split("see the logs in ")[1].split()[0]
    assert os.path.isdir(logs) and os.listdir(logs), out
