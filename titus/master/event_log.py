"""The event log read back: pages of ``GET /api/v3/events`` with an opaque cursor.

The log is the store's ``events`` table, appended by the ledger in the commit of each change
it records (``jobAccepted``, ``jobKillInitiated``, ``jobResized``, ``jobFinished``,
``taskBackingOff``, ``taskLaunchResent``, ``agentRegistered``, ``agentLost``) and trimmed to
its newest ``events_keep`` entries by the reconciler.

Paging: a cursor stands for the position of the last entry a page returned; the next page
starts after it. Entries are numbered in the order they were committed (the ledger commits
one change at a time, under the state lock), so a page read while changes are appended never
skips nor repeats one; an entry trimmed away meanwhile is simply gone. The cursor is opaque
to clients (base64url of a versioned position); one that was not made here is a 400.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Optional

from titus.master.errors import NotFound
from titus.master.queries import Queries
from titus.master.validation import Problem, SpecError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Longest id looked up: no stored id is longer (the store's id columns hold 255 characters).
MAX_ID_CHARS = 255
_CURSOR = re.compile(r"ev1:(\d{1,18})")


def encode_cursor(seq: int) -> str:
    """The opaque cursor of the log position ``seq``."""
    return base64.urlsafe_b64encode(f"ev1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: Optional[str]) -> int:
    """The log position of a cursor (0: the start); SpecError (400) naming ``cursor`` if it
    was not made by :func:`encode_cursor`."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        match = _CURSOR.fullmatch(text.decode("ascii"))
    except (UnicodeError, ValueError, binascii.Error):
        match = None
    if match is None:
        raise SpecError([Problem("cursor", "must be a cursor returned by a previous page",
                                 cursor[:100])], "query")
    return int(match.group(1))


def check_limit(limit: int) -> int:
    """A page size between 1 and :data:`MAX_LIMIT`, else a 400 naming ``limit``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise SpecError([Problem("limit", f"must be between 1 and {MAX_LIMIT}", limit)],
                        "query")
    return limit


def event_view(row: dict) -> dict:
    """One entry as the API shows it: ``cursor`` (resume after it), ``timestamp`` (epoch ms
    as a string), ``kind``, ``entityId`` and its ``data``, with ``jobId``/``taskId``/``agentId``
    where the entry names them."""
    try:
        data = json.loads(row["data"]) if row["data"] else {}
    except ValueError:
        data = {"raw": row["data"]}
    if not isinstance(data, dict):
        data = {"value": data}
    kind, entity = row["kind"], row["entity_id"]
    view = {"cursor": encode_cursor(row["seq"]), "timestamp": str(int(row["ts"] * 1000)),
            "kind": kind, "entityId": entity}
    if kind.startswith("job"):
        view["jobId"] = entity
    elif kind.startswith("agent"):
        view["agentId"] = entity
    elif kind.startswith("task"):
        if "jobId" in data:  # the entry is about the task itself
            view.update(jobId=data["jobId"], taskId=entity)
        else:  # about one of the job's tasks, named in the data
            view["jobId"] = entity
            if isinstance(data.get("taskId"), str):
                view["taskId"] = data["taskId"]
    view["data"] = data
    return view


def events_page(queries: Queries, job_id: Optional[str], task_id: Optional[str],
                cursor: Optional[str], limit: int) -> dict:
    """One page of the log, oldest first: ``{"items": [...], "pagination": {"cursor",
    "hasMore"}}``. ``pagination.cursor`` is where the next read resumes, also when the page is
    empty (a poller keeps it and asks again later). NotFound for a job or task that never
    existed; SpecError for a bad cursor or limit."""
    check_limit(limit)
    after = decode_cursor(cursor)
    task_job_id = None
    if job_id:
        if len(job_id) > MAX_ID_CHARS:
            raise NotFound(job_id[:MAX_ID_CHARS])
        queries.job(job_id)  # NotFound if it never existed
    if task_id:
        if len(task_id) > MAX_ID_CHARS:
            raise NotFound(task_id[:MAX_ID_CHARS])
        task_job_id = queries.task(task_id)[0].job_id
    rows = queries.store.events_of(after, limit + 1, job_id=job_id or None,
                                   task_id=task_id or None, task_job_id=task_job_id)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["seq"]) if rows else (cursor or encode_cursor(0))
    return {"items": [event_view(r) for r in rows],
            "pagination": {"cursor": next_cursor, "hasMore": more}}
