"""Helpers shared by the Docker runtime tests."""
from __future__ import annotations

import os
import queue
import time

TEST_IMAGE = os.environ.get("TITUS_TEST_IMAGE", "titus-test/busybox:latest")


def session_labels(**labels: str) -> dict:
    """``labels`` plus the test session's own (from ``TITUS_DOCKER_LABELS``, set by the root
    conftest): for containers a test creates itself, so the session-end check sees them."""
    from titus.agent.docker_runtime import labels_from_env

    return {**labels_from_env(), **labels}


class StatusLog:
    """Collects the statuses a runtime emits and waits for particular ones."""

    def __init__(self) -> None:
        self.all = []
        self._queue: queue.Queue = queue.Queue()

    def __call__(self, status) -> None:
        self.all.append(status)
        self._queue.put(status)

    def wait_for(self, task_id: str, state: str, timeout: float = 30.0, health: str | None = None):
        """The first status of ``task_id`` in ``state`` (and ``health``), waiting if needed."""
        for status in self.all:
            if status.task_id == task_id and status.state == state and \
                    (health is None or status.health == health):
                return status
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                status = self._queue.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if status.task_id == task_id and status.state == state and \
                    (health is None or status.health == health):
                return status
        seen = [(s.task_id, s.state, s.reason, s.health) for s in self.all if s.task_id == task_id]
        raise AssertionError(f"{task_id} never reached {state}/{health}; saw {seen}")

    def of(self, task_id: str) -> list:
        """Every status emitted for ``task_id`` so far."""
        return [s for s in self.all if s.task_id == task_id]


def spec(task_id: str, command: list[str], **fields):
    """A launch order of the test image running ``command`` with small limits."""
    from titus.protocol import LaunchOrder

    fields.setdefault("memory_mb", 32)
    fields.setdefault("cpus", 0.5)
    fields.setdefault("host_id", "")
    return LaunchOrder(task_id=task_id, job_id=fields.pop("job_id", "job-1"), image=TEST_IMAGE,
                       command=command, **fields)
