"""The work of one trial: batch jobs (some failing on purpose) and service jobs resized on
the way, all drawn from the trial's seeded RNG, submitted through any master."""
from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional

from tests.chaos.client import ChaosClient, GaveUp
from tests.integration.platform import batch_job, service_job


@dataclass
class JobPlan:
    """One job to submit: its descriptor, what it should end as, and what happened."""

    kind: str  # "batch" | "service"
    name: str
    descriptor: dict
    key: str  # Idempotency-Key, the same on every retry
    size: int = 0  # batch: indexes
    retries: int = 0  # batch: the retry policy's retries
    exit_code: int = 0  # batch: every attempt exits with this
    desired: int = 0  # service: the desired count at the end
    resize_to: Optional[int] = None  # service: resized to this during the trial
    job_id: Optional[str] = None
    error: Optional[str] = None


@dataclass
class Workload:
    """Every job of a trial, and the thread that submits and resizes them."""

    plans: list[JobPlan]
    gaps: list[float]  # seconds before each submit
    resize_after: float  # seconds after the last submit before the resizes
    done: threading.Event = field(default_factory=threading.Event)

    def run(self, client: ChaosClient) -> None:
        """Submit every job, then resize the service jobs (called in a thread)."""
        try:
            for plan, gap in zip(self.plans, self.gaps):
                time.sleep(gap)
                try:
                    plan.job_id = client.submit(plan.descriptor, plan.key)
                except GaveUp as exc:
                    plan.error = str(exc)
            time.sleep(self.resize_after)
            for plan in self.plans:
                if plan.kind == "service" and plan.job_id and plan.resize_to is not None:
                    try:
                        client.resize(plan.job_id, plan.resize_to)
                        plan.desired = plan.resize_to
                    except GaveUp as exc:
                        plan.error = str(exc)
        finally:
            self.done.set()

    def start(self, client: ChaosClient) -> threading.Thread:
        """Run in a background thread."""
        thread = threading.Thread(target=self.run, args=(client,), name="workload",
                                  daemon=True)
        thread.start()
        return thread


def make_workload(rng: random.Random, prefix: str, *, batch_jobs: int = 3,
                  service_jobs: int = 2) -> Workload:
    """A seeded mix: ``batch_jobs`` batch jobs of 2-5 indexes running 1-3 s (one in three
    exits 1 on every attempt, with 0-2 retries) and ``service_jobs`` service jobs of 1-3
    tasks, each resized to 1-4 during the trial."""
    plans: list[JobPlan] = []
    for number in range(batch_jobs):
        size = rng.randint(2, 5)
        retries = rng.randint(0, 2)
        exit_code = 1 if number % 3 == 2 else 0
        name = f"{prefix}-batch{number}"
        descriptor = batch_job(size, duration=round(rng.uniform(1.0, 3.0), 2),
                               exit_code=exit_code, retries=retries, name=name)
        plans.append(JobPlan("batch", name, descriptor, _key(rng), size=size,
                             retries=retries, exit_code=exit_code))
    for number in range(service_jobs):
        desired = rng.randint(1, 3)
        name = f"{prefix}-service{number}"
        plans.append(JobPlan("service", name, service_job(desired, maximum=10, name=name),
                             _key(rng), desired=desired, resize_to=rng.randint(1, 4)))
    rng.shuffle(plans)
    return Workload(plans, [round(rng.uniform(0.0, 0.4), 2) for _ in plans],
                    round(rng.uniform(0.0, 3.0), 2))


def _key(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))
