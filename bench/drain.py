"""Drain benchmark: empty 100 sim hosts running service jobs with disruption budgets.

A real ``titus master`` (subprocess, SQLite) and four sim agents: two hold the hosts to drain
(``--hosts``, split over zones a and b), two hold as many hosts to move to. ``--jobs``
service jobs of ``--replicas`` tasks each spread over all hosts (the default spread), every
job with the budget ``availabilityPercentageLimit --percent`` and ``ratePerInterval
--rate`` per ``--interval-ms``. Then every host of the first two agents is drained through
``PUT /api/v3/hosts/{id}/drain`` and the tasks are sampled until those hosts are empty.

Figures: seconds from the first drain request to empty hosts; the worst availability seen,
as the fewest tasks of any job serving (Started, not being killed) over its desired count,
and as the fewest healthy by the budget's count (a task whose relocation has begun no longer
counts); the most relocations under way at once; the relocations done.

Prints a summary, writes ``bench/results/drain.json`` and ``bench/results/drain.png``.

    python bench/drain.py
    python bench/drain.py --hosts 20 --jobs 10
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, machine, save_json  # noqa: E402
from titus.cli.local_cluster import LocalCluster  # noqa: E402

MASTER_ENV = {"TITUS_HEARTBEAT_INTERVAL_SEC": "0.2", "TITUS_SCHEDULE_INTERVAL_SEC": "0.05",
              "TITUS_RECONCILE_INTERVAL_SEC": "0.2", "TITUS_SUBMIT_RATE_PER_SEC": "0",
              "TITUS_MAX_INFLIGHT_REQUESTS": "0"}


def service(name: str, replicas: int, percent: float, rate: int, interval_ms: int) -> dict:
    """A service job of sim tasks that run for a day, with its disruption budget."""
    return {"applicationName": name, "owner": {"teamEmail": "bench@example.com"},
            "container": {"image": {"name": "sim", "tag": "latest"},
                          "env": {"TITUS_SIM_DURATION_SEC": "86400"},
                          "resources": {"cpu": 0.5, "memoryMB": 256},
                          "killGracePeriodSeconds": 1},
            "service": {"capacity": {"min": 0, "desired": replicas, "max": replicas * 2}},
            "disruptionBudget": {
                "availabilityPercentageLimit": {"percentageOfHealthyContainers": percent},
                "ratePerInterval": {"intervalMs": str(interval_ms), "limitPerInterval": rate}}}


def all_tasks(http) -> list[dict]:
    out, cursor = [], None
    while True:
        params = {"pageSize": 5000, **({"cursor": cursor} if cursor else {})}
        body = http.get("/api/v3/tasks", params=params).json()
        out += body["items"]
        page = body.get("pagination") or {}
        cursor = page.get("cursor")
        if not page.get("hasMore") or not cursor:
            return out


def sample(http, drained: set[str], desired: dict[str, int]) -> dict:
    """Tasks left on drained hosts, the worst job's serving and healthy fractions, moves."""
    tasks = all_tasks(http)
    serving, healthy = Counter(), Counter()
    still = {t["id"] for t in tasks if t["status"]["state"] not in ("Finished", "KillInitiated")}
    # old tasks whose relocation has begun and that still serve: replacement live, old not gone
    moving = {t["taskContext"]["task.relocates"] for t in tasks
              if t["status"]["state"] != "Finished" and "task.relocates" in t["taskContext"]
              } & still
    left = 0
    for t in tasks:
        st = t["status"]["state"]
        if st != "Finished" and t.get("hostId") in drained:
            left += 1
        if st == "Started":
            serving[t["jobId"]] += 1
            if t["id"] not in moving:
                healthy[t["jobId"]] += 1
    return {"left": left, "in_flight": len(moving),
            "serving": min(serving[j] / n for j, n in desired.items()),
            "healthy": min(healthy[j] / n for j, n in desired.items()),
            "relocated": sum(1 for t in tasks if t["status"].get("reasonCode") == "relocated")}


