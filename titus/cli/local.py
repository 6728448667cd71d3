"""``titus local``: a whole platform on this machine — a master on embedded SQLite and sim
agents, as child processes — in one command. ``--sample`` submits the bundled sample jobs and
shows their progress until the batch jobs finish."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import click

from titus.cli import main

SAMPLE_POLL_SEC = 0.5


def _job_progress(client, job_id: str) -> tuple[str, int, int, int]:
    """(job state, tasks finished normally, tasks started, tries that failed) of one job."""
    job = client.get(f"/api/v3/jobs/{job_id}").json()
    tasks, cursor = [], None
    while True:
        params = {"jobId": job_id, "pageSize": 5000, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v3/tasks", params=params).json()
        tasks += body.get("items", [])
        page = body.get("pagination") or {}
        cursor = page.get("cursor")
        if not page.get("hasMore") or not cursor:
            break
    done = sum(t["status"]["state"] == "Finished" and t["status"].get("reasonCode") == "normal"
               for t in tasks)
    started = sum(t["status"]["state"] == "Started" for t in tasks)
    failed = sum(t["status"]["state"] == "Finished" and t["status"].get("reasonCode") != "normal"
                 for t in tasks)
    return job["status"]["state"], done, started, failed


def _submit_samples(cluster) -> list[tuple[str, str, dict]]:
    """Submit every sample job; returns (file name, job id, descriptor)."""
    from titus.sample_jobs import load_samples

    submitted = []
    with cluster.client() as client:
        for name, descriptor in load_samples().items():
            response = client.post("/api/v3/jobs", json=descriptor)
            if response.status_code >= 400:
                raise click.ClickException(f"sample {name} was refused: "
                                           f"HTTP {response.status_code} {response.text[:300]}")
            submitted.append((name, response.json()["id"], descriptor))
            click.echo(f"submitted {name} as job {response.json()['id']}")
    return submitted


def _show_sample_progress(cluster, submitted, stopping) -> bool:
    """Progress bars until every sample batch job is Finished; False if interrupted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<24}"), BarColumn(bar_width=20), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns) as progress, cluster.client() as client:
        bars = {}
        for name, job_id, descriptor in submitted:
            if descriptor.get("batch"):
                total = int(descriptor["batch"].get("size", 1))
            else:
                total = int(descriptor["service"]["capacity"].get("desired", 0))
            bars[job_id] = (progress.add_task(name, total=total, info=""),
                            bool(descriptor.get("batch")), total)
        while not stopping:
            batch_open = 0
            for job_id, (bar, is_batch, total) in bars.items():
                job_state, done, started, failed = _job_progress(client, job_id)
                if is_batch:
                    finished = job_state == "Finished"
                    batch_open += not finished
                    # a finished job has ended every index, some after spending their retries
                    progress.update(bar, completed=total if finished else done,
                                    info=f"{started} run {done} ok {failed} failed")
                else:
                    progress.update(bar, completed=started, info=f"{started} running (service)")
            if not batch_open:
                return True
            if cluster.crashed():
                raise click.ClickException(f"{', '.join(cluster.crashed())} stopped unexpectedly;"
                                           f" see the logs in {cluster.workdir}")
            time.sleep(SAMPLE_POLL_SEC)
    return False


@main.command("local")
@click.option("--agents", type=click.IntRange(min=0), default=2, show_default=True,
              help="Sim agent processes to start.")
@click.option("--hosts-per-agent", type=click.IntRange(min=1), default=5, show_default=True,
              help="Simulated hosts each agent stands for.")
@click.option("--cpus", type=click.FloatRange(min=0), default=8.0, show_default=True,
              help="CPUs of each simulated host.")
@click.option("--memory-mb", type=click.FloatRange(min=0), default=32768.0, show_default=True,
              help="Memory of each simulated host.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=None,
              help="Where the store and logs live (default: a temporary directory, removed "
                   "at exit).")
@click.option("--port", type=click.IntRange(0, 65535), default=7001, show_default=True,
              help="Master port (0: any free port).")
@click.option("--token", envvar="TITUS_TOKEN", default=None,
              help="User API token (default: a new random one).")
@click.option("--sample", is_flag=True, help="Submit the sample jobs and show their progress.")
@click.option("--keep", is_flag=True, help="With --sample: keep running after the batch jobs "
                                           "finish, until Ctrl-C.")
def local(agents, hosts_per_agent, cpus, memory_mb, workdir, port, token, sample, keep):
    """Run a master on embedded SQLite and sim agents here; Ctrl-C stops them all."""
    from titus.cli.local_cluster import LocalCluster, free_port

    temporary = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="titus-local-") if temporary else workdir)
    cluster = LocalCluster(directory, port=port or free_port(), token=token)
    stopping: list[bool] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    # Ctrl-C stops everything, even when started from a shell that ignores SIGINT
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        click.echo(f"starting master on {cluster.store_url} ...")
        try:
            cluster.start_master()
        except (RuntimeError, TimeoutError) as exc:
            raise click.ClickException(str(exc)) from None
        zones = ("us-east-1a", "us-east-1b", "us-east-1c")
        for index in range(agents):
            cluster.start_agent(f"local-agent-{index}", hosts=hosts_per_agent, cpus=cpus,
                                memory_mb=memory_mb, zones=zones, launch_log=False)
        click.echo(f"\nTitus master  {cluster.url}\n"
                   f"Web UI        {cluster.url}/  (sign in with the user token)\n"
                   f"User token    {cluster.token}  (scope admin)\n"
                   f"Agent token   {cluster.agent_token}  (agents join with it)\n"
                   f"Agents        {agents} x {hosts_per_agent} simulated hosts\n"
                   f"Logs, store   {directory}\n\n"
                   f"  export TITUS_URL={cluster.url} TITUS_TOKEN={cluster.token}\n")
        if sample:
            finished = _show_sample_progress(cluster, _submit_samples(cluster), stopping)
            if finished:
                click.echo("sample batch jobs finished")
            if not keep:
                return
        click.echo("running; press Ctrl-C to stop")
        while not stopping:
            dead = cluster.crashed()
            if dead:
                raise click.ClickException(f"{', '.join(dead)} stopped unexpectedly; see the "
                                           f"logs in {directory}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        cluster.stop()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
        elif os.environ.get("TITUS_LOCAL_QUIET") is None:
            click.echo(f"stopped; store and logs kept in {directory}")
