"""``titus task list|get|kill|logs``."""
from __future__ import annotations

import click

from titus.cli import main
from titus.cli.client import (Client, ca_option, connection_options, describe_error, print_json,
                              print_table)


@main.group("task")
def task_group():
    """Inspect and kill tasks."""


def task_row(t: dict) -> list:
    s = t.get("status", {})
    return [t["id"], t.get("jobId"), t.get("index"), s.get("state"), s.get("reasonCode"),
            t.get("hostId") or "", t.get("resubmitNumber", 0),
            t.get("schedulingFailure") or s.get("reasonMessage") or ""]


TASK_COLUMNS = ["id", "job", "index", "state", "reason", "host", "resubmits", "message"]


@task_group.command("list")
@click.option("--job", "job_id", default=None, help="Only tasks of this job.")
@click.option("--state", "states", default=None, help="Comma-separated task states.")
@click.option("--limit", type=int, default=None)
@connection_options
def list_tasks(job_id, states, limit, url, token, as_json):
    """List tasks."""
    params = {k: v for k, v in {"jobId": job_id, "taskStates": states}.items() if v}
    tasks = Client(url, token).pages("/api/v3/tasks", params, limit)
    if as_json:
        print_json(tasks)
    else:
        print_table("tasks", TASK_COLUMNS, [task_row(t) for t in tasks])


@task_group.command("get")
@click.argument("task_id")
@connection_options
def get(task_id, url, token, as_json):
    """Show one task (a waiting one says why it is not placed)."""
    task = Client(url, token).request("GET", f"/api/v3/tasks/{task_id}")
    print_json(task) if as_json else print_table("task", TASK_COLUMNS, [task_row(task)])


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
    if as_json:
        print_json(out)
        return
    click.echo(f"{task_id}: {'evicted' if out['allowed'] else 'not evicted'} ({out['reason']})")
    if not out["allowed"]:
        raise SystemExit(1)
