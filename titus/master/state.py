"""The control plane's memory: jobs, tasks, agents, capacity groups and the waiting queue.

It mirrors the store (and is rebuilt from it after a restart). Only the
:class:`~titus.master.ledger.Ledger` changes it; everyone else reads it under :attr:`lock`.
"""
from __future__ import annotations

import heapq
import itertools
import threading
from typing import Optional

from titus import states
from titus.master.capacity import CapacityGroups, demand_of
from titus.master.config import MasterSettings
from titus.master.ids import new_id
from titus.master.queue import PendingQueue
from titus.master.readback import Skipped
from titus.master.records import JobRecord, TaskRecord
from titus.master.registry import AgentRegistry
from titus.resources import PLATFORM_RESOURCES


class ClusterState:
    """Everything the master holds in memory, and the reads every component shares."""

    def __init__(self, settings: MasterSettings):
        self.settings = settings
        self.epoch = 0  # the epoch this master leads in (titus.master.lease); 0 without one
        self._sums = None  # (registry version, host resource sums, zones): _host_sums()
        self.lock = threading.RLock()
        self.jobs: dict[str, JobRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.registry = AgentRegistry()
        self.capacity = CapacityGroups()
        self.queue = PendingQueue()
        self.agent_tasks: dict[str, set[str]] = {}  # agent id -> ids of tasks on its hosts
        self.group_usage: dict[str, dict[str, float]] = {}  # what each group holds on hosts
        self.state_counts: dict[str, int] = {s: 0 for s in states.TASK_STATES}
        self.timers: list = []  # heap of (due, n, task id, kind, stamp)
        self._timer_n = itertools.count()
        self.delayed: set = set()  # ids of waiting tasks with a restart delay (back-off)
        self.idempotency: dict = {}  # (scope, key) -> IdempotencyKey of a submission
        # drained hosts: host id -> Drain (titus.master.relocation), mirrored in the store
        self.drains: dict = {}
        # job id -> Disruption records of its evictions and relocations begun, oldest first
        self.disruptions: dict[str, list] = {}
        self.skipped = Skipped()  # stored rows that could not be read back (reported)
        self.job_seq = 0
        self.task_seq = 0
        self.wake = threading.Event()  # new work for the scheduling loop
        self.sched_dirty = True  # something changed that a round could act on

    # ------------------------------------------------------------------ reads
    def demand(self, job: JobRecord) -> dict[str, float]:
        """What one task of ``job`` needs, in engine resource names (cached per job)."""
        if job.demand_cache is None:
            job.demand_cache = demand_of(job.descriptor.container.resources)
        return job.demand_cache

    def cluster_total(self) -> dict[str, float]:
        """Sum of the resources of every registered host (a copy; recounted only when agents
        come or go: every scheduling round asks)."""
        return dict(self._host_sums()[0])

    def zone_count(self) -> int:
        """How many zones the registered hosts are in (at least 1)."""
        return self._host_sums()[1]

    def _host_sums(self) -> tuple[dict, int]:
        version = self.registry.version
        if self._sums is None or self._sums[0] != version:
            total = dict.fromkeys(PLATFORM_RESOURCES, 0.0)
            zones = set()
            for _, h in self.registry.hosts():
                for r in PLATFORM_RESOURCES:  # HostInfo names its fields after the resources
                    total[r] += getattr(h, r)
                zone = h.attributes.get("zone")
                if zone:
                    zones.add(zone)
            self._sums = (version, total, max(1, len(zones)))
        return self._sums[1], self._sums[2]

    def tasks_on(self, agent_id: str) -> list[TaskRecord]:
        """Tasks the master places on ``agent_id``'s hosts."""
        return [self.tasks[t] for t in self.agent_tasks.get(agent_id, ()) if t in self.tasks]

    # ------------------------------------------------------------------ planning helpers
    def new_task(self, job: JobRecord, idx: int, now: float, *, resubmit_of: str = "",
                 resubmit_number: int = 0, system_resubmit_number: int = 0,
                 retry_at: float = 0.0, consecutive_failures: int = 0,
                 relocates: str = "") -> TaskRecord:
        """A new Accepted task record (not yet committed); ``relocates``: the id of the task a
        relocation's replacement takes over from."""
        self.task_seq += 1
        return TaskRecord(id=new_id(), job_id=job.id, seq=self.task_seq, idx=idx,
                          resubmit_of=resubmit_of, resubmit_number=resubmit_number,
                          system_resubmit_number=system_resubmit_number, retry_at=retry_at,
                          consecutive_failures=consecutive_failures, accepted_at=now,
                          relocates=relocates)

    def new_job(self, descriptor, now: float, submitted_by: str = "") -> JobRecord:
        """A new Accepted job record (not yet committed)."""
        self.job_seq += 1
        return JobRecord(id=new_id(), seq=self.job_seq, descriptor=descriptor, accepted_at=now,
                         submitted_by=submitted_by)

    # ------------------------------------------------------------------ timers
    def push_timer(self, due: float, task_id: str, kind: str, stamp: float) -> None:
        """Arm a timer; it is stale (and dropped) if the task moved on by then."""
        heapq.heappush(self.timers, (due, next(self._timer_n), task_id, kind, stamp))

    def pop_due(self, now: float) -> list[tuple[str, str, float]]:
        """Every timer due by ``now``, as (task id, kind, stamp)."""
        out = []
        while self.timers and self.timers[0][0] <= now:
            _, _, task_id, kind, stamp = heapq.heappop(self.timers)
            out.append((task_id, kind, stamp))
        return out

    def arm_timers(self, task: TaskRecord, job: Optional[JobRecord]) -> None:
        """Timers for a task that just entered its state (stuck states, runtime limit)."""
        s = self.settings
        timeout = {states.LAUNCHED: s.launched_timeout_sec,
                   states.START_INITIATED: s.start_initiated_timeout_sec,
                   states.KILL_INITIATED: s.kill_initiated_timeout_sec}.get(task.state)
        stamp = task.state_time(task.state)
        if timeout and stamp is not None:
            self.push_timer(stamp + timeout, task.id, task.state, stamp)
        if task.state == states.STARTED and job is not None and job.runtime_limit_sec > 0:
            self.push_timer(task.started_at + job.runtime_limit_sec, task.id, "runtime",
                            task.started_at)
