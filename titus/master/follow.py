"""What observers of a standby hear: the changes between two read-only copies of the store.

A standby rebuilds a copy of the cluster from the store every second or so (``node.py``);
its observe streams hear, after each rebuild, every job and task whose view changed since the
copy before, in the same ``jobUpdate``/``taskUpdate`` events the leader publishes as it
commits. A job that left the live tables in between was archived: its final views are read
from the archive, so an observer sees it finish on a standby too.
"""
from __future__ import annotations

import logging
from typing import Optional

from titus.master.errors import NotFound, StoreUnavailable
from titus.master.events import EventBus

log = logging.getLogger("titus.master.follow")

Views = dict[tuple[str, str], tuple[str, dict]]


def views_of(master) -> Views:
    """Every live job's and task's view, keyed by (kind, id)."""
    return {(kind, payload["id"]): (payload.get("jobId", payload["id"]), payload)
            for kind, payload in master.queries.observe_snapshot(None)}


def publish_changes(events: EventBus, before: Optional[Views], after_master) -> Views:
    """Publish to ``events`` what changed from ``before`` to ``after_master``'s views;
    returns the new views (for the next call). Nothing is published for the first copy
    (``before`` None) or while nobody listens."""
    after = views_of(after_master) if events.active or before is None else {}
    if before is None or not events.active:
        return after
    for key, (job_id, payload) in after.items():
        old = before.get(key)
        if old is None or old[1] != payload:
            events.publish(key[0], job_id, lambda p=payload: p)
    gone_jobs = {ident for (kind, ident) in before if kind == "jobUpdate"} - {
        ident for (kind, ident) in after if kind == "jobUpdate"}
    for job_id in sorted(gone_jobs):
        _publish_archived(events, after_master, job_id)
    return after


def _publish_archived(events: EventBus, master, job_id: str) -> None:
    """A job that left the live tables: its tasks' and its own final views, from the archive."""
    try:
        job, _archived = master.queries.job(job_id)
        tasks = master.queries.tasks(job_id)
    except (NotFound, StoreUnavailable):  # deleted, or the store is away: nothing to tell
        return
    for view in master.queries.task_views(tasks):
        events.publish("taskUpdate", job_id, lambda v=view: v)
    for view in master.queries.job_views([job]):
        events.publish("jobUpdate", job_id, lambda v=view: v)
