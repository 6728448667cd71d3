"""Reading the sim agents' journals (``TITUS_SIM_JOURNAL``) into task runs.

A run is one start of a task id on a host until its end. A run still open when its agent
process ended (a ``crash`` line written by the harness after kill -9, a clean ``close``, or a
new ``boot`` of the same journal) ends there: the sim task died with its process.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional


@dataclass
class Run:
    """One run of a task on a host, from the agent's own report."""

    task: str
    job: str
    index: int
    host: str
    agent: str
    cpus: float
    mem: float
    epoch: Optional[int]
    start: float  # monotonic
    start_wall: float
    end: Optional[float] = None  # None: still running when read
    reason: str = ""  # normal, failed, killed, removed; crash, close, boot: died with the agent

    @property
    def natural_end(self) -> bool:
        """Whether the task ran to its own end (exit 0 or an exit code)."""
        return self.reason in ("normal", "failed")

    def overlaps(self, other: "Run") -> bool:
        """Whether the two runs were alive at the same moment."""
        mine = self.end if self.end is not None else float("inf")
        theirs = other.end if other.end is not None else float("inf")
        return self.start < theirs and other.start < mine


def read_runs(paths: Iterable[Path]) -> list[Run]:
    """Every run in the journals at ``paths`` (agent name: the file's stem after ``journal-``)."""
    runs: list[Run] = []
    for path in paths:
        agent = path.stem.replace("journal-", "")
        if not path.exists():
            continue
        open_runs: dict[str, Run] = {}
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by kill -9
            event = record.get("ev")
            if event == "start":
                run = Run(record["task"], record["job"], int(record.get("index") or 0),
                          record["host"], agent, float(record["cpus"]), float(record["mem"]),
                          record.get("epoch"), record["mono"], record["wall"])
                open_runs[run.task] = run
                runs.append(run)
            elif event == "end":
                run = open_runs.pop(record["task"], None)
                if run is not None:
                    run.end, run.reason = record["mono"], record["reason"]
            elif event in ("crash", "close", "boot"):
                for run in open_runs.values():
                    run.end, run.reason = record["mono"], event
                open_runs.clear()
    return runs
