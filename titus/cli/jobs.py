"""``titus job submit|list|get|kill|scale``."""
from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from titus.cli import main
from titus.cli.client import Client, connection_options, print_json, print_table


@main.group("job")
def job_group():
    """Submit and manage jobs."""


def load_spec(path: str) -> dict:
    """A job descriptor from a YAML or JSON file ('-' reads stdin)."""
    text = click.get_text_stream("stdin").read() if path == "-" else Path(path).read_text()
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise click.ClickException(f"{path}: neither JSON nor YAML: {exc}")
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: a job descriptor must be a mapping")
    return data


def job_row(job: dict) -> list:
    d = job.get("jobDescriptor", {})
    if "batch" in d:
        kind, size = "batch", d["batch"].get("size")
    else:
        cap = d.get("service", {}).get("capacity", {})
        kind, size = "service", f"{cap.get('min', 0)}/{cap.get('desired', 0)}/{cap.get('max', 0)}"
    status = job.get("status", {})
    return [job["id"], d.get("applicationName"), kind, size, d.get("capacityGroup") or "DEFAULT",
            status.get("state"), status.get("reasonCode")]


JOB_COLUMNS = ["id", "application", "type", "size", "group", "state", "reason"]


@job_group.command("submit")
@click.argument("spec", type=click.Path(allow_dash=True))
@connection_options
def submit(spec, url, token, as_json):
    """Submit the job described in SPEC (a YAML or JSON file, '-' for stdin)."""
    answer = Client(url, token).request("POST", "/api/v3/jobs", json=load_spec(spec))
    print_json(answer) if as_json else click.echo(answer["id"])


@job_group.command("list")
@click.option("--state", "job_state", default=None, help="Accepted, KillInitiated or Finished.")
@click.option("--app", default=None, help="Only this applicationName.")
@click.option("--group", default=None, help="Only this capacity group.")
@click.option("--limit", type=int, default=None, help="At most this many jobs.")
@connection_options
def list_jobs(job_state, app, group, limit, url, token, as_json):
    """List jobs (active ones unless --state Finished)."""
    params = {k: v for k, v in {"jobState": job_state, "applicationName": app,
                                 "capacityGroup": group}.items() if v}
    jobs = Client(url, token).pages("/api/v3/jobs", params, limit)
    if as_json:
        print_json(jobs)
    else:
        print_table("jobs", JOB_COLUMNS, [job_row(j) for j in jobs])


@job_group.command("get")
@click.argument("job_id")
@connection_options
def get(job_id, url, token, as_json):
    """Show one job and a count of its tasks by state."""
    client = Client(url, token)
    job = client.request("GET", f"/api/v3/jobs/{job_id}")
    if as_json:
        print_json(job)
        return
    print_table("job", JOB_COLUMNS, [job_row(job)])
    tasks = client.pages("/api/v3/tasks", {"jobId": job_id})
    counts: dict = {}
    for t in tasks:
        key = (t["status"]["state"], t["status"].get("reasonCode", ""))
        counts[key] = counts.get(key, 0) + 1
    print_table("tasks", ["state", "reason", "count"],
                [[s, r, n] for (s, r), n in sorted(counts.items())])


@job_group.command("kill")
@click.argument("job_id")
@connection_options
def kill(job_id, url, token, as_json):
    """Kill a job and all its tasks."""
    job = Client(url, token).request("DELETE", f"/api/v3/jobs/{job_id}")
    print_json(job) if as_json else click.echo(f"{job_id}: {job['status']['state']}")


@job_group.command("scale")
@click.argument("job_id")
@click.option("--desired", type=int, default=None)
@click.option("--min", "min_", type=int, default=None)
@click.option("--max", "max_", type=int, default=None)
@connection_options
def scale(job_id, desired, min_, max_, url, token, as_json):
    """Change a service job's capacity."""
    body = {k: v for k, v in {"min": min_, "desired": desired, "max": max_}.items() if v is not None}
    if not body:
        raise click.UsageError("give at least one of --desired, --min, --max")
    job = Client(url, token).request("PUT", f"/api/v3/jobs/{job_id}/instances", json=body)
    if as_json:
        print_json(job)
    else:
        cap = job["jobDescriptor"]["service"]["capacity"]
        click.echo(f"{job_id}: min {cap['min']} desired {cap['desired']} max {cap['max']}")
