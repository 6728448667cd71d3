"""Failover: kill -9 of the leading master, again and again; how long until a new master
leads and places work, and whether any task was lost or run twice.

Three masters (one when the master has no standbys yet: the killed master is then started
again and the figure is a restart's) and three sim agents on a throwaway PostgreSQL cluster
this script creates. A service job keeps ``--steady`` tasks running throughout. Each round:
kill -9 the leader, at once submit a one-task batch job through any master (the client
retries with the same Idempotency-Key until one takes it), then measure

- ``failover_sec``: from the kill to the first answer of another master's ``/health`` with
  ``role: leader`` (one master: of the restarted one);
- ``first_task_sec``: from the kill to the probe job's task starting on an agent (the
  agent's journal; the same monotonic clock);

then start the killed master again (a new standby) and count, from the agents' journals and
the master's views, steady tasks lost (their run ended, or the master no longer shows them
Started) and tasks duplicated (an index running twice at once, a task id started again).

Prints a summary, writes ``bench/results/failover.json`` and ``bench/results/failover.png``.
Never fails on time: the figures are the output.

    python bench/failover.py                 # 20 kills, lease 6 s (the default)
    python bench/failover.py --kills 30 --lease-sec 3
"""
from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from bench.chaos import percentile  # noqa: E402
from bench.common import RESULTS, machine, save_json  # noqa: E402
from tests.chaos.client import ChaosClient, GaveUp  # noqa: E402
from tests.chaos.cluster import ChaosCluster, health_of  # noqa: E402
from tests.chaos.journal import read_runs  # noqa: E402
from tests.chaos.pgcluster import PgCluster  # noqa: E402
from tests.integration.platform import batch_job, service_job  # noqa: E402
from titus.master.config import MasterSettings  # noqa: E402


def started_ids(client: ChaosClient, job_id: str) -> set[str]:
    """Ids of the job's tasks the master shows Started."""
    return {t["id"] for t in client.tasks(job_id) if t["status"]["state"] == "Started"}


