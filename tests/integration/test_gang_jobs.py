"""Gang batch jobs (``batch.gangScheduling``) on a real master with sim agents: all of a job's
tasks start together or none does."""
import time

from tests.integration.platform import batch_job, state


def gang_job(size: int, **kwargs) -> dict:
    job = batch_job(size, **kwargs)
    job["batch"]["gangScheduling"] = True
    return job


def test_a_gang_waits_until_all_its_tasks_fit(platform):
    platform.start_agent("a1", hosts=8, cpus=1)
    blocker = platform.submit(batch_job(1, duration=600, name="blocker"))
    platform.wait_for(lambda: len(platform.running(blocker)) == 1, 30, "the blocker started")
    job_id = platform.submit(gang_job(8, duration=600, name="gang"))
    assert platform.job(job_id)["jobDescriptor"]["batch"]["gangScheduling"] is True  # echoed
    # room for 7 of 8: none starts, and each says why
    def explained():
        tasks = platform.tasks(job_id)
        return len(tasks) == 8 and all((t.get("schedulingFailure") or "").startswith("gang of job")
                                       for t in tasks)
    platform.wait_for(explained, 30, "the gang's tasks explained")
    time.sleep(1.0)
    assert platform.running(job_id) == []
    assert {state(t) for t in platform.tasks(job_id)} == {"Accepted"}
    platform.kill_job(blocker)
    platform.wait_for(lambda: len(platform.running(job_id)) == 8, 30, "all 8 started once a slot freed")


def test_a_member_killed_while_waiting_is_replaced_inside_the_gang(platform):
    platform.start_agent("a1", hosts=4, cpus=1)
    blocker = platform.submit(batch_job(1, duration=600, name="blocker"))
    platform.wait_for(lambda: len(platform.running(blocker)) == 1, 30, "the blocker started")
    job_id = platform.submit(gang_job(4, duration=600, retries=2, name="gang"))
    platform.wait_for(lambda: len(platform.tasks(job_id)) == 4, 30, "the gang's tasks")
    victim = platform.tasks(job_id)[0]["id"]
    response = platform.api.delete(f"/api/v3/tasks/{victim}")
    assert response.status_code in (200, 202, 204), response.text
    platform.wait_for(lambda: len(platform.tasks(job_id)) == 5, 30, "the killed member replaced")
    time.sleep(1.0)
    assert platform.running(job_id) == []  # 3 of 4 fit: none starts
    platform.kill_job(blocker)
    platform.wait_for(lambda: len(platform.running(job_id)) == 4, 30, "all 4 started once a slot freed")
