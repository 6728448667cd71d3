"""``titus job describe`` and ``titus task describe``: one object in full, for people.

Like ``kubectl describe``: aligned ``Field: value`` lines (what it runs, with what resources,
where, since when), then its status history with reasons, why it waits if it does (the
scheduler's per-reason host counts), and its recent events from ``GET /api/v3/events``.
Secret env values are shown redacted (the master redacts them; :func:`titus.cli.jobs.shown`
redacts again with ``TITUS_SECRET_ENV_PATTERN``). Ids are printed whole, never cut.
"""
from __future__ import annotations

import re
import shlex
from collections import Counter
from typing import Optional

import click

from titus.cli.client import Client, connection_options, print_json
from titus.cli.jobs import job_group, shown
from titus.cli.show import age, printable, when
from titus.cli.tasks import created_at, ended_reason, task_group

RECENT_EVENTS = 20
TASKS_SHOWN = 20
_FAILURE = re.compile(r"^\s*(\d+)/(\d+) hosts?:\s*(.+)$", re.S)
_COUNT = re.compile(r"^\s*(\d+)\s+(.+?)\s*$")


@job_group.command("describe")
@click.argument("job_id")
@connection_options
def describe_job_command(job_id, url, token, as_json):
    """Show a job in full: what it runs, its status history, its tasks and recent events."""
    describe_job(Client(url, token), job_id, as_json)


@task_group.command("describe")
@click.argument("task_id")
@connection_options
def describe_task_command(task_id, url, token, as_json):
    """Show a task in full: what it runs and where, its status history, why it waits (if it
    does) and recent events."""
    describe_task(Client(url, token), task_id, as_json)


def describe_job(client: Client, job_id: str, as_json: bool = False) -> None:
    """Print the description of one job (``--json``: the job, its tasks and events)."""
    job = shown(client.request("GET", f"/api/v3/jobs/{job_id}"))
    tasks = client.pages("/api/v3/tasks", {"jobId": job_id})
    events = recent_events(client, {"jobId": job_id})
    if as_json:
        print_json({"job": job, "tasks": tasks, "events": events})
        return
    d = job.get("jobDescriptor", {})
    status = job.get("status", {})
    out = Lines()
    out.field("Application", d.get("applicationName"))
    out.field("ID", job["id"])
    if "batch" in d:
        batch = d["batch"]
        out.field("Type", f"batch, {batch.get('size')} task(s)")
        if batch.get("runtimeLimitSec") not in (None, "", "0", 0):
            out.field("Runtime limit", f"{batch['runtimeLimitSec']}s per task")
        out.field("Retry policy", retry_text(batch.get("retryPolicy")))
    else:
        service = d.get("service", {})
        cap = service.get("capacity", {})
        out.field("Type", f"service, min {cap.get('min', 0)} desired {cap.get('desired', 0)} "
                          f"max {cap.get('max', 0)}")
        out.field("Retry policy", retry_text(service.get("retryPolicy")))
    out.field("State", state_text(status))
    out.field("Owner", (d.get("owner") or {}).get("teamEmail"))
    out.field("Capacity group", d.get("capacityGroup") or "DEFAULT")  # the master's default
    out.field("Submitted", f"{when(created_at(job))} ({age(created_at(job))} ago)")
    if job.get("backingOff"):
        out.field("Backing off", f"{job.get('tasksBackingOff')} task(s) wait to restart after "
                                 f"{job.get('consecutiveFailures')} quick failures; next at "
                                 f"{when(job.get('retryAt'))}")
    container_fields(out, d.get("container") or {})
    out.mapping("Attributes", d.get("attributes") or {})
    out.section("Status history")
    out.table(["TIME", "STATE", "REASON", "MESSAGE"], history_rows(job))
    out.section(f"Tasks ({tasks_summary(tasks)})")
    if tasks:
        live = [t for t in tasks if t["status"]["state"] != "Finished"]
        rest = [t for t in tasks if t["status"]["state"] == "Finished"]
        chosen = (live + rest[::-1])[:TASKS_SHOWN]
        out.table(["ID", "INDEX", "STATE", "REASON", "HOST", "AGE"],
                  [[t["id"], t.get("index"), t["status"]["state"], ended_reason(t["status"]),
                    t.get("hostId") or "", age(created_at(t))] for t in chosen])
        if len(tasks) > len(chosen):
            out.line(f"  ... {len(tasks) - len(chosen)} more: titus task list --job "
                     f"{job['id']} --state all --limit {len(tasks)}")
        waiting = [t for t in live if t["status"]["state"] == "Accepted"]
        if waiting and waiting[0].get("schedulingFailure"):
            out.section(f"Waiting ({len(waiting)} task(s) not placed)")
            pending_lines(out, waiting[0]["schedulingFailure"])
    events_section(out, events)
    out.echo()


