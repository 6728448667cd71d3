"""``titus events``: the event log, then (``--follow``) live job and task changes.

History comes from ``GET /api/v3/events`` (the store's event log: jobs accepted, killed,
resized, finished; tasks backing off, launches sent again; agents registered or lost).
``--follow`` then keeps printing every job and task change from the observe stream
(``GET /api/v3/observe``, server-sent events) until Ctrl-C — or, with ``--task``, until that
task has finished.
"""
from __future__ import annotations

import json
from typing import Iterator, Optional

import click
import httpx

from titus.cli import main
from titus.cli.client import Client, connection_options, describe_error, print_json
from titus.cli.describe import event_words
from titus.cli.show import printable, when
from titus.cli.tasks import ended_reason

DEFAULT_LIMIT = 50


@main.command("events")
@click.option("--job", "job_id", default=None, help="Only this job and its tasks.")
@click.option("--task", "task_id", default=None, help="Only this task.")
@click.option("--limit", type=click.IntRange(min=0), default=DEFAULT_LIMIT, show_default=True,
              help="The newest this many entries of the log (0: none, only --follow).")
@click.option("--follow", "-f", is_flag=True,
              help="Then print job and task changes as they happen, until Ctrl-C.")
@connection_options
def events(job_id, task_id, limit, follow, url, token, as_json):
    """Print the event log (oldest first), then with --follow live job and task changes."""
    client = Client(url, token, timeout=httpx.Timeout(30.0, read=None) if follow else 30.0)
    params = {k: v for k, v in {"jobId": job_id, "taskId": task_id}.items() if v}
    history = newest(client, params, limit) if limit else []
    for entry in history:
        print_json(entry) if as_json else click.echo(printable(log_line(entry)))
    if not follow:
        if not history and not as_json:
            click.echo("no events" + (" yet" if params else "") + "; --follow waits for changes")
        return
    if task_id and not job_id:  # the stream filters by job: find the task's
        job_id = client.request("GET", f"/api/v3/tasks/{task_id}")["jobId"]
    try:
        for kind, payload in observe(client, job_id):
            if task_id and (kind != "taskUpdate" or payload.get("id") != task_id):
                continue
            if as_json:
                click.echo(json.dumps({"kind": kind, **payload}))
            else:
                click.echo(printable(change_line(kind, payload)))
            if task_id and payload.get("status", {}).get("state") == "Finished":
                return
    except KeyboardInterrupt:
        return


def newest(client: Client, params: dict, limit: int) -> list[dict]:
    """The newest ``limit`` entries of the log (all pages walked), oldest first."""
    items: list = []
    cursor = ""
    while True:
        query = dict(params, limit=1000, **({"cursor": cursor} if cursor else {}))
        page = client.request("GET", "/api/v3/events", params=query)
        items = (items + page.get("items", []))[-limit:]
        cursor = page.get("pagination", {}).get("cursor", "")
        if not page.get("pagination", {}).get("hasMore") or not cursor:
            return items


def observe(client: Client, job_id: Optional[str]) -> Iterator[tuple[str, dict]]:
    """Live changes from the observe stream (its snapshot skipped): (kind, payload)."""
    params = {"jobId": job_id} if job_id else {}
    with client.stream("GET", "/api/v3/observe", params=params) as response:
        if response.status_code >= 400:
            response.read()
            raise click.ClickException(describe_error(response))
        live, kind, data = False, "", []
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line:  # end of one event
                if kind == "snapshotEnd":
                    live = True
                elif live and kind and data:
                    try:
                        payload = json.loads("\n".join(data))
                    except ValueError:
                        payload = None
                    if isinstance(payload, dict):
                        yield kind, payload
                kind, data = "", []


def log_line(entry: dict) -> str:
    """One line of the event log: time, kind, entity, details."""
    return (f"{when(entry.get('timestamp'))}  {entry.get('kind', ''):<18} "
            f"{entry.get('entityId', '')}  {event_words(entry)}").rstrip()


def change_line(kind: str, payload: dict) -> str:
    """One line for a live change: time, job or task, its new state and where."""
    status = payload.get("status") or {}
    stamp = when(status.get("timestamp"))
    state = status.get("state", "")
    reason = ended_reason(status)
    if reason:
        state += f" {reason}"
        if status.get("reasonMessage"):
            state += f" ({status['reasonMessage']})"
    if kind == "taskUpdate":
        where = f" on {payload['hostId']}" if payload.get("hostId") else ""
        waiting = payload.get("schedulingFailure")
        tail = f" waiting: {waiting}" if waiting and status.get("state") == "Accepted" else ""
        return (f"{stamp}  task {payload.get('id')} (job {payload.get('jobId')} index "
                f"{payload.get('index')}) {state}{where}{tail}")
    if kind == "jobUpdate":
        name = (payload.get("jobDescriptor") or {}).get("applicationName", "")
        return f"{stamp}  job {payload.get('id')} ({name}) {state}"
    return f"{stamp}  {kind} {json.dumps(payload)[:300]}"