def wait_until(predicate, timeout: float, step: float = 0.05):
    """Poll ``predicate`` until truthy (returned) or ``timeout`` (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def one_kill(cluster: ChaosCluster, client: ChaosClient, steady_id: str, steady: int,
             number: int, timeout: float) -> dict:
    """Kill the leader once; the figures of that failover."""
    leader, body = cluster.wait_leader(timeout)
    before = started_ids(client, steady_id)
    probe: dict = {}

    def submit_probe() -> None:
        try:
            probe["job_id"] = client.submit(batch_job(1, duration=0.5, name=f"probe{number}"),
                                            str(uuid.uuid4()))
            probe["accepted"] = time.monotonic()
        except GaveUp as exc:
            probe["error"] = str(exc)[:300]

    killed_at = time.monotonic()
    leader.kill_master(signal.SIGKILL)
    thread = threading.Thread(target=submit_probe, daemon=True)
    thread.start()
    record = {"kill": number, "killed": leader.url, "epoch_before": body["epoch"]}
    if len(cluster.masters) > 1:
        others = [m.url for m in cluster.masters if m.url != leader.url]
        found = wait_until(lambda: next(
            ((url, b) for url in others if (b := health_of(url, 0.3)) and b["role"] == "leader"),
            None), timeout, step=0.02)
        leader.start_master(wait=False)
    else:
        leader.start_master(wait=False)
        found = wait_until(lambda: (b := health_of(leader.url, 0.3)) and b["role"] == "leader"
                           and (leader.url, b), timeout, step=0.02)
    if found:
        record.update(failover_sec=round(time.monotonic() - killed_at, 3),
                      new_leader=found[0], epoch_after=found[1]["epoch"])
    thread.join(timeout)
    journals = [slot.journal for slot in cluster.agents.values()]
    if "job_id" in probe:
        record["submit_accepted_sec"] = round(probe["accepted"] - killed_at, 3)
        first = wait_until(lambda: min((r.start for r in read_runs(journals)
                                        if r.job == probe["job_id"]), default=None),
                           timeout)
        if first is not None:
            record["first_task_sec"] = round(first - killed_at, 3)
    else:
        record["probe_error"] = probe.get("error")
    leader.wait_master_ready(timeout)
    after = wait_until(lambda: (ids := started_ids(client, steady_id)) and len(ids) == steady
                       and ids, 30) or started_ids(client, steady_id)
    runs = read_runs(journals)
    steady_ended = [r.task for r in runs if r.job == steady_id and r.end is not None
                    and r.end >= killed_at]
    record["lost"] = len(before - after) + len(set(steady_ended) - (before - after))
    record["duplicated"] = duplicates(runs, probe.get("job_id"), since=killed_at)
    record["steady_started_after"] = len(after)
    return record


def duplicates(runs, probe_job, since: float) -> int:
    """Since ``since``: task ids started again, indexes running twice at one moment, a probe
    job started more than once (earlier rounds' duplicates are theirs)."""
    by_task, by_index = defaultdict(list), defaultdict(list)
    for run in runs:
        by_task[run.task].append(run)
        by_index[(run.job, run.index)].append(run)
    count = sum(run.start >= since for group in by_task.values() for run in group[1:])
    for group in by_index.values():
        count += sum(a.task != b.task and a.overlaps(b) and max(a.start, b.start) >= since
                     for i, a in enumerate(group) for b in group[i + 1:])
    if probe_job:
        count += max(0, sum(r.job == probe_job for r in runs) - 1)
    return count


def plot(kills: list[dict], summary: dict, path: Path, title: str) -> Path:
    """Failover and first-task times per kill, with p50/p99 and the 10 s target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.4))
    for key, colour, label in (("failover_sec", "tab:blue", "new leader answers /health"),
                               ("first_task_sec", "tab:orange", "first task placed")):
        points = [(k["kill"], k[key]) for k in kills if k.get(key) is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, "o", color=colour,
                    label=f"{label}: p50 {summary[key]['p50']} s, p99 {summary[key]['p99']} s")
            ax.axhline(summary[key]["p50"], color=colour, linestyle=":", linewidth=1)
    ax.axhline(10, color="tab:red", linestyle="--", label="target 10 s")
    ax.set_xlabel("kill")
    ax.set_ylabel("seconds after kill -9 of the leader")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{summary['kills']} leader kills: {summary['tasks_lost']} tasks lost, "
                 f"{summary['tasks_duplicated']} duplicated")
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    """Kill the leader ``--kills`` times; print, write the JSON and the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lease-sec", type=float, default=6.0)
    parser.add_argument("--masters", type=int, default=None,
                        help="default: 3 when the master supports standbys, else 1")
    parser.add_argument("--heartbeat-timeout-sec", type=float, default=3.0,
                        help="agents' silence limit (the chaos suite's; the product's is 10)")
    parser.add_argument("--steady", type=int, default=6, help="service tasks kept running")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--name", default="failover")
    args = parser.parse_args()
    masters = args.masters or (3 if "lease_sec" in MasterSettings.model_fields else 1)
    timeout = args.lease_sec + 60
    kills: list[dict] = []
    began = time.time()
    with PgCluster() as pg, tempfile.TemporaryDirectory(prefix="titus-failover-") as work:
        cluster = ChaosCluster(Path(work), pg.create_database("failover"), masters=masters,
                               agents=3, hosts_per_agent=2, lease_sec=args.lease_sec,
                               heartbeat_timeout_sec=args.heartbeat_timeout_sec)
        with cluster:
            client = ChaosClient(cluster.urls, cluster.token, random.Random(args.seed),
                                 timeout=5.0)
            steady_id = client.submit(service_job(args.steady, maximum=20, name="steady"),
                                      str(uuid.uuid4()))
            wait_until(lambda: len(started_ids(client, steady_id)) == args.steady, 60)
            for number in tqdm(range(args.kills), desc="leader kills", unit="kill",
                               file=sys.stderr):
                kills.append(one_kill(cluster, client, steady_id, args.steady, number,
                                      timeout))
                time.sleep(0.5)
            client.close()
    summary = {"kills": len(kills), "masters": masters, "lease_sec": args.lease_sec,
               "heartbeat_timeout_sec": args.heartbeat_timeout_sec,
               "tasks_lost": sum(k.get("lost", 0) for k in kills),
               "tasks_duplicated": sum(k.get("duplicated", 0) for k in kills),
               "no_new_leader": sum("failover_sec" not in k for k in kills),
               "no_first_task": sum("first_task_sec" not in k for k in kills)}
    for key in ("failover_sec", "first_task_sec", "submit_accepted_sec"):
        values = [k[key] for k in kills if k.get(key) is not None]
        summary[key] = {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
                        "max": max(values, default=None)}
    facts = machine()
    payload = {"benchmark": "failover", "machine": facts, "summary": summary,
               "command": "python bench/failover.py " + " ".join(sys.argv[1:]),
               "wall_sec": round(time.time() - began, 1), "kills": kills}
    json_path = save_json(args.name, payload)
    png = plot(kills, summary, RESULTS / f"{args.name}.png",
               f"{masters} master(s), lease {args.lease_sec} s, {facts['cpu']} "
               f"x{facts['cores']}")
    print(f"\n{summary['kills']} leader kills ({masters} masters, lease {args.lease_sec} s): "
          f"failover p50 {summary['failover_sec']['p50']} s p99 "
          f"{summary['failover_sec']['p99']} s; first task p50 "
          f"{summary['first_task_sec']['p50']} s p99 {summary['first_task_sec']['p99']} s; "
          f"tasks lost {summary['tasks_lost']}, duplicated {summary['tasks_duplicated']}")
    print(f"wrote {json_path} and {png}")


if __name__ == "__main__":
    main()