def describe_task(client: Client, task_id: str, as_json: bool = False) -> None:
    """Print the description of one task (``--json``: the task, its job and events)."""
    task = client.request("GET", f"/api/v3/tasks/{task_id}")
    job = shown(client.request("GET", f"/api/v3/jobs/{task['jobId']}"))
    events = recent_events(client, {"taskId": task_id})
    if as_json:
        print_json({"task": task, "job": job, "events": events})
        return
    d = job.get("jobDescriptor", {})
    status = task.get("status", {})
    out = Lines()
    out.field("ID", task["id"])
    out.field("Job", f"{task['jobId']} ({d.get('applicationName')})")
    out.field("Index", task.get("index"))
    out.field("State", state_text(status))
    if status.get("state") == "Finished" and task.get("exitCode") is not None:
        out.field("Exit code", task["exitCode"])
    out.field("Created", f"{when(created_at(task))} ({age(created_at(task))} ago)")
    if task.get("hostId"):
        out.field("Host", task["hostId"])
        out.field("Agent", task.get("agentId"))
    if task.get("ports"):
        out.field("Ports", ", ".join(str(p) for p in task["ports"]))
    if task.get("health"):
        out.field("Health", task["health"])
    if task.get("resubmitOf"):
        out.field("Replaces", f"{task['resubmitOf']} (try {task.get('resubmitNumber', 0) + 1})")
    if task.get("launchAttempts", 0) > 1:
        out.field("Launch attempts", task["launchAttempts"])
    if task.get("backingOff") or task.get("retryAt"):
        out.field("Restarts at", f"{when(task.get('retryAt'))} (after "
                                 f"{task.get('consecutiveFailures', 0)} quick failures)")
    container_fields(out, d.get("container") or {})
    out.section("Status history")
    out.table(["TIME", "STATE", "REASON", "MESSAGE"], history_rows(task))
    if status.get("state") == "Accepted":
        out.section("Waiting")
        if task.get("schedulingFailure"):
            pending_lines(out, task["schedulingFailure"])
        elif task.get("retryAt"):
            out.line(f"  waits for its restart delay, until {when(task['retryAt'])}")
        else:
            out.line("  not tried by the scheduler yet")
    events_section(out, events)
    out.echo()


# -- pieces ---------------------------------------------------------------------------------