def plot(timeline: list[dict], args, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [p["t"] for p in timeline]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(t, [100 * p["serving"] for p in timeline], label="worst job: serving")
    top.plot(t, [100 * p["healthy"] for p in timeline], label="worst job: healthy (budget's count)")
    top.axhline(args.percent, color="red", linestyle="--", label=f"budget {args.percent:g}%")
    top.set_ylabel("% of desired")
    top.set_ylim(0, 105)
    top.legend(loc="lower left")
    bottom.plot(t, [p["left"] for p in timeline], label="tasks left on drained hosts")
    bottom.plot(t, [p["in_flight"] for p in timeline], label="relocations under way")
    bottom.set_xlabel("seconds since the drain began")
    bottom.legend(loc="upper right")
    fig.suptitle(f"Drain of {args.hosts} sim hosts: {args.jobs} jobs x {args.replicas} replicas")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100, help="hosts to drain")
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--percent", type=float, default=80.0)
    parser.add_argument("--rate", type=int, default=3, help="relocations per interval per job")
    parser.add_argument("--interval-ms", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--name", default="drain")
    args = parser.parse_args(argv)
    half = max(1, args.hosts // 2)
    with tempfile.TemporaryDirectory(prefix="titus-drain-") as work, \
            LocalCluster(work, master_env=MASTER_ENV) as cluster:
        cluster.start_master()
        names = {"d0": "a", "d1": "b", "t0": "a", "t1": "b"}
        for name, zone in names.items():
            cluster.start_agent(name, hosts=half, cpus=4, memory_mb=16384, zones=(zone,),
                                launch_log=False)
        http = cluster.client(timeout=60)
        deadline = time.monotonic() + 60
        while len(http.get("/api/v3/hosts").json()["items"]) < 4 * half:
            if time.monotonic() > deadline:
                raise SystemExit("the agents did not register")
            time.sleep(0.2)
        desired = {}
        for i in range(args.jobs):
            r = http.post("/api/v3/jobs", json=service(f"svc{i}", args.replicas, args.percent,
                                                       args.rate, args.interval_ms))
            desired[r.json()["id"]] = args.replicas
        total = args.jobs * args.replicas
        while sum(1 for t in all_tasks(http) if t["status"]["state"] == "Started") < total:
            if time.monotonic() > deadline + 60:
                raise SystemExit("the jobs did not start")
            time.sleep(0.2)
        hosts = http.get("/api/v3/hosts").json()["items"]
        drained = {h["id"] for h in hosts if h["agentId"] in ("d0", "d1")}
        per_host = defaultdict(int)
        for t in all_tasks(http):
            if t.get("hostId") in drained and t["status"]["state"] == "Started":
                per_host[t["hostId"]] += 1
        to_move = sum(per_host.values())
        began = time.monotonic()
        for host in sorted(drained):
            assert http.put(f"/api/v3/hosts/{host}/drain").status_code == 200
        requests_sec = time.monotonic() - began
        timeline = []
        while True:
            point = sample(http, drained, desired)
            point["t"] = round(time.monotonic() - began, 3)
            timeline.append(point)
            if point["left"] == 0 or point["t"] > args.timeout:
                break
            time.sleep(0.05)
        empty_sec = timeline[-1]["t"] if timeline[-1]["left"] == 0 else None
        result = {
            "machine": machine(),
            "params": vars(args),
            "drained_hosts": len(drained), "target_hosts": len(hosts) - len(drained),
            "tasks": total, "tasks_to_move": to_move,
            "drain_requests_sec": round(requests_sec, 3),
            "seconds_to_empty": empty_sec,
            "worst_serving_fraction": min(p["serving"] for p in timeline),
            "worst_healthy_fraction": min(p["healthy"] for p in timeline),
            "max_in_flight": max(p["in_flight"] for p in timeline),
            "relocated": timeline[-1]["relocated"],
            "samples": len(timeline),
            "timeline": timeline,
        }
    path = save_json(args.name, result)
    png = plot(result["timeline"], args, RESULTS / f"{args.name}.png")
    print(f"drained {result['drained_hosts']} hosts ({to_move} tasks to move, {total} tasks "
          f"in {args.jobs} jobs) in {empty_sec}s; worst job serving "
          f"{100 * result['worst_serving_fraction']:.0f}%, healthy by the budget "
          f"{100 * result['worst_healthy_fraction']:.0f}% (budget {args.percent:g}%); "
          f"at most {result['max_in_flight']} relocations at once; CPU {result['machine']['cpu']}")
    print(f"wrote {path} and {png}")
    return result


if __name__ == "__main__":
    main()
