"""In-memory records of jobs and tasks, and their store rows.

Memory mirrors the store (it is rebuilt from it after a restart); the few fields that are not
stored (``scheduling_failure``, ``health``, ``in_engine``) are recomputed as the master runs.
"""
from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from titus import states
from titus.master.budget import default_budget
from titus.master.model import DisruptionBudget, JobDescriptor
from titus.master.retry import RetryRule

DEFAULT_GROUP = "DEFAULT"


@dataclass(eq=False, slots=True)
class TaskRecord:
    """One task (one attempt at one index of a job)."""

    id: str
    job_id: str
    seq: int
    idx: int
    state: str = states.ACCEPTED
    reason_code: str = ""
    reason_message: str = ""
    kill_reason: str = ""
    host_id: str = ""
    agent_id: str = ""
    ports: str = ""
    resubmit_of: str = ""
    resubmit_number: int = 0
    system_resubmit_number: int = 0
    exit_code: Optional[int] = None
    retry_at: float = 0.0
    # quick failures in a row of this index before this task (crash-loop back-off)
    consecutive_failures: int = 0
    launch_attempts: int = 0  # launch orders sent (a re-send after its agent came back adds one)
    # a relocation's replacement: the id of the task it takes over from (make-before-break:
    # that task is killed with ``relocated`` once this one is healthy); "" otherwise
    relocates: str = ""
    accepted_at: float = 0.0
    launched_at: Optional[float] = None
    start_initiated_at: Optional[float] = None
    started_at: Optional[float] = None
    kill_initiated_at: Optional[float] = None
    finished_at: Optional[float] = None
    # not stored
    scheduling_failure: str = ""
    capacity_limited: bool = False  # waits on its capacity group's limit, not for a host
    health: Optional[str] = None
    unhealthy_since: Optional[float] = None
    in_engine: bool = False

    ROW_FIELDS: ClassVar[tuple] = ("id", "job_id", "seq", "idx", "state", "reason_code", "reason_message",
                  "kill_reason", "host_id", "agent_id", "ports", "resubmit_of", "resubmit_number",
                  "system_resubmit_number", "exit_code", "retry_at", "accepted_at", "launched_at",
                  "start_initiated_at", "started_at", "kill_initiated_at", "finished_at",
                  "consecutive_failures", "launch_attempts", "relocates")

    def row(self) -> dict:
        """The store row."""
        return {name: getattr(self, name) for name in self.ROW_FIELDS}

    def row_tuple(self) -> tuple:
        """The store row as a tuple in ``ROW_FIELDS`` order (the fast insert path)."""
        return _ROW_GETTER(self)

    @classmethod
    def from_row(cls, row: dict) -> "TaskRecord":
        """A record from a store row."""
        return cls(**{name: row[name] for name in cls.ROW_FIELDS if name in row})

    @property
    def user_retries_used(self) -> int:
        """Resubmits of this index that consumed the user's retries."""
        return self.resubmit_number - self.system_resubmit_number

    @property
    def backing_off(self) -> bool:
        """A replacement held back by a restart delay that has not been placed yet (once
        ``retry_at`` has passed it only waits for a host)."""
        return self.state == states.ACCEPTED and self.retry_at > 0

    @property
    def port_list(self) -> list[int]:
        """Ports given to the task."""
        return [int(p) for p in self.ports.split(",") if p]

    def state_time(self, state: str) -> Optional[float]:
        """When the task entered ``state`` (None if it never did)."""
        return getattr(self, _STATE_TIME[state])


_ROW_GETTER = operator.attrgetter(*TaskRecord.ROW_FIELDS)

_STATE_TIME = {
    states.ACCEPTED: "accepted_at", states.LAUNCHED: "launched_at",
    states.START_INITIATED: "start_initiated_at", states.STARTED: "started_at",
    states.KILL_INITIATED: "kill_initiated_at", states.FINISHED: "finished_at",
}


def state_time_field(state: str) -> str:
    """The task column holding when it entered ``state``."""
    return _STATE_TIME[state]


