"""``titus local``: a whole platform on this machine — a master on embedded SQLite and agents,
as child processes — in one command.

``--runtime sim`` (the default) starts sim agents standing for simulated hosts: no Docker
needed, tasks only pretend to run (``titus.agent.sim``). ``--runtime docker`` starts one agent
that runs tasks as containers of the local Docker engine (checked first: a missing engine is
one message saying what to do). ``--sample`` submits the bundled sample jobs, shows their
progress in words until the batch jobs finish, then says what happened and what to try next;
``--keep`` keeps the platform running after that, until Ctrl-C.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Optional

import click

from titus.cli import main
from titus.cli.numbers import Finite
from titus.protocol import MAX_QUANTITY

SAMPLE_POLL_SEC = 0.5


class Progress:
    """Where one sample job stands: its state and its tasks' counts."""

    def __init__(self, job: dict, tasks: list[dict]):
        self.state = job["status"]["state"]
        self.job = job
        finished = [t for t in tasks if t["status"]["state"] == "Finished"]
        self.succeeded = sum(t["status"].get("reasonCode") == "normal" for t in finished)
        self.failed = len(finished) - self.succeeded  # tries that ended otherwise
        self.running = sum(t["status"]["state"] == "Started" for t in tasks)
        self.starting = sum(t["status"]["state"] in ("Launched", "StartInitiated")
                            for t in tasks)
        self.waiting = sum(t["status"]["state"] == "Accepted" for t in tasks)
        self.reasons = sorted({t["status"].get("reasonCode", "") for t in finished
                               if t["status"].get("reasonCode") != "normal"})
        # why tasks wait (the engine's words), and the newest try that ended for a reason
        # other than its own exit (an image that cannot be pulled, a lost host ...)
        self.why_waiting = next((t.get("schedulingFailure") for t in tasks
                                 if t["status"]["state"] == "Accepted"
                                 and t.get("schedulingFailure")), "")
        trouble = [t for t in finished
                   if t["status"].get("reasonCode") not in ("normal", "failed", "killed")]
        newest = max(trouble, key=lambda t: int(t["status"].get("timestamp") or 0),
                     default=None)
        self.problem = (newest["status"].get("reasonMessage") or "") if newest else ""

    def words(self, batch: bool) -> str:
        """``2 running, 1 succeeded, 3 tries failed`` (only the counts that are not zero)."""
        waiting = "waiting" + (f" ({_clip(self.why_waiting)})" if self.why_waiting else "")
        parts = [(self.running, "running"), (self.starting, "starting"),
                 (self.waiting, waiting), (self.succeeded, "succeeded")]
        text = [f"{n} {what}" for n, what in parts if n]
        if self.failed:
            text.append(f"{self.failed} {'try' if self.failed == 1 else 'tries'} failed")
        if not batch:
            text.append("a service: it keeps running")
        words = ", ".join(text) or "submitted"
        return words + (f"; last: {_clip(self.problem)}" if self.problem else "")


