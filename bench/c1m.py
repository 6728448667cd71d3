"""C1M-style run: jobs x tasks submitted over REST onto thousands of simulated hosts.

A real ``titus master`` (subprocess, SQLite by default) and a few sim agent processes standing
for ``--hosts`` hosts in all. Batch jobs of long-running sim tasks are submitted over REST
from a few threads; the master's ``/metrics`` (``titus_tasks{state="Started"}``) is sampled
until every task is Started. Figures: tasks/s from the first submission to the last Started,
the submission rate, and — with ``--profile`` (py-spy on the master) — the share of the
master's time spent in the store (``titus/master/store.py``, SQLAlchemy, the DB driver).

Prints a summary, writes ``bench/results/c1m.json`` and ``bench/results/c1m.png`` (Started
over time). Never fails on time: the figures are the output.

    python bench/c1m.py                       # 100 jobs x 100 tasks on 5,000 hosts
    python bench/c1m.py --jobs 300 --tasks 100 --profile
    python bench/c1m.py --target              # 1,000 jobs x 1,000 tasks (the C1M size)
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, machine, save_json  # noqa: E402
from titus.cli.local_cluster import LocalCluster  # noqa: E402

_METRIC = re.compile(r'^titus_tasks\{state="(\w+)"\}\s+([0-9.e+]+)', re.M)
_GAUGE = re.compile(r"^(titus_hosts|titus_queue_depth)\s+([0-9.e+]+)", re.M)
# Stack frames that count as "the store" in a profile of the master.
STORE_FRAMES = ("titus/master/store", "sqlalchemy/", "sqlite3", "psycopg")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def job_descriptor(index: int, tasks: int, cpu: float, memory_mb: int) -> dict:
    """One batch job of ``tasks`` sim tasks that run for an hour (they stay Started)."""
    return {
        "applicationName": f"c1m-{index}", "owner": {"teamEmail": "bench@example.com"},
        "container": {"image": {"name": "sim", "tag": "latest"},
                      "env": {"TITUS_SIM_DURATION_SEC": "3600"},
                      "resources": {"cpu": cpu, "memoryMB": memory_mb}},
        "batch": {"size": tasks, "retryPolicy": {"immediate": {"retries": 0}}},
    }


def scrape(client: httpx.Client) -> dict[str, float]:
    """Task counts by state, hosts and queue depth from the master's /metrics."""
    text = client.get("/metrics").text
    values = {state: float(n) for state, n in _METRIC.findall(text)}
    values.update({name: float(n) for name, n in _GAUGE.findall(text)})
    return values


def wait_hosts(cluster: LocalCluster, hosts: int, timeout: float) -> float:
    """Block until the engine holds every simulated host; returns the seconds it took."""
    began = time.monotonic()
    with cluster.client() as client:
        while time.monotonic() - began < timeout:
            if scrape(client).get("titus_hosts", 0) >= hosts:
                return time.monotonic() - began
            if cluster.crashed():
                raise RuntimeError(f"{cluster.crashed()} died:\n{cluster.log_tail('master.log')}")
            time.sleep(0.25)
    raise TimeoutError(f"only some of {hosts} hosts registered in {timeout}s")


def submit_all(cluster: LocalCluster, args) -> tuple[float, float, list[str]]:
    """Submit every job from ``args.submit_threads`` threads; (start, end, job ids)."""
    local = threading.local()

    def submit(index: int) -> str:
        if not hasattr(local, "client"):
            local.client = cluster.client(timeout=120)
        response = local.client.post("/api/v3/jobs", json=job_descriptor(
            index, args.tasks, args.cpu, args.memory_mb))
        response.raise_for_status()
        return response.json()["id"]

    began = time.time()
    with ThreadPoolExecutor(args.submit_threads) as pool:
        ids = list(pool.map(submit, range(args.jobs)))
    return began, time.time(), ids