@dataclass(eq=False)
class JobRecord:
    """One job and the bookkeeping of its tasks."""

    id: str
    seq: int
    descriptor: JobDescriptor
    state: str = states.ACCEPTED
    reason_code: str = ""
    reason_message: str = ""
    accepted_at: float = 0.0
    kill_initiated_at: Optional[float] = None
    finished_at: Optional[float] = None
    submitted_by: str = ""  # the principal that submitted it ("" before principals existed)
    # derived / bookkeeping
    tasks: dict = field(default_factory=dict)  # task id -> TaskRecord (this job's, all kept)
    done_indices: set = field(default_factory=set)  # batch: indices ended for good
    failed_indices: set = field(default_factory=set)  # batch: of those, ended not normally
    live_count: int = 0  # tasks not Finished
    demand_cache: Optional[dict] = None
    rule_cache: Optional[RetryRule] = None
    next_index: int = 0
    engine_cache: dict = field(default_factory=dict)  # zone count -> engine constraints
    wire_cache: Optional[tuple] = None  # (secret pattern, descriptor as views show it)

    @property
    def batch(self) -> bool:
        """Batch (True) or service (False)."""
        return self.descriptor.batch is not None

    @property
    def group(self) -> str:
        """The capacity group name (``DEFAULT`` when none is given)."""
        return self.descriptor.capacityGroup or DEFAULT_GROUP

    @property
    def size(self) -> int:
        """Batch size, or the service's desired count."""
        if self.batch:
            return self.descriptor.batch.size
        return self.descriptor.service.capacity.desired

    @property
    def rule(self) -> RetryRule:
        """The job's retry rule."""
        if self.rule_cache is None:
            spec = self.descriptor.batch or self.descriptor.service
            self.rule_cache = RetryRule.from_policy(spec.retryPolicy)
        return self.rule_cache

    @property
    def budget(self) -> DisruptionBudget:
        """The job's disruption budget (its type's default if it has none: a job stored
        before budgets existed)."""
        b = self.descriptor.disruptionBudget
        return b if b is not None else default_budget(self.batch)

    @property
    def gang(self) -> bool:
        """A batch job asking for gang scheduling (``batch.gangScheduling``)."""
        return self.batch and bool(getattr(self.descriptor.batch, "gangScheduling", False))

    def gang_pending(self) -> bool:
        """Whether the job's tasks still go as one gang: a gang job none of whose tasks has
        been launched yet. A member killed while the gang waits is replaced inside the gang
        (its replacement waits with the others); once the gang has started, a retry of a
        failed member is placed on its own."""
        if not self.gang:
            return False
        return all(t.launched_at is None for t in self.tasks.values())

    @property
    def runtime_limit_sec(self) -> float:
        """Batch runtime limit in seconds (0: none)."""
        return float(self.descriptor.batch.runtimeLimitSec) if self.batch else 0.0

    @property
    def kill_grace_sec(self) -> float:
        """Seconds between SIGTERM and SIGKILL."""
        g = self.descriptor.container.killGracePeriodSeconds
        return 10.0 if g is None else float(g)

    def row(self) -> dict:
        """The store row."""
        return {"id": self.id, "seq": self.seq, "state": self.state,
                "reason_code": self.reason_code, "reason_message": self.reason_message,
                "descriptor": json.dumps(self.descriptor.wire()), "accepted_at": self.accepted_at,
                "kill_initiated_at": self.kill_initiated_at, "finished_at": self.finished_at,
                "submitted_by": self.submitted_by}

    @classmethod
    def from_row(cls, row: dict) -> "JobRecord":
        """A record from a store row (tasks are attached by the caller)."""
        descriptor = JobDescriptor.model_validate(json.loads(row["descriptor"]))
        if descriptor.disruptionBudget is None:  # stored before budgets: its type's default
            descriptor.disruptionBudget = default_budget(descriptor.batch is not None)
        return cls(id=row["id"], seq=row["seq"], descriptor=descriptor,
                   state=row["state"], reason_code=row["reason_code"] or "",
                   reason_message=row["reason_message"] or "", accepted_at=row["accepted_at"],
                   kill_initiated_at=row["kill_initiated_at"], finished_at=row["finished_at"],
                   submitted_by=row.get("submitted_by") or "")