class Lines:
    """A description being built: aligned fields, sections, plain tables (never cut)."""

    WIDTH = 17

    def __init__(self):
        self.lines: list[str] = []

    def field(self, name: str, value) -> None:
        if value is None or value == "":
            value = "-"
        self.lines.append(f"{name + ':':<{self.WIDTH}}{value}")

    def mapping(self, name: str, items: dict) -> None:
        if not items:
            self.field(name, "-")
            return
        self.lines.append(f"{name}:")
        for key, value in items.items():
            self.lines.append(f"  {key}={value}")

    def section(self, title: str) -> None:
        self.lines.append(f"{title}:")

    def line(self, text: str) -> None:
        self.lines.append(text)

    def table(self, header: list[str], rows: list[list]) -> None:
        if not rows:
            self.lines.append("  (none)")
            return
        cells = [[str(c) if c is not None else "" for c in row] for row in [header, *rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        for row in cells:
            self.lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())

    def echo(self) -> None:
        click.echo(printable("\n".join(self.lines)))


def container_fields(out: Lines, c: dict) -> None:
    """Image, command, resources, env (redacted), security, constraints."""
    image = c.get("image") or {}
    ref = image.get("name", "")
    if image.get("digest"):
        ref += f"@{image['digest']}"
    elif image.get("tag"):
        ref += f":{image['tag']}"
    out.field("Image", ref)
    out.field("Entry point", shlex.join(c.get("entryPoint") or []))
    out.field("Command", shlex.join(c.get("command") or []))
    r = c.get("resources") or {}
    out.field("Resources", f"cpu {r.get('cpu', 1)}, memory {r.get('memoryMB', 0)} MB, "
                           f"disk {r.get('diskMB', 0)} MB, network {r.get('networkMbps', 0)} "
                           f"Mbps" + (f", gpu {r['gpu']}" if r.get("gpu") else ""))
    out.mapping("Env", c.get("env") or {})
    security = c.get("securityProfile") or {}
    if security.get("iamRole") or security.get("securityGroups"):
        out.field("IAM role", security.get("iamRole"))
        out.field("Security groups", ", ".join(security.get("securityGroups") or []))
    for kind in ("hardConstraints", "softConstraints"):
        constraints = (c.get(kind) or {}).get("constraints") or {}
        if constraints:
            out.field(f"{kind[:4].title()} constraints",
                      ", ".join(f"{k}={v}" for k, v in constraints.items()))
    if c.get("killGracePeriodSeconds") is not None:
        out.field("Kill grace", f"{c['killGracePeriodSeconds']}s")


def state_text(status: dict) -> str:
    """``Started``; ``Finished: failed (exited with code 1)``."""
    text = status.get("state") or "-"
    reason = ended_reason(status)
    if reason:
        text += f": {reason}"
        if status.get("reasonMessage"):
            text += f" ({status['reasonMessage']})"
    if status.get("timestamp"):
        text += f", {age(status['timestamp'])} ago"
    return text


def history_rows(item: dict) -> list[list]:
    """Every status the job or task went through, oldest first (reasons of ends only)."""
    statuses = sorted([*item.get("statusHistory", []), item.get("status", {})],
                      key=lambda s: float(s.get("timestamp") or 0))
    return [[when(s.get("timestamp")), s.get("state"), ended_reason(s),
             s.get("reasonMessage", "") if s.get("state") == "Finished" else ""]
            for s in statuses if s.get("state")]


def tasks_summary(tasks: list[dict]) -> str:
    """``3 Started, 2 Finished normal, 1 Finished failed``."""
    counts = Counter((t["status"]["state"], ended_reason(t["status"])) for t in tasks)
    return ", ".join(f"{n} {state}{' ' + reason if reason else ''}"
                     for (state, reason), n in sorted(counts.items())) or "none"


def pending_lines(out: Lines, message: str) -> None:
    """Why a task is not placed: the scheduler's message and, per reason, how many hosts
    refused it for that reason ("0/10 hosts: 9 cpus, 1 memory_mb" after Fenzo/kube)."""
    match = _FAILURE.match(message)
    if not match:
        out.line(f"  {message}")
        return
    fit, hosts, reasons = match.groups()
    out.line(f"  {fit} of {hosts} hosts can take it now; the others refuse it for:")
    rows = []
    for part in reasons.split(", "):
        counted = _COUNT.match(part)
        rows.append([counted.group(1), counted.group(2)] if counted else ["", part])
    out.table(["HOSTS", "REASON"], rows)


def retry_text(policy: Optional[dict]) -> str:
    """A retry policy in words."""
    if not policy:
        return "-"
    (kind, values), = list(policy.items())[:1] or [("", {})]
    values = values or {}
    parts = [f"{values.get('retries', 0)} retries"]
    if kind == "delayed":
        parts.append(f"{values.get('delayMs', 0)} ms apart")
    if kind == "exponentialBackOff":
        parts.append(f"back-off {values.get('initialDelayMs', 0)} ms up to "
                     f"{values.get('maxDelayIntervalMs', 0)} ms")
    return f"{kind}: " + ", ".join(parts)


def recent_events(client: Client, params: dict, keep: int = RECENT_EVENTS) -> Optional[list]:
    """The newest ``keep`` events of a job or task, oldest first; None if the master does not
    serve the event log."""
    items: list = []
    cursor = ""
    try:
        for _ in range(1000):  # at most a million entries are walked
            query = dict(params, limit=1000, **({"cursor": cursor} if cursor else {}))
            page = client.request("GET", "/api/v3/events", params=query)
            items = (items + page.get("items", []))[-keep:]
            cursor = page.get("pagination", {}).get("cursor", "")
            if not page.get("pagination", {}).get("hasMore"):
                break
    except click.ClickException:
        return None
    return items


def event_words(event: dict) -> str:
    """An event's data in words (``key=value`` pairs, ids whole)."""
    data = event.get("data") or {}
    return " ".join(f"{k}={v}" for k, v in data.items())


def events_section(out: Lines, events: Optional[list]) -> None:
    out.section("Events")
    if events is None:
        out.line("  (this master does not serve the event log)")
        return
    out.table(["AGE", "KIND", "ENTITY", "DETAILS"],
              [[age(e.get("timestamp")), e.get("kind"), e.get("entityId"), event_words(e)]
               for e in events])