def _clip(text: str, width: int = 90) -> str:
    """One line of at most ``width`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _job_progress(client, job_id: str) -> Progress:
    """Where one job stands (every page of its tasks read)."""
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
    return Progress(job, tasks)


def _fit_to_hosts(name: str, descriptor: dict, hosts: int) -> dict:
    """The sample as submitted here: a batch job with one task per host (``uniqueHost``)
    asks for at most ``hosts`` tasks, else the rest would wait forever (one Docker host)."""
    hard = (descriptor.get("container", {}).get("hardConstraints") or {}).get("constraints", {})
    batch = descriptor.get("batch")
    if not batch or str(hard.get("uniqueHost", "")).lower() != "true" \
            or int(batch.get("size", 1)) <= hosts:
        return descriptor
    click.echo(f"{name}: {hosts} host(s) here, so {hosts} of its {batch['size']} tasks "
               "(one per host)")
    return {**descriptor, "batch": {**batch, "size": hosts}}


def _submit_samples(cluster, hosts: int) -> list[tuple[str, str, dict]]:
    """Submit every sample job (fitted to ``hosts``); returns (file name, job id,
    descriptor)."""
    from titus.sample_jobs import load_samples

    submitted = []
    with cluster.client() as client:
        for name, descriptor in load_samples().items():
            descriptor = _fit_to_hosts(name, descriptor, hosts)
            response = client.post("/api/v3/jobs", json=descriptor)
            if response.status_code >= 400:
                raise click.ClickException(f"sample {name} was refused: "
                                           f"HTTP {response.status_code} {response.text[:300]}")
            submitted.append((name, response.json()["id"], descriptor))
            click.echo(f"submitted {name:<24} job {response.json()['id']}")
    return submitted


def _show_sample_progress(cluster, submitted, stopping) -> Optional[dict]:
    """Progress bars until every sample batch job is Finished; the last progress of each job
    (by id), or None if interrupted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars, TextColumn
    from rich.progress import TimeElapsedColumn

    columns = (TextColumn("{task.description:<24}"), BarColumn(bar_width=20), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    last: dict = {}
    with Bars(*columns) as progress, cluster.client() as client:
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
                now = last[job_id] = _job_progress(client, job_id)
                if is_batch:
                    finished = now.state == "Finished"
                    batch_open += not finished
                    # the bar counts indices that ended: succeeded, or out of retries
                    ended = total if finished else now.succeeded
                    info = now.words(True) + ("; job finished" if finished else "")
                    progress.update(bar, completed=ended, info=info)
                else:
                    progress.update(bar, completed=now.running, info=now.words(False))
            if not batch_open:
                return last
            if cluster.crashed():
                raise click.ClickException(f"{', '.join(cluster.crashed())} stopped unexpectedly;"
                                           f" see the logs in {cluster.workdir}")
            time.sleep(SAMPLE_POLL_SEC)
    return None


def _sample_summary(submitted, last: dict) -> list[str]:
    """What the sample did, one line per job, in plain words."""
    lines = ["", "What happened:"]
    for name, job_id, descriptor in submitted:
        p = last.get(job_id)
        if p is None:
            continue
        app = descriptor.get("applicationName", name)
        if descriptor.get("batch"):
            size = int(descriptor["batch"].get("size", 1))
            text = f"{p.succeeded} of {size} tasks succeeded"
            if p.failed:
                why = ", ".join(p.reasons) or "failed"
                text += (f"; {p.failed} {'try' if p.failed == 1 else 'tries'} ended {why}"
                         f" (each index is retried as its retry policy says)")
        else:
            text = f"service: {p.running} task(s) running; it runs until killed"
        lines.append(f"  {app:<16} job {job_id}: {text}")
    return lines


def _next_steps(cluster, submitted, running: bool) -> list[str]:
    """Commands to try next (with the cluster's address when it keeps running)."""
    batch = [(n, j) for n, j, d in submitted if d.get("batch")]
    failing = next((j for n, j in batch if "flaky" in n), batch[0][1] if batch else "")
    if not running:  # a new run makes new ids
        failing = ""
    lines = ["", "Try next" + ("" if running else
                               " (the platform has stopped: run titus local --sample --keep "
                               "to keep it up, then in another shell)") + ":"]
    if running:
        lines.append(f"  export TITUS_URL={cluster.url} TITUS_TOKEN={cluster.token}")
    lines += ["  titus job list --state Finished     # the finished sample jobs",
              "  titus job list                      # the jobs still running",
              f"  titus job describe {failing or 'JOB_ID'}",
              f"  titus task list --job {failing or 'JOB_ID'} --state all",
              f"  titus events --job {failing or 'JOB_ID'}",
              "  titus events --follow               # changes as they happen (Ctrl-C ends)",
              "  titus task logs TASK_ID"]
    return lines


def _docker_agent_id() -> str:
    return f"local-docker-{secrets.token_hex(3)}"


def _remove_containers(agent_ids: list[str]) -> int:
    """Remove every container the given (docker) agents made; how many went."""
    if not agent_ids:
        return 0
    try:
        import docker

        client = docker.from_env(timeout=30)
    except Exception:
        return 0
    removed = 0
    try:
        for agent_id in agent_ids:
            for container in client.containers.list(
                    all=True, sparse=True, filters={"label": f"titus.agent_id={agent_id}"}):
                try:
                    container.remove(force=True)
                    removed += 1
                except Exception:
                    pass
    finally:
        client.close()
    return removed


@main.command("local")
@click.option("--runtime", type=click.Choice(["sim", "docker"]), default="sim",
              show_default=True,
              help="sim: simulated hosts, tasks only pretend to run (no Docker needed); "
                   "docker: one agent running tasks as containers of the local Docker engine.")
@click.option("--agents", type=click.IntRange(min=0), default=None,
              help="Agent processes to start (default: 2 sim agents, 1 docker agent).")
@click.option("--hosts-per-agent", type=click.IntRange(min=1), default=5, show_default=True,
              help="Simulated hosts each sim agent stands for.")
@click.option("--cpus", type=Finite(min=0, max=MAX_QUANTITY), default=None,
              help="CPUs of each host (default: 8 per simulated host; the machine's own for "
                   "docker).")
@click.option("--memory-mb", type=Finite(min=0, max=MAX_QUANTITY), default=None,
              help="Memory of each host (default: 32768 per simulated host; the machine's "
                   "own for docker).")
@click.option("--pull", type=click.Choice(["always", "missing", "never"]), default="missing",
              show_default=True, help="Docker: when agents pull images.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=None,
              help="Where the store and logs live, kept after exit; run again with the same "
                   "--dir to pick up where it stopped (default: a temporary directory, "
                   "removed at exit).")
@click.option("--port", type=click.IntRange(0, 65535), default=7001, show_default=True,
              help="Master port (0: any free port).")
@click.option("--token", envvar="TITUS_TOKEN", default=None,
              help="User API token (default: a new random one).")
@click.option("--sample", is_flag=True, help="Submit the sample jobs, show their progress "
                                             "and say what happened.")
@click.option("--keep", is_flag=True, help="With --sample: keep running after the batch jobs "
                                           "finish, until Ctrl-C, to explore them.")
def local(runtime, agents, hosts_per_agent, cpus, memory_mb, pull, workdir, port, token, sample,
          keep):
    """Run a master on embedded SQLite and agents here; Ctrl-C stops them all."""
    from titus.cli.local_cluster import LocalCluster, free_port

    if runtime == "docker":
        from titus.cli.docker_check import engine_problem

        problem = engine_problem()
        if problem:
            raise click.ClickException(f"--runtime docker: {problem}")
    if agents is None:
        agents = 2 if runtime == "sim" else 1
    temporary = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="titus-local-") if temporary else workdir)
    cluster = LocalCluster(directory, port=port or free_port(), token=token)
    docker_agents: list[str] = []
    stopping: list[bool] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    # Ctrl-C stops everything, even when started from a shell that ignores SIGINT
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    stays_up = keep or not sample
    try:
        click.echo(f"starting master on {cluster.store_url} ...")
        try:
            cluster.start_master()
        except (RuntimeError, TimeoutError) as exc:
            raise click.ClickException(str(exc)) from None
        zones = ("us-east-1a", "us-east-1b", "us-east-1c")
        for index in range(agents):
            if runtime == "sim":
                cluster.start_agent(f"local-agent-{index}", hosts=hosts_per_agent,
                                    cpus=8.0 if cpus is None else cpus,
                                    memory_mb=32768.0 if memory_mb is None else memory_mb,
                                    zones=zones, launch_log=False)
            else:
                name = _docker_agent_id()
                docker_agents.append(name)
                cluster.start_agent(name, cpus=cpus, memory_mb=memory_mb,
                                    zones=(zones[index % 3],), runtime="docker",
                                    extra_args=("--pull", pull))
        kept = ("kept after exit" if not temporary else
                "removed when this command ends; --dir DIR keeps them")
        what = (f"{agents} x {hosts_per_agent} simulated hosts (sim runtime)" if runtime == "sim"
                else f"{agents} Docker agent(s) on this machine (docker runtime, pull {pull})")
        click.echo(f"\nTitus master  {cluster.url}\n"
                   f"Web UI        {cluster.url}/  (sign in with the user token)\n"
                   f"User token    {cluster.token}  (scope admin)\n"
                   f"Agent token   {cluster.agent_token}  (agents join with it)\n"
                   f"Agents        {what}\n"
                   f"Store, logs   {directory}  ({kept})\n")
        if stays_up:
            click.echo(f"  export TITUS_URL={cluster.url} TITUS_TOKEN={cluster.token}\n")
        else:
            click.echo("This platform stops once the sample's batch jobs finish "
                       "(--keep keeps it running).\n")
        if sample:
            submitted = _submit_samples(
                cluster, agents * hosts_per_agent if runtime == "sim" else agents)
            last = _show_sample_progress(cluster, submitted, stopping)
            if last is None:
                return
            click.echo("\n".join(_sample_summary(submitted, last)
                                 + _next_steps(cluster, submitted, running=keep)))
            if not keep:
                return
        click.echo("\nrunning; press Ctrl-C to stop")
        while not stopping:
            dead = cluster.crashed()
            if dead:
                raise click.ClickException(f"{', '.join(dead)} stopped unexpectedly; see the "
                                           f"logs in {directory}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
    except click.ClickException as exc:
        if "stopped unexpectedly" in exc.message:
            temporary = False  # the message sends the reader to the logs: they stay
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        cluster.stop()
        removed = _remove_containers(docker_agents)
        quiet = os.environ.get("TITUS_LOCAL_QUIET") is not None
        if removed and not quiet:
            click.echo(f"removed {removed} container(s) of the Docker agent(s)")
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
            if not quiet:
                click.echo(f"stopped; removed {directory} (its store and logs)")
        elif not quiet:
            click.echo(f"stopped; store and logs kept in {directory} "
                       f"(titus local --dir {directory} picks up from there)")
