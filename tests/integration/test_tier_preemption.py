"""Tier preemption on a real master with sim agents: a Critical task that fits nowhere evicts
Flex tasks (reason ``preempted``), which their job replaces."""
from tests.integration.platform import batch_job, reason, state


def test_critical_task_preempts_flex_tasks(platform):
    platform.start_agent("a1", hosts=2, cpus=4)
    flex = platform.submit(batch_job(8, duration=600, name="flex"))
    platform.wait_for(lambda: len(platform.running(flex)) == 8, 30, "the Flex job fills the cluster")
    group = {"name": "gold", "tier": "Critical", "resources": {"cpu": 4, "memoryMB": 4096}}
    r = platform.api.post("/api/v3/capacityGroups", json=group)
    assert r.status_code in (200, 201), r.text
    assert platform.api.get("/api/v3/capacityGroups/gold").json().get("preemption") is None
    crit = platform.submit({**batch_job(1, duration=600, cpu=2, name="crit"), "capacityGroup": "gold"})
    platform.wait_for(lambda: len(platform.running(crit)) == 1, 30, "the Critical task started")

    def preempted():
        return [t for t in platform.tasks(flex) if state(t) == "Finished" and reason(t) == "preempted"]
    platform.wait_for(lambda: len(preempted()) == 2, 30, "two Flex tasks preempted")
    waiting = [t for t in platform.tasks(flex) if state(t) == "Accepted"]
    assert len(waiting) == 2  # replaced, waiting for room
