"""``titus job submit|list|get|kill|scale`` (``describe``: :mod:`titus.cli.describe`)."""
from __future__ import annotations

import json
import os
import uuid

import click
import yaml

from titus.boundary import BodyTooLarge, InputLimits, SpecError, check_value, decode_json
from titus.cli import main
from titus.cli.client import Client, connection_options, print_json, print_more, print_table
from titus.cli.show import age
from titus.cli.tasks import created_at, ended_reason
from titus.master.secret_env import DEFAULT_SECRET_ENV_PATTERN, check_pattern, redact_job_view


@main.group("job")
def job_group():
    """Submit and manage jobs."""


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a descriptor never needs them, and a few aliases
    can expand into gigabytes (a "billion laughs" file)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                              event.start_mark)
        return super().compose_node(parent, index)


def load_spec(path: str) -> dict:
    """A job descriptor from a YAML or JSON file ('-' reads stdin), held to the master's input
    limits (``titus.boundary``) so a bad file is named here, before anything is sent."""
    limits = InputLimits.from_env()
    try:  # at most one byte over the bound: an endless file (/dev/zero) is not read whole
        if path == "-":
            raw = click.get_binary_stream("stdin").read(limits.max_body_bytes + 1)
        else:
            with open(path, "rb") as f:
                raw = f.read(limits.max_body_bytes + 1)
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read it: {exc.strerror or exc}")
    try:
        data = decode_json(raw, limits, what=f"file {path}")
    except BodyTooLarge as exc:
        raise click.ClickException(f"{path}: {exc}")
    except SpecError as exc:
        if not _not_json(exc):
            raise click.ClickException(str(exc))
        data = _yaml(raw, path, limits)
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: a job descriptor must be a mapping")
    return data


def _not_json(exc: SpecError) -> bool:
    return len(exc.problems) == 1 and exc.problems[0].message.startswith("not valid JSON")


def _yaml(raw: bytes, path: str, limits: InputLimits):
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_NoAliasLoader)
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{path}: neither JSON nor YAML: {exc}")
    except RecursionError:
        raise click.ClickException(f"{path}: nested deeper than {limits.max_depth}")
    except ValueError as exc:  # e.g. an integer too long to read
        raise click.ClickException(f"{path}: {str(exc).splitlines()[0][:200]}")
    try:  # first: it names the field of a .nan, .inf or lone surrogate
        data = check_value(data, limits, f"file {path}")
    except SpecError as exc:
        raise click.ClickException(str(exc))
    try:  # YAML has dates, sets, ... that JSON has not
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise click.ClickException(f"{path}: not JSON data: {exc}")
    return data


def shown(job: dict) -> dict:
    """A job as the CLI prints it: secret env values redacted here too (the master already
    does; this also covers a master with a narrower pattern, or another Titus API). The pattern
    is ``TITUS_SECRET_ENV_PATTERN``, the master's setting, or the master's default."""
    pattern = os.environ.get("TITUS_SECRET_ENV_PATTERN", DEFAULT_SECRET_ENV_PATTERN)
    try:
        check_pattern(pattern)
    except ValueError as exc:
        raise click.ClickException(f"TITUS_SECRET_ENV_PATTERN: {exc}")
    return redact_job_view(job, pattern)


def job_row(job: dict) -> list:
    d = job.get("jobDescriptor", {})
    if "batch" in d:
        kind, size = "batch", d["batch"].get("size")
    else:
        cap = d.get("service", {}).get("capacity", {})
        kind, size = "service", f"{cap.get('min', 0)}/{cap.get('desired', 0)}/{cap.get('max', 0)}"
    status = job.get("status", {})
    return [job["id"], d.get("applicationName"), kind, size, d.get("capacityGroup") or "DEFAULT",
            status.get("state"), ended_reason(status), age(created_at(job))]


JOB_COLUMNS = ["id", "application", "type", "size", "group", "state", "reason", "age"]
DEFAULT_LIMIT = 50


SUBMIT_TRIES = 5  # tries of one submission while masters answer 503/504 (a failover)


@job_group.command("submit")
@click.argument("spec", type=click.Path(allow_dash=True))
@connection_options
def submit(spec, url, token, as_json):
    """Submit the job described in SPEC (a YAML or JSON file, '-' for stdin).

    The submission carries an ``Idempotency-Key`` of its own, and is sent again (with the same
    key) while masters answer 503 or 504 — a failover, a leader that did not answer in time:
    it makes one job whatever happened to the earlier tries."""
    key = {"Idempotency-Key": f"cli-{uuid.uuid4()}"}
    answer = Client(url, token).request("POST", "/api/v3/jobs", json=load_spec(spec),
                                        headers=key, repeat=SUBMIT_TRIES)
    print_json(answer) if as_json else click.echo(answer["id"])


@job_group.command("list")
@click.option("--state", "job_state", default=None, help="Accepted, KillInitiated or Finished.")
@click.option("--app", default=None, help="Only this applicationName.")
@click.option("--group", default=None, help="Only this capacity group.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="At most this many jobs (the oldest first).")
@connection_options
def list_jobs(job_state, app, group, limit, url, token, as_json):
    """List jobs, oldest first (active ones unless --state Finished)."""
    params = {k: v for k, v in {"jobState": job_state, "applicationName": app,
                                 "capacityGroup": group}.items() if v}
    jobs, total = Client(url, token).pages_total("/api/v3/jobs", params, limit)
    if as_json:
        print_json([shown(j) for j in jobs])
    else:
        print_table("jobs", JOB_COLUMNS, [job_row(j) for j in jobs])
        print_more(len(jobs), total, "jobs")


@job_group.command("get")
@click.argument("job_id")
@connection_options
def get(job_id, url, token, as_json):
    """Show one job in full (as ``titus job describe``; --json: the job as the API has it)."""
    from titus.cli.describe import describe_job

    client = Client(url, token)
    if as_json:
        print_json(shown(client.request("GET", f"/api/v3/jobs/{job_id}")))
        return
    describe_job(client, job_id)


@job_group.command("kill")
@click.argument("job_id")
@connection_options
def kill(job_id, url, token, as_json):
    """Kill a job and all its tasks."""
    job = Client(url, token).request("DELETE", f"/api/v3/jobs/{job_id}")
    print_json(shown(job)) if as_json else click.echo(f"{job_id}: {job['status']['state']}")


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
        print_json(shown(job))
    else:
        cap = job["jobDescriptor"]["service"]["capacity"]
        click.echo(f"{job_id}: min {cap['min']} desired {cap['desired']} max {cap['max']}")
