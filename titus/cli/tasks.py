"""``titus task list|get|kill|logs`` (``describe``: :mod:`titus.cli.describe`)."""
from __future__ import annotations

import click

from titus.cli import main
from titus.cli.client import (Client, ca_option, connection_options, describe_error, print_json,
                              print_more, print_table)
from titus.cli.show import age


@main.group("task")
def task_group():
    """Inspect and kill tasks."""


ACTIVE_STATES = "Accepted,Launched,StartInitiated,Started,KillInitiated"
DEFAULT_LIMIT = 50


def created_at(item: dict):
    """When a job or task was accepted (epoch ms string), from its status history."""
    for status in [*item.get("statusHistory", []), item.get("status", {})]:
        if status.get("state") == "Accepted":
            return status.get("timestamp")
    return (item.get("status") or {}).get("timestamp")


def ended_reason(status: dict) -> str:
    """A status's reason, shown only once it has ended (a waiting task has none yet)."""
    return status.get("reasonCode", "") if status.get("state") == "Finished" else ""


def task_row(t: dict) -> list:
    s = t.get("status", {})
    return [t["id"], t.get("jobId"), t.get("index"), s.get("state"), ended_reason(s),
            t.get("hostId") or "", age(created_at(t)), t.get("resubmitNumber", 0),
            t.get("schedulingFailure") or s.get("reasonMessage") or ""]


TASK_COLUMNS = ["id", "job", "index", "state", "reason", "host", "age", "resubmits", "message"]


def state_filter(value: str) -> str:
    """``taskStates`` for ``--state``: ``active`` (every state but Finished), ``all`` (no
    filter), or the comma-separated states given."""
    low = value.strip().lower()
    if low == "active":
        return ACTIVE_STATES
    return "" if low == "all" else value


@task_group.command("list")
@click.option("--job", "job_id", default=None, help="Only tasks of this job.")
@click.option("--state", "states", default="active", show_default=True,
              help="active (not yet Finished), all, or comma-separated task states "
                   "(e.g. Started,Finished).")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="At most this many tasks (the oldest first).")
@connection_options
def list_tasks(job_id, states, limit, url, token, as_json):
    """List tasks, oldest first: active ones unless --state says otherwise."""
    wanted = state_filter(states)
    params = {k: v for k, v in {"jobId": job_id, "taskStates": wanted}.items() if v}
    tasks, total = Client(url, token).pages_total("/api/v3/tasks", params, limit)
    if as_json:
        print_json(tasks)
        return
    print_table("tasks", TASK_COLUMNS, [task_row(t) for t in tasks])
    print_more(len(tasks), total, "tasks")


@task_group.command("get")
@click.argument("task_id")
@connection_options
def get(task_id, url, token, as_json):
    """Show one task in full (as ``titus task describe``; --json: the task as the API has
    it)."""
    from titus.cli.describe import describe_task

    client = Client(url, token)
    if as_json:
        print_json(client.request("GET", f"/api/v3/tasks/{task_id}"))
        return
    describe_task(client, task_id)


@task_group.command("kill")
@click.argument("task_id")
@click.option("--shrink", is_flag=True, help="Lower the service job's desired count too.")
@connection_options
def kill(task_id, shrink, url, token, as_json):
    """Kill a task (a service job replaces it unless --shrink)."""
    task = Client(url, token).request("DELETE", f"/api/v3/tasks/{task_id}",
                                      params={"shrink": str(shrink).lower()})
    print_json(task) if as_json else click.echo(f"{task_id}: {task['status']['state']}")


@task_group.command("logs")
@click.argument("task_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the task ends.")
@click.option("--url", envvar="TITUS_URL", default="http://127.0.0.1:7001", show_default=True)
@click.option("--token", envvar="TITUS_TOKEN", default=None)
@ca_option
def logs(task_id, follow, url, token):
    """Print a task's output (read from its agent through the master)."""
    import httpx

    client = Client(url, token, timeout=httpx.Timeout(10.0, read=None))
    with client.stream("GET", f"/api/v3/tasks/{task_id}/logs",
                       params={"follow": int(follow)}) as response:
        if response.status_code >= 400:
            response.read()
            raise click.ClickException(describe_error(response))
        out = click.get_binary_stream("stdout")
        for chunk in response.iter_bytes():
            out.write(chunk)
            out.flush()


@task_group.command("evict")
@click.argument("task_id")
@connection_options
def evict(task_id, url, token, as_json):
    """Evict a task if its job's disruption budget allows it now (the job replaces it)."""
    out = Client(url, token).request("DELETE", f"/api/v3/eviction/tasks/{task_id}")
    if as_json:  # the same exit status: a script tells a refusal without reading the JSON
        print_json(out)
    else:
        click.echo(f"{task_id}: {'evicted' if out['allowed'] else 'not evicted'} "
                   f"({out['reason']})")
    if not out["allowed"]:
        raise SystemExit(1)
