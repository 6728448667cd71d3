"""A unit of work: the changes of one request or round, planned, then committed at once.

Components plan changes into a :class:`Work`; only the :class:`~titus.master.ledger.Ledger`
commits one (store first, then memory, then the outside world). Planned values are visible
through :meth:`Work.get`, so later steps of the same unit see the earlier ones (a heartbeat may
carry StartInitiated, Started and Finished for one task).

Three kinds of change:

- *stored*: new jobs and tasks, task and job field updates, archives, agents, capacity groups,
  event log entries — written in one transaction before anything else happens;
- *noted*: fields kept only in memory (``scheduling_failure``, ``health``, ...), which an agent
  or the next round reports again after a restart;
- *effects*: agent orders, engine hosts coming and going, hosts held off — carried out only
  after the write succeeded.
"""
from __future__ import annotations

from typing import Any

from titus.master.records import JobRecord, TaskRecord


class Work:
    """Planned inserts, updates, archives and follow-ups."""

    __slots__ = ("new_jobs", "new_tasks", "task_updates", "job_updates", "archives", "orders",
                 "done_indices", "touched_jobs", "agents_put", "agent_deletes", "log",
                 "removed_hosts", "added_hosts", "notes", "placed", "capacity_puts",
                 "capacity_deletes", "hold_off", "release", "timers", "holds", "unhold",
                 "keys", "disruptions", "drain_puts", "drain_deletes")

    def __init__(self):
        self.new_jobs: list[JobRecord] = []
        self.new_tasks: list[TaskRecord] = []
        self.task_updates: dict[TaskRecord, dict] = {}
        self.job_updates: dict[JobRecord, dict] = {}
        self.archives: list[JobRecord] = []
        self.orders: list[tuple[str, Any]] = []
        self.done_indices: list[tuple[JobRecord, int, bool]] = []  # (job, index, failed)
        self.touched_jobs: dict[str, JobRecord] = {}
        self.agents_put: list = []  # AgentRecords (re)registered: stored, then in the registry
        self.agent_deletes: list[str] = []
        self.log: list[tuple[str, str, dict]] = []  # (kind, entity id, data) for the event log
        self.removed_hosts: list[str] = []  # leave the engine (their held tasks are released)
        self.added_hosts: list = []  # HostInfos that join the engine
        self.notes: dict[TaskRecord, dict] = {}  # memory-only task fields
        self.placed: list[TaskRecord] = []  # tasks the engine already holds (a round's result)
        self.capacity_puts: list = []  # CapacityGroups created or replaced
        self.capacity_deletes: list[str] = []
        self.hold_off: list[str] = []  # hosts kept out of placement (also across re-registering)
        self.release: list[str] = []  # hosts let back in
        self.unhold: list[str] = []  # hosts no longer held off, left as they are (terminated)
        self.timers: list[tuple[float, str, str, float]] = []  # (due, task id, kind, stamp)
        self.holds: list[TaskRecord] = []  # running tasks to hold on their hosts again
        self.keys: list = []  # IdempotencyKeys of submissions, stored with their job
        self.disruptions: list = []  # Disruptions (evictions, relocations begun): stored
        self.drain_puts: list = []  # Drains of hosts (new or changed): stored, held off
        self.drain_deletes: list[str] = []  # hosts no longer drained: stored, let back in

    # tasks --------------------------------------------------------------------------------
    def update(self, task: TaskRecord, **values) -> None:
        """Plan new values for a task's stored fields."""
        self.task_updates.setdefault(task, {}).update(values)

    def get(self, task: TaskRecord, name: str):
        """A task field as it will be after this work."""
        planned = self.task_updates.get(task)
        if planned is not None and name in planned:
            return planned[name]
        return getattr(task, name)

    def note(self, task: TaskRecord, **values) -> None:
        """Plan new values for a task's memory-only fields (not stored)."""
        self.notes.setdefault(task, {}).update(values)

    def noted(self, task: TaskRecord, name: str):
        """A memory-only task field as it will be after this work."""
        planned = self.notes.get(task)
        if planned is not None and name in planned:
            return planned[name]
        return getattr(task, name)

    def timer(self, due: float, task_id: str, kind: str, stamp: float) -> None:
        """Arm a timer (``unhealthy`` and the like) once this work is applied."""
        self.timers.append((due, task_id, kind, stamp))

    # jobs ---------------------------------------------------------------------------------
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

    # effects ------------------------------------------------------------------------------
    def order(self, agent_id: str, order) -> None:
        """Queue an order for an agent, sent only after the commit."""
        if agent_id:
            self.orders.append((agent_id, order))

    def stored(self) -> bool:
        """Whether this work writes to the store."""
        return bool(self.new_jobs or self.new_tasks or self.task_updates or self.job_updates
                    or self.archives or self.agents_put or self.agent_deletes or self.log
                    or self.capacity_puts or self.capacity_deletes or self.keys
                    or self.disruptions or self.drain_puts or self.drain_deletes)

    def empty(self) -> bool:
        """Nothing to write, note or send."""
        return not (self.stored() or self.orders or self.removed_hosts or self.added_hosts
                    or self.notes or self.placed or self.hold_off or self.release
                    or self.timers or self.done_indices or self.holds or self.unhold)
