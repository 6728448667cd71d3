"""A local platform for integration tests: processes from ``LocalCluster`` plus small
helpers for the master's REST API (submit, read, kill, scale, wait)."""
from __future__ import annotations

import time
from typing import Callable, Optional

from titus.cli.local_cluster import LocalCluster


def batch_job(size: int, *, duration: float = 0.0, exit_code: int = 0, retries: int = 0,
              runtime_limit_sec: int = 0, cpu: float = 1.0, memory_mb: int = 512,
              name: str = "it-batch", kill_delay: float = 0.0) -> dict:
    """A Titus v3 batch job descriptor for sim tasks."""
    batch = {"size": size, "retryPolicy": {"immediate": {"retries": retries}}}
    if runtime_limit_sec:
        batch["runtimeLimitSec"] = str(runtime_limit_sec)
    return {
        "applicationName": name, "owner": {"teamEmail": "it@example.com"},
        "container": {
            "image": {"name": "sim", "tag": "latest"},
            "env": {"TITUS_SIM_DURATION_SEC": str(duration),
                    "TITUS_SIM_EXIT_CODE": str(exit_code),
                    "TITUS_SIM_KILL_DELAY_SEC": str(kill_delay)},
            "resources": {"cpu": cpu, "memoryMB": memory_mb},
            "killGracePeriodSeconds": 1,
        },
        "batch": batch,
    }


def service_job(desired: int, *, minimum: int = 0, maximum: int = 100, cpu: float = 1.0,
                name: str = "it-service") -> dict:
    """A Titus v3 service job descriptor whose sim tasks run for a day."""
    return {
        "applicationName": name, "owner": {"teamEmail": "it@example.com"},
        "container": {
            "image": {"name": "sim", "tag": "latest"},
            "env": {"TITUS_SIM_DURATION_SEC": "86400"},
            "resources": {"cpu": cpu, "memoryMB": 512},
            "killGracePeriodSeconds": 1,
        },
        "service": {"capacity": {"min": minimum, "desired": desired, "max": maximum},
                    "retryPolicy": {"immediate": {"retries": 1000}}},
    }


def state(item: dict) -> str:
    """A job's or task's state."""
    return item["status"]["state"]


def reason(item: dict) -> str:
    """A job's or task's reason code."""
    return item["status"].get("reasonCode", "")


class Platform(LocalCluster):
    """Master and sim agents as processes, with REST helpers."""

    _api = None

    @property
    def api(self):
        """An authenticated HTTP client for the master (re-made after a master restart)."""
        if self._api is None:
            self._api = self.client()
        return self._api

    def submit(self, descriptor: dict) -> str:
        """Create a job; returns its id."""
        response = self.api.post("/api/v3/jobs", json=descriptor)
        assert response.status_code in (200, 201, 202), response.text
        body = response.json()
        return body["id"] if isinstance(body, dict) else str(body)

    def job(self, job_id: str) -> dict:
        """The job as the REST API shows it (archived jobs included)."""
        response = self.api.get(f"/api/v3/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def tasks(self, job_id: str) -> list[dict]:
        """Every task of the job, all pages, finished ones included."""
        items: list[dict] = []
        cursor: Optional[str] = None
        while True:
            params = {"jobId": job_id, "pageSize": 5000}
            if cursor:
                params["cursor"] = cursor
            response = self.api.get("/api/v3/tasks", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            items += body["items"]
            page = body.get("pagination") or {}
            cursor = page.get("cursor")
            if not page.get("hasMore") or not cursor:
                return items

    def kill_job(self, job_id: str) -> None:
        """Kill a job."""
        response = self.api.delete(f"/api/v3/jobs/{job_id}")
        assert response.status_code in (200, 202, 204), response.text

    def scale(self, job_id: str, desired: int, minimum: int = 0, maximum: int = 100) -> None:
        """Resize a service job."""
        response = self.api.put(f"/api/v3/jobs/{job_id}/instances",
                                json={"min": minimum, "desired": desired, "max": maximum})
        assert response.status_code in (200, 202, 204), response.text

    def wait_for(self, check: Callable[[], object], timeout: float, what: str):
        """Poll ``check`` until it returns something truthy; fail with ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            dead = self.crashed()
            assert not dead, f"{dead} died while waiting for {what}:\n" \
                             f"{self.log_tail('master.log')}"
            last = check()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")

    def wait_job_finished(self, job_id: str, timeout: float = 60) -> dict:
        """Wait until the job is Finished; returns it."""
        return self.wait_for(lambda: (job := self.job(job_id)) and state(job) == "Finished"
                             and job, timeout, f"job {job_id} to finish")

    def running(self, job_id: str) -> list[dict]:
        """The job's tasks in state Started."""
        return [task for task in self.tasks(job_id) if state(task) == "Started"]

    def stop(self, timeout: float = 10.0) -> None:
        """Close the API client, then stop every process."""
        if self._api is not None:
            self._api.close()
            self._api = None
        super().stop(timeout)
