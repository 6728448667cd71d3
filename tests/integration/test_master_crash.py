"""Fault test: kill -9 the master in the middle of a 2,000-task run, restart it on the same
store; every task must end exactly once (no index lost, none launched twice)."""
import signal
import time
from collections import Counter, defaultdict

from tests.integration.platform import batch_job, reason, state

JOBS, TASKS_PER_JOB = 4, 500


def test_master_killed_mid_run_loses_nothing_and_launches_nothing_twice(platform):
    for name in ("a1", "a2"):
        platform.start_agent(name, hosts=40, cpus=8, memory_mb=32768)
    # 640 slots for 2,000 tasks: several waves, so the crash hits tasks in every state
    job_ids = [platform.submit(batch_job(TASKS_PER_JOB, duration=0.5 + 0.5 * j, cpu=1,
                                         name=f"crash-{j}"))
               for j in range(JOBS)]

    def finished_count():
        return sum(state(t) == "Finished" for job_id in job_ids
                   for t in platform.tasks(job_id))

    done_before = platform.wait_for(lambda: (n := finished_count()) >= 600 and n, 60,
                                    "a third of the tasks to finish")
    platform.kill_master(signal.SIGKILL)
    assert done_before < JOBS * TASKS_PER_JOB - 300, "the crash came too late to matter"
    time.sleep(1.0)  # agents keep running tasks and queue their status changes
    platform.start_master()

    for job_id in job_ids:
        platform.wait_job_finished(job_id, timeout=120)
    assert platform.master_starts == 2

    launched = Counter(platform.launched_task_ids())
    assert max(launched.values()) == 1, "a task id was launched twice"
    for job_id in job_ids:
        tasks = platform.tasks(job_id)
        by_index = defaultdict(list)
        for task in tasks:
            by_index[task["index"]].append(task)
        assert sorted(by_index) == list(range(TASKS_PER_JOB)), "an index was lost"
        for index, attempts in by_index.items():
            assert all(state(t) == "Finished" for t in attempts)
            normal = [t for t in attempts if reason(t) == "normal"]
            assert len(normal) == 1, (index, [(t["id"], reason(t)) for t in attempts])
            ran = [t["id"] for t in attempts if t["id"] in launched]
            assert len(ran) == 1, f"index {index} of {job_id} launched as {ran}"
