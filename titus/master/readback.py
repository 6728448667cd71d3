"""Reading rows back from the store, whatever an older release wrote into them.

A row that cannot be read back and served (bad JSON, a lone surrogate, a non-finite number,
an unknown state, a malformed port list) is reported — logged once per row and counted — and
skipped, left in the store untouched for an operator. One bad row never stops the master from
starting nor turns a listing into a 500 for everyone.
"""
from __future__ import annotations

import json
import logging
from typing import Callable, Iterable, Optional

from titus import states
from titus.boundary import check_value
from titus.master.records import JobRecord, TaskRecord

log = logging.getLogger("titus.master.readback")


class Skipped:
    """Rows skipped so far: ``rows`` (kind, id), for metrics and /health."""

    def __init__(self):
        self.rows: list[dict] = []
        self._seen: set = set()

    def add(self, kind: str, ident: str, reason: str) -> None:
        """Report one unreadable row (logged the first time it is met)."""
        if (kind, ident) in self._seen:
            return
        self._seen.add((kind, ident))
        self.rows.append({"kind": kind, "id": ident})
        log.error("skipped the stored %s %s: it cannot be read back (%s)", kind, ident, reason)


def job(row: dict) -> JobRecord:
    """A job from its row; ValueError if the row cannot be served."""
    check_value(json.loads(row["descriptor"]), what="stored job")
    check_value({k: v for k, v in row.items() if k != "descriptor"}, what="stored job")
    if row["state"] not in states.JOB_STATES:
        raise ValueError(f"unknown job state {row['state']!r}")
    return JobRecord.from_row(row)


def task(row: dict) -> TaskRecord:
    """A task from its row; ValueError if the row cannot be served."""
    check_value(row, what="stored task")
    if row["state"] not in states.TASK_STATES:
        raise ValueError(f"unknown task state {row['state']!r}")
    record = TaskRecord.from_row(row)
    record.port_list  # noqa: B018  (a malformed port list raises here, not in a listing)
    return record


def each(rows: Iterable[dict], parse: Callable, kind: str, key: str,
         skipped: Optional[Skipped]) -> list:
    """Parsed rows; the ones ``parse`` refuses are reported to ``skipped`` and left out."""
    out = []
    for row in rows:
        try:
            out.append(parse(row))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            if skipped is not None:
                skipped.add(kind, ascii(row.get(key))[:80], str(exc).splitlines()[0][:200])
    return out
