"""Short containers through the Docker runtime while the engine goes away again and again.

``--tasks`` containers (``true``, 0.25 CPU, 32 MB) are launched through one
``DockerRuntime`` that reaches the engine through a socket proxy
(``tests.faults.engine_proxy``); during the run the proxy is closed for ``--outage-sec``
seconds ``--outages`` times (every open connection cut, new ones refused). Counted: how each
task ended (the goal: every one ``normal``, 0 user-visible failures), launch retries, and the
wall time. Prints a line and writes ``bench/results/docker_outage.json``. Needs the engine
and the image from ``.ci/docker.sh``.

    python bench/docker_outage.py [--tasks 200] [--outages 3] [--outage-sec 5]
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import machine, save_json  # noqa: E402
from tests.faults.engine_proxy import EngineProxy  # noqa: E402
from titus.agent.docker_runtime import DockerRuntime  # noqa: E402
from titus.protocol import LaunchOrder  # noqa: E402

IMAGE = os.environ.get("TITUS_TEST_IMAGE", "titus-test/busybox:latest")


def run(tasks: int, outages: int, outage_sec: float, gap_sec: float) -> dict:
    """Launch ``tasks`` containers with ``outages`` engine outages; returns the figures."""
    agent_id = f"bench-outage-{uuid.uuid4().hex[:8]}"
    done: dict[str, object] = {}
    finished = threading.Event()

    def emit(status) -> None:
        if status.state == "Finished" and status.task_id not in done:
            done[status.task_id] = status
            if len(done) == tasks:
                finished.set()

    with EngineProxy() as proxy:
        rt = DockerRuntime(agent_id, base_url=proxy.url, launch_retry_sec=60.0,
                           max_backoff_sec=1.0)
        rt.start(emit)
        rt.connected.wait(30)
        began = time.monotonic()
        for i in range(tasks):
            rt.launch(LaunchOrder(task_id=f"{agent_id}-{i}", job_id="bench", image=IMAGE,
                                  command=["true"], cpus=0.25, memory_mb=32, host_id=""))
        cut_at = []
        for _ in range(outages):
            time.sleep(gap_sec)
            cut_at.append(round(time.monotonic() - began, 1))
            proxy.close()
            time.sleep(outage_sec)
            proxy.reopen()
        finished.wait(600)
        took = time.monotonic() - began
        reasons = collections.Counter(s.reason for s in done.values())
        for task_id in list(done):
            rt.remove(task_id)
        rt.close()
    return {"tasks": tasks, "outages": outages, "outage_sec": outage_sec, "cut_at_sec": cut_at,
            "finished": len(done), "reasons": dict(reasons),
            "user_visible_failures": sum(n for r, n in reasons.items() if r != "normal"),
            "launch_retries": rt.stats["launch_retries"], "seconds": round(took, 1),
            "cuts": proxy.cuts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--outages", type=int, default=3)
    parser.add_argument("--outage-sec", type=float, default=5.0)
    parser.add_argument("--gap-sec", type=float, default=8.0, help="running time between outages")
    args = parser.parse_args()
    result = run(args.tasks, args.outages, args.outage_sec, args.gap_sec)
    result["machine"] = machine()
    print(f"{result['finished']}/{result['tasks']} finished, reasons {result['reasons']}, "
          f"{result['user_visible_failures']} user-visible failures, "
          f"{result['launch_retries']} launch retries, {result['seconds']} s "
          f"(engine cut at {result['cut_at_sec']} s for {args.outage_sec} s each)")
    print("wrote", save_json("docker_outage", result))


if __name__ == "__main__":
    main()
