"""Service jobs on a real master with sim agents: count kept through agent loss, resizing."""
from tests.integration.platform import reason, service_job, state


def test_service_job_survives_agent_loss_and_scales(platform):
    platform.start_agent("a", hosts=3, cpus=4, zones=("z1",))
    platform.start_agent("b", hosts=3, cpus=4, zones=("z2",))
    job_id = platform.submit(service_job(6))
    platform.wait_for(lambda: len(platform.running(job_id)) == 6, 30, "6 tasks started")

    platform.kill_agent("a")  # kill -9: its tasks vanish without a word
    on_a = {t["id"] for t in platform.running(job_id) if t["agentId"] == "a"}

    def replaced():
        running = platform.running(job_id)
        return len(running) == 6 and all(t["agentId"] == "b" for t in running)

    platform.wait_for(replaced, 40, "6 tasks running again, all on agent b")
    ended = {t["id"]: t for t in platform.tasks(job_id) if state(t) == "Finished"}
    assert on_a <= set(ended)
    assert {reason(ended[task_id]) for task_id in on_a} <= {"lost"}

    platform.scale(job_id, desired=9)
    platform.wait_for(lambda: len(platform.running(job_id)) == 9, 30, "scaled up to 9")

    platform.scale(job_id, desired=2)
    platform.wait_for(lambda: len(platform.running(job_id)) == 2, 30, "scaled down to 2")
    platform.wait_for(lambda: sum(state(t) == "Finished" and reason(t) == "scaledDown"
                                  for t in platform.tasks(job_id)) == 7,
                      30, "7 tasks finished as scaledDown")
    live = [t for t in platform.tasks(job_id) if state(t) != "Finished"]
    assert len(live) == 2 and all(state(t) == "Started" for t in live)
    job = platform.job(job_id)
    assert state(job) == "Accepted"