def start_profiler(pid: int, out: Path, rate: int) -> subprocess.Popen | None:
    """py-spy sampling the master (collapsed stacks), or None if py-spy is missing."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        print("py-spy not found (pip install py-spy): no store share", file=sys.stderr)
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--gil", "--format", "raw", "--rate",
                             str(rate), "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_shares(path: Path) -> dict:
    """Share of the master's sampled (non-idle) time in the store, the engine and HTTP."""
    total = store = engine = http = 0
    if not path.exists():
        return {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        if any(frame in stack for frame in STORE_FRAMES):
            store += samples
        elif "titus/master/engine_adapter" in stack or "titus/scheduler" in stack:
            engine += samples
        elif "uvicorn" in stack or "starlette" in stack or "fastapi" in stack:
            http += samples
    if not total:
        return {}
    return {"samples": total, "store_share": store / total, "engine_share": engine / total,
            "http_share": http / total, "other_share": (total - store - engine - http) / total}


def plot(series: list[tuple[float, float]], total: int, path: Path, title: str) -> None:
    """Started tasks over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([t for t, _ in series], [n for _, n in series], label="Started")
    ax.axhline(total, color="grey", linestyle=":", label="submitted")
    ax.set_xlabel("seconds since first submission")
    ax.set_ylabel("tasks Started")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> dict:
    """One C1M-style run; returns the result document."""
    total = args.jobs * args.tasks
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="titus-c1m-"))
    cluster = LocalCluster(workdir, store_url=args.store,
                           master_env={"TITUS_HEARTBEAT_TIMEOUT_SEC": "60",
                                       "TITUS_SUBMIT_RATE_PER_SEC": "0"})
    profiler = None
    try:
        cluster.start_master()
        per_agent = [args.hosts // args.agents + (i < args.hosts % args.agents)
                     for i in range(args.agents)]
        for i, hosts in enumerate(per_agent):
            cluster.start_agent(f"c1m-{i}", hosts=hosts, cpus=args.host_cpus,
                                memory_mb=args.host_memory_mb, launch_log=False,
                                zones=("us-east-1a", "us-east-1b", "us-east-1c"))
        registration = wait_hosts(cluster, args.hosts, timeout=120)
        print(f"{args.hosts} hosts registered in {registration:.1f}s; submitting "
              f"{args.jobs} jobs x {args.tasks} tasks = {total:,} tasks")
        if args.profile:
            profiler = start_profiler(cluster.master.pid, workdir / "profile.txt", args.rate)

        series: list[tuple[float, float]] = []
        states_seen: list[dict] = []  # every state's count at each sample (for diagnosis)
        submitted: dict = {}
        submitter = threading.Thread(
            target=lambda: submitted.update(zip(("began", "ended", "ids"),
                                                submit_all(cluster, args))))
        load_before = os.getloadavg()[0]
        pids = {"master": cluster.master.pid,
                **{name: process.pid for name, process in cluster.agents.items()}}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        first_submit = time.time()
        submitter.start()
        all_started = None
        last_progress, last_started = time.time(), -1.0
        with cluster.client() as client:
            while True:
                now = time.time()
                counts = scrape(client)
                started = counts.get("Started", 0.0)
                series.append((now - first_submit, started))
                states_seen.append({"t": round(now - first_submit, 2),
                                    **{k: int(v) for k, v in counts.items()}})
                if started > last_started:
                    last_progress, last_started = now, started
                if started >= total:
                    all_started = now
                    break
                if now - last_progress > args.stall_sec or cluster.crashed():
                    print(f"stopped: no progress for {args.stall_sec}s or a process died "
                          f"({cluster.crashed()})", file=sys.stderr)
                    break
                time.sleep(0.25)
        cpu_used = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        load_after = os.getloadavg()[0]
        submitter.join()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        elapsed = (all_started or time.time()) - first_submit
        submit_seconds = submitted["ended"] - submitted["began"] if submitted else None
        result = {
            "benchmark": "c1m",
            "params": {"jobs": args.jobs, "tasks_per_job": args.tasks, "tasks": total,
                       "hosts": args.hosts, "agents": args.agents,
                       "host_cpus": args.host_cpus, "host_memory_mb": args.host_memory_mb,
                       "task_cpu": args.cpu, "task_memory_mb": args.memory_mb,
                       "submit_threads": args.submit_threads,
                       "store": "postgresql" if args.store and args.store.startswith("postgres")
                       else "sqlite"},
            "machine": machine(),
            "host_registration_sec": round(registration, 2),
            "all_started": all_started is not None,
            "started": int(last_started),
            "seconds_to_all_started": round(elapsed, 2),
            "tasks_per_sec": round(last_started / elapsed, 1) if elapsed else None,
            "submit_seconds": round(submit_seconds, 2) if submit_seconds else None,
            "submitted_tasks_per_sec": round(total / submit_seconds, 1) if submit_seconds else None,
            "target": {"tasks": 1_000_000, "seconds": 120},
            # how much CPU the platform got: on a shared machine the master may be starved
            "cpu_seconds": {"master": round(cpu_used["master"], 1),
                            "agents": round(sum(v for k, v in cpu_used.items()
                                                if k != "master"), 1)},
            "load_average": {"before": round(load_before, 2), "after": round(load_after, 2)},
            "profile": profile_shares(workdir / "profile.txt") if args.profile else {},
            "series": [(round(t, 2), int(n)) for t, n in series[:: max(1, len(series) // 400)]],
            "states": states_seen[:: max(1, len(states_seen) // 400)],
        }
        return result
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        cluster.stop()
        if not args.dir and not args.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None) -> dict:
    """Parse flags, run, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=100, help="tasks per job")
    parser.add_argument("--target", action="store_true",
                        help="the C1M size: 1,000 jobs x 1,000 tasks")
    parser.add_argument("--hosts", type=int, default=5000)
    parser.add_argument("--agents", type=int, default=5, help="sim agent processes")
    parser.add_argument("--host-cpus", type=float, default=64.0)
    parser.add_argument("--host-memory-mb", type=float, default=262144.0)
    parser.add_argument("--cpu", type=float, default=0.25, help="CPUs per task")
    parser.add_argument("--memory-mb", type=int, default=256, help="memory per task")
    parser.add_argument("--submit-threads", type=int, default=4)
    parser.add_argument("--store", default=None,
                        help="store URL (default: SQLite in the working directory)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the master with py-spy for the store's share of time")
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument("--stall-sec", type=float, default=60.0,
                        help="give up after this long without a new Started task")
    parser.add_argument("--dir", default=None, help="working directory (kept)")
    parser.add_argument("--keep-dir", action="store_true", help="keep the temporary directory")
    parser.add_argument("--name", default="c1m", help="result file name in bench/results")
    args = parser.parse_args(argv)
    if args.target:
        args.jobs, args.tasks = 1000, 1000
    result = run(args)
    path = save_json(args.name, result)
    plot([tuple(p) for p in result["series"]], result["params"]["tasks"],
         RESULTS / f"{args.name}.png",
         f"{args.jobs} jobs x {args.tasks} tasks on {args.hosts} sim hosts "
         f"({result['params']['store']})")
    shares = result["profile"]
    print(f"{result['started']:,}/{result['params']['tasks']:,} tasks Started in "
          f"{result['seconds_to_all_started']}s: {result['tasks_per_sec']} tasks/s "
          f"(submission alone {result['submit_seconds']}s, "
          f"{result['submitted_tasks_per_sec']} tasks/s)")
    print(f"CPU used: master {result['cpu_seconds']['master']}s, agents "
          f"{result['cpu_seconds']['agents']}s; load average {result['load_average']}")
    if shares:
        print("master time: " + ", ".join(f"{k[:-6]} {v:.0%}" for k, v in shares.items()
                                          if k.endswith("_share")))
    print(f"saved {path} and {RESULTS / (args.name + '.png')}")
    return result


if __name__ == "__main__":
    main()
