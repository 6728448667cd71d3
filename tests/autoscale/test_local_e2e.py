"""End to end with the local provider: a real master process starts and stops agent processes.

More work than the cluster holds -> hosts are added -> tasks are placed and finish -> the idle
hosts are removed, zones kept balanced, and no running task is ever killed by a scale-down.
"""
import time
from collections import Counter

import pytest

from titus.cli.local_cluster import LocalCluster

pytestmark = pytest.mark.slow

FAST = {
    "TITUS_HEARTBEAT_INTERVAL_SEC": "0.2",
    "TITUS_HEARTBEAT_TIMEOUT_SEC": "5",
    "TITUS_SCHEDULE_INTERVAL_SEC": "0.05",
    "TITUS_RECONCILE_INTERVAL_SEC": "0.2",
    "TITUS_AUTOSCALE_PROVIDER": "local",
    "TITUS_AUTOSCALE_INTERVAL_SEC": "0.5",
}
GROUP = {"name": "batch", "instance_type": {"name": "sim.xlarge", "cpus": 4, "memory_mb": 8192},
         "zones": ["a", "b", "c"], "min_size": 0, "max_size": 8}
JOB = {
    "applicationName": "crunch", "owner": {"teamEmail": "me@me.com"},
    "container": {"image": {"name": "alpine", "tag": "latest"}, "entryPoint": ["/bin/true"],
                  "resources": {"cpu": 1, "memoryMB": 512},
                  "env": {"TITUS_SIM_DURATION_SEC": "4"}},
    "batch": {"size": 22, "runtimeLimitSec": "3600", "retryPolicy": {"immediate": {"retries": 0}}},
}


def wait_for(predicate, timeout, what, cluster):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}\n{cluster.log_tail('master.log')}")


def zones_of(api):
    hosts = api.get("/api/v3/hosts").json()["items"]
    return Counter(h["attributes"]["zone"] for h in hosts if h["attributes"].get("instance_group") == "batch")


def test_hosts_follow_the_work_and_leave_when_idle(tmp_path):
    env = dict(FAST, TITUS_AUTOSCALE_WORKDIR=str(tmp_path / "agents"))
    cluster = LocalCluster(tmp_path, master_env=env)
    try:
        cluster.start_master()
        api = cluster.client()
        assert api.post("/api/v3/instanceGroups", json=GROUP).status_code == 201
        r = api.put("/api/v3/instanceGroups/batch/rule",
                    json={"min_idle": 0, "max_idle": 3, "cooldown_sec": 1})
        assert r.status_code == 200, r.text
        job_id = api.post("/api/v3/jobs", json=JOB).json()["id"]

        # 22 one-cpu tasks on 4-cpu hosts: 6 hosts, two in each zone.
        group = wait_for(lambda: (g := api.get("/api/v3/instanceGroups/batch").json())
                         ["status"]["registered"] >= 6 and g, 60, "six hosts", cluster)
        ups = [a for a in group["actions"] if a["direction"] == "up"]
        assert ups[0]["reason"] == "shortfall" and sum(a["count"] for a in ups) == 6
        assert zones_of(api) == {"a": 2, "b": 2, "c": 2}

        def job_done():
            tasks = api.get("/api/v3/tasks", params={"jobId": job_id, "pageSize": 100}).json()["items"]
            return len(tasks) == 22 and all(t["status"]["state"] == "Finished" for t in tasks) and tasks
        tasks = wait_for(job_done, 90, "the job to finish", cluster)
        # No task was killed or lost by a scale-down: every one ended normally.
        assert all(t["status"]["reasonCode"] == "normal" for t in tasks), \
            [(t["id"], t["status"]) for t in tasks if t["status"]["reasonCode"] != "normal"]

        # The idle hosts beyond max_idle 3 are removed, one from each zone.
        wait_for(lambda: api.get("/api/v3/instanceGroups/batch").json()["status"]["registered"] == 3,
                 60, "three hosts to leave", cluster)
        assert zones_of(api) == {"a": 1, "b": 1, "c": 1}
        actions = api.get("/api/v3/instanceGroups/batch/actions").json()["items"]
        downs = [h for a in actions if a["direction"] == "down" for h in a["hosts"]]
        terminated = [h for a in actions if a["direction"] == "terminate" for h in a["hosts"]]
        assert len(downs) == 3 and sorted(terminated) == sorted(downs)
        assert cluster.crashed() == []
    finally:
        cluster.stop()
