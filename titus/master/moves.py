"""Records of moving work: drained hosts and disruptions (evictions, relocations begun).

Both live in memory (``ClusterState.drains``, ``ClusterState.disruptions``) and in the store
(``drained_hosts``, ``disruptions``); only the ledger changes them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional


@dataclass(frozen=True)
class Drain:
    """A host being drained since ``since`` (epoch s) at ``by``'s request; batch tasks still
    on it at ``deadline`` (epoch s, None: never) are killed and run elsewhere."""

    host_id: str
    since: float
    deadline: Optional[float] = None
    by: str = ""

    def row(self) -> dict:
        """The store row."""
        return {"host_id": self.host_id, "since": self.since, "deadline": self.deadline,
                "actor": self.by}

    @classmethod
    def from_row(cls, row: dict) -> "Drain":
        """A record from a store row."""
        return cls(row["host_id"], float(row["since"]),
                   None if row["deadline"] is None else float(row["deadline"]),
                   row.get("actor") or "")

    def view(self) -> dict:
        """As the REST API shows it."""
        return {"since": self.since, "deadline": self.deadline, "by": self.by}


@dataclass(frozen=True)
class Disruption:
    """Task ``task_id`` (index ``idx`` of job ``job_id``) was ``kind`` ("evicted" or
    "relocated") at ``at`` (epoch s) by ``by`` (a principal, or "drain")."""

    task_id: str
    job_id: str
    idx: int
    kind: str
    at: float
    by: str = ""

    def row(self) -> dict:
        """The store row."""
        data = asdict(self)
        data["actor"] = data.pop("by")
        return data

    @classmethod
    def from_row(cls, row: dict) -> "Disruption":
        """A record from a store row."""
        return cls(row["task_id"], row["job_id"], int(row["idx"]), row["kind"],
                   float(row["at"]), row.get("actor") or "")
