"""Batch jobs on a real master with sim agents: completion, retries, kill, runtime limit."""
from collections import Counter

from tests.integration.platform import batch_job, reason, state


def test_batch_job_runs_to_completion(platform):
    platform.start_agent("a1", hosts=4, cpus=4)
    job_id = platform.submit(batch_job(12, duration=0.2))
    job = platform.wait_job_finished(job_id, timeout=60)
    assert reason(job) == "normal"
    tasks = platform.tasks(job_id)
    assert sorted(task["index"] for task in tasks) == list(range(12))
    assert {(state(task), reason(task)) for task in tasks} == {("Finished", "normal")}
    launched = Counter(platform.launched_task_ids())
    assert {task["id"] for task in tasks} <= set(launched)
    assert max(launched.values()) == 1
    assert {task["hostId"] for task in tasks} <= {f"a1-h{i:05d}" for i in range(4)}


def test_failing_tasks_retry_per_policy(platform):
    platform.start_agent("a1", hosts=2, cpus=4)
    job_id = platform.submit(batch_job(3, exit_code=1, retries=2))
    platform.wait_job_finished(job_id, timeout=60)
    tasks = platform.tasks(job_id)
    per_index = Counter(task["index"] for task in tasks)
    assert per_index == {0: 3, 1: 3, 2: 3}  # the first try and two retries each
    assert {(state(task), reason(task)) for task in tasks} == {("Finished", "failed")}
    assert all(task["exitCode"] == 1 for task in tasks)
    assert sorted(task["resubmitNumber"] for task in tasks) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_kill_job_kills_its_running_tasks(platform):
    platform.start_agent("a1", hosts=2, cpus=4)
    job_id = platform.submit(batch_job(4, duration=600))
    platform.wait_for(lambda: len(platform.running(job_id)) == 4, 30, "4 tasks started")
    task = platform.running(job_id)[0]
    # the master reads a task's output from the agent's own server
    logs = platform.api.get(f"/api/v3/tasks/{task['id']}/logs", params={"follow": "false"})
    assert logs.status_code == 200, logs.text
    assert f"sim task {task['id']}" in logs.text and task["hostId"] in logs.text
    platform.kill_job(job_id)
    platform.wait_job_finished(job_id, timeout=30)
    tasks = platform.tasks(job_id)
    assert len(tasks) == 4  # killed tasks are not replaced
    assert {(state(task), reason(task)) for task in tasks} == {("Finished", "killed")}


def test_runtime_limit_ends_tasks(platform):
    platform.start_agent("a1", hosts=2, cpus=4)
    job_id = platform.submit(batch_job(2, duration=600, runtime_limit_sec=1))
    platform.wait_job_finished(job_id, timeout=30)
    tasks = platform.tasks(job_id)
    assert len(tasks) == 2
    assert {(state(task), reason(task)) for task in tasks} == \
        {("Finished", "runtimeLimitExceeded")}
