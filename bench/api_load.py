"""API load: many concurrent clients against a master that is also scheduling and hearing agents.

A real ``titus master`` (subprocess; SQLite by default, ``--store`` for PostgreSQL) with two
sim agents holding ``--running`` long tasks (the agents' heartbeats must keep flowing) and a
steady backlog the scheduling loop keeps placing. Then, for each ``--clients`` count, that
many clients each send requests back to back for ``--seconds``: the mix ``GET /api/v3/jobs``,
``GET /api/v3/tasks?jobId=``, and small job submissions (one short task).

Figures per client count: successful requests/s, p50/p99 latency per route, answers by
status (429 is the master refusing work it cannot admit, with Retry-After: not an error),
errors (anything else, and connection failures), agents lost (``agentLost`` events during
the run) and the master's CPU time per successful request (from ``/proc``: on 2 cores the
load generator may saturate its own core before the master does).

Prints a table, writes ``bench/results/api_load.json`` and ``bench/results/api_load.png``.

    python bench/api_load.py                          # 200 and 1,000 clients, 60 s each
    python bench/api_load.py --clients 200 --seconds 20
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.c1m import cpu_seconds  # noqa: E402
from bench.common import RESULTS, machine, save_json  # noqa: E402
from titus.cli.local_cluster import LocalCluster  # noqa: E402

ROUTES = ("GET /jobs", "GET /tasks?jobId", "POST /jobs")
MIX = (0.4, 0.4, 0.2)


def job(name: str, size: int, duration: float, cpu: float = 0.1) -> dict:
    """A batch job of sim tasks."""
    return {"applicationName": name, "owner": {"teamEmail": "bench@example.com"},
            "container": {"image": {"name": "sim", "tag": "latest"},
                          "env": {"TITUS_SIM_DURATION_SEC": str(duration)},
                          "resources": {"cpu": cpu, "memoryMB": 64}},
            "batch": {"size": size}}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def client(http, job_ids: list[str], until: float, rng: random.Random, lat: dict,
                 statuses: dict) -> None:
    """One client: requests back to back until ``until`` (a 429 waits its Retry-After)."""
    while time.monotonic() < until:
        route = rng.choices(ROUTES, MIX)[0]
        began = time.monotonic()
        retry_after = "1"
        try:
            if route == "GET /jobs":
                request = http.get("/api/v3/jobs", params={"pageSize": 100})
            elif route == "GET /tasks?jobId":
                request = http.get("/api/v3/tasks", params={"jobId": rng.choice(job_ids),
                                                            "pageSize": 100})
            else:
                request = http.post("/api/v3/jobs", json=job("load", 1, 0.5))
            async with request as r:
                await r.read()
                status = r.status
                retry_after = r.headers.get("retry-after", "1")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            status = type(exc).__name__
        took = time.monotonic() - began
        statuses[route][status] += 1
        if status in (200, 201, 202):
            lat[route].append(took)
        elif status == 429:
            await asyncio.sleep(min(2.0, float(retry_after)) * rng.uniform(0.5, 1.0))


async def run_clients(url: str, headers: dict, n: int, seconds: float, job_ids: list[str],
                      seed: int) -> tuple[dict, dict, float]:
    # aiohttp, not httpx, for the load: one process must keep 1,000 connections busy, and
    # httpx's pool costs the generator more CPU per request than the master spends on it
    lat: dict = defaultdict(list)
    statuses: dict = defaultdict(Counter)
    connector = aiohttp.TCPConnector(limit=n, limit_per_host=n)
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        began = time.monotonic()
        until = began + seconds
        await asyncio.gather(*(client(http, job_ids, until, random.Random(seed + i), lat,
                                      statuses) for i in range(n)))
        return lat, statuses, time.monotonic() - began


def agents_lost(master_log: Path) -> int:
    """How many times the master declared an agent lost so far (its log's warnings)."""
    if not master_log.exists():
        return 0
    return len(re.findall(r"agent \S+ lost \(", master_log.read_text(errors="replace")))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--running", type=int, default=1600,
                        help="long tasks the two agents hold during the run")
    parser.add_argument("--store", default=None, help="store URL (default: a SQLite file)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="titus-api-load-"))
    env = {"TITUS_SUBMIT_RATE_PER_SEC": "0", "TITUS_HEARTBEAT_TIMEOUT_SEC": "10",
           **{k: v for k, v in os.environ.items() if k.startswith("TITUS_ADMISSION")
              or k == "TITUS_MAX_INFLIGHT_REQUESTS"}}
    with LocalCluster(workdir, store_url=args.store, master_env=env) as cluster:
        cluster.start_master()
        pid = cluster.master.pid
        for name in ("a1", "a2"):
            cluster.start_agent(name, hosts=400, cpus=8, memory_mb=65536, launch_log=False)
        api = cluster.client()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(api.get("/api/v3/agents").json()["items"]) < 2:
            time.sleep(0.2)
        job_ids = [api.post("/api/v3/jobs", json=job(f"running-{i}", args.running // 16,
                                                     3600)).json()["id"] for i in range(16)]
        # wait until the long tasks run
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            started = sum(len([t for t in api.get("/api/v3/tasks", params={
                "jobId": j, "pageSize": 5000}).json()["items"]
                if t["status"]["state"] == "Started"]) for j in job_ids[:2])
            if started >= 2 * (args.running // 16):
                break
            time.sleep(0.5)
        rows = []
        for n in args.clients:
            lost_before = agents_lost(cluster.workdir / "master.log")
            cpu0 = cpu_seconds(pid)
            lat, statuses, took = asyncio.run(run_clients(cluster.url, cluster.headers(), n,
                                                          args.seconds, job_ids, args.seed))
            cpu = cpu_seconds(pid) - cpu0
            ok = sum(len(v) for v in lat.values())
            by_status = Counter()
            for c in statuses.values():
                by_status.update({str(k): v for k, v in c.items()})
            errors = sum(v for k, v in by_status.items() if k not in ("200", "201", "202", "429"))
            row = {"clients": n, "seconds": round(took, 1), "ok": ok,
                   "ok_per_sec": round(ok / took, 1), "by_status": dict(by_status),
                   "errors": errors, "agents_lost": agents_lost(cluster.workdir / "master.log") - lost_before,
                   "master_cpu_sec": round(cpu, 2),
                   "master_cpu_ms_per_request": round(1000 * cpu / ok, 3) if ok else None,
                   "routes": {r: {"count": len(lat[r]),
                                  "p50_ms": _ms(percentile(lat[r], 0.5)),
                                  "p99_ms": _ms(percentile(lat[r], 0.99))} for r in ROUTES}}
            rows.append(row)
            print(f"{n:>5} clients: {row['ok_per_sec']:>8} ok/s, errors {errors}, "
                  f"429 {by_status.get('429', 0)}, agents lost {row['agents_lost']}, "
                  f"master {row['master_cpu_ms_per_request']} ms CPU/request")
            for r in ROUTES:
                print(f"        {r:<18} p50 {row['routes'][r]['p50_ms']} ms  "
                      f"p99 {row['routes'][r]['p99_ms']} ms  ({row['routes'][r]['count']})")
        result = {"machine": machine(), "store": "postgresql" if args.store else "sqlite",
                  "running_tasks": args.running, "mix": dict(zip(ROUTES, MIX)), "runs": rows}
    path = save_json("api_load", result)
    plot(rows, RESULTS / "api_load.png")
    print(f"wrote {path} and {RESULTS / 'api_load.png'}")
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        xs = [k + i * width for k in range(len(ROUTES))]
        ax.bar(xs, [row["routes"][r]["p99_ms"] or 0 for r in ROUTES], width,
               label=f"{row['clients']} clients: p99 ({row['ok_per_sec']} ok/s)")
        ax.scatter(xs, [row["routes"][r]["p50_ms"] or 0 for r in ROUTES], color="black",
                   zorder=3, s=12)
    ax.set_xticks([k + width * (len(rows) - 1) / 2 for k in range(len(ROUTES))], ROUTES)
    ax.set_ylabel("latency, ms (bars p99, dots p50)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Titus master under API load (agents heartbeating, loop placing)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
