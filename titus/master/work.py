"""A unit of work: the changes of one request or round, planned, then committed at once.

The master plans changes into a :class:`Work`, writes them to the store in one transaction,
and only then applies them to memory and tells the outside world (agent orders, observers).
Planned values are visible through :meth:`Work.get`, so later steps of the same unit see the
earlier ones (a heartbeat may carry StartInitiated, Started and Finished for one task).
"""
from __future__ import annotations

from typing import Any

from titus.master.records import JobRecord, TaskRecord


class Work:
    """Planned inserts, updates, archives and follow-ups."""

    def __init__(self):
        self.new_jobs: list[JobRecord] = []
        self.new_tasks: list[TaskRecord] = []
        self.task_updates: dict[TaskRecord, dict] = {}
        self.job_updates: dict[JobRecord, dict] = {}
        self.archives: list[JobRecord] = []
        self.orders: list[tuple[str, Any]] = []
        self.done_indices: list[tuple[JobRecord, int, bool]] = []  # (job, index, failed)
        self.touched_jobs: dict[str, JobRecord] = {}
        self.agent_rows: list[dict] = []
        self.agent_deletes: list[str] = []
        self.log: list[tuple[str, str, dict]] = []  # (kind, entity id, data) for the event log
        self.removed_hosts: list[str] = []

    def update(self, task: TaskRecord, **values) -> None:
        """Plan new values for a task's stored fields."""
        self.task_updates.setdefault(task, {}).update(values)

    def get(self, task: TaskRecord, name: str):
        """A task field as it will be after this work."""
        planned = self.task_updates.get(task)
        if planned is not None and name in planned:
            return planned[name]
        return getattr(task, name)

    def update_job(self, job: JobRecord, **values) -> None:
        """Plan new values for a job's stored fields."""
        self.job_updates.setdefault(job, {}).update(values)
        self.touched_jobs[job.id] = job

    def job_get(self, job: JobRecord, name: str):
        """A job field as it will be after this work."""
        planned = self.job_updates.get(job)
        if planned is not None and name in planned:
            return planned[name]
        return getattr(job, name)

    def touch(self, job: JobRecord) -> None:
        """Check the job (completion, desired count) after this work is applied."""
        self.touched_jobs[job.id] = job

    def order(self, agent_id: str, order) -> None:
        """Queue an order for an agent, sent only after the commit."""
        if agent_id:
            self.orders.append((agent_id, order))

    def empty(self) -> bool:
        """Nothing to write or send."""
        return not (self.new_jobs or self.new_tasks or self.task_updates or self.job_updates
                    or self.archives or self.orders or self.agent_rows or self.agent_deletes
                    or self.removed_hosts)
