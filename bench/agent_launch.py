"""Launch overhead of the Docker runtime, and containers launched per second per agent.

Three ways to start the same container (test image, ``sleep 60``, same limits):

- ``bare_sdk``: ``client.containers.run(..., detach=True)``, the engine's own create + start;
- ``bare_cli``: ``docker run -d`` (adds the CLI's process start);
- ``runtime``: ``DockerRuntime.launch`` until its Started status arrives from the event stream.

Launch latency is measured one container at a time, the three ways interleaved (median of
``--repeat`` rounds); throughput
launches ``--burst`` containers at once through one runtime and divides by the time until the
last is Started. Prints a table and writes ``bench/results/agent_launch.json``. Needs a Docker
engine and the image from ``.ci/docker.sh``. Never fails on time: the figures are the output.

    python bench/agent_launch.py [--repeat 15] [--burst 20]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import threading
import time
import uuid

import docker

from titus.agent.docker_runtime import DockerRuntime
from titus.protocol import LaunchOrder

IMAGE = os.environ.get("TITUS_TEST_IMAGE", "titus-test/busybox:latest")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "agent_launch.json")
CPUS, MEMORY_MB, PIDS = 0.5, 64, 1024


def _cleanup(client: docker.DockerClient, agent_id: str) -> None:
    for container in client.containers.list(all=True, sparse=True,
                                            filters={"label": f"titus.agent_id={agent_id}"}):
        container.remove(force=True)


def bare_sdk(client: docker.DockerClient, agent_id: str, i: int) -> float:
    """Seconds for ``containers.run(detach=True)`` of the same container."""
    memory = MEMORY_MB * 1024 * 1024
    began = time.perf_counter()
    client.containers.run(IMAGE, ["sleep", "60"], detach=True, name=f"bench-sdk-{agent_id}-{i}",
                          labels={"titus.agent_id": agent_id}, nano_cpus=int(CPUS * 1e9),
                          mem_limit=memory, memswap_limit=memory, pids_limit=PIDS)
    took = time.perf_counter() - began
    _cleanup(client, agent_id)
    return took


def bare_cli(client: docker.DockerClient, agent_id: str, i: int) -> float:
    """Seconds for ``docker run -d`` of the same container."""
    began = time.perf_counter()
    subprocess.run(["docker", "run", "-d", "--label", f"titus.agent_id={agent_id}",
                    "--cpus", str(CPUS), "-m", f"{MEMORY_MB}m", "--memory-swap", f"{MEMORY_MB}m",
                    "--pids-limit", str(PIDS), IMAGE, "sleep", "60"],
                   check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - began
    _cleanup(client, agent_id)
    return took


class _Started:
    """Records when each task's Started status arrives."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.cond = threading.Condition()

    def __call__(self, status) -> None:
        if status.state in ("Started", "Finished"):
            with self.cond:
                self.at.setdefault(status.task_id, time.perf_counter())
                self.cond.notify_all()

    def wait(self, task_ids: list[str], timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        with self.cond:
            while not all(t in self.at for t in task_ids):
                if not self.cond.wait(timeout=max(0.0, deadline - time.time())):
                    raise TimeoutError(f"not started: {[t for t in task_ids if t not in self.at]}")


def _order(task_id: str) -> LaunchOrder:
    return LaunchOrder(task_id=task_id, job_id="bench", host_id="", image=IMAGE,
                       command=["sleep", "60"], cpus=CPUS, memory_mb=MEMORY_MB)


def latencies(client: docker.DockerClient, agent_id: str, n: int) -> dict[str, list[float]]:
    """Launch seconds of the three ways, interleaved round by round so that load from anything
    else on the machine hits them alike. The runtime's figure runs from ``launch`` to its
    Started status."""
    started = _Started()
    rt = DockerRuntime(agent_id, client=client, pids_limit=PIDS)
    rt.start(started)
    rt.connected.wait(10)
    times: dict[str, list[float]] = {"bare_sdk": [], "bare_cli": [], "runtime": []}
    try:
        for i in range(n):
            times["bare_sdk"].append(bare_sdk(client, agent_id, i))
            times["bare_cli"].append(bare_cli(client, agent_id, i))
            task = f"lat-{i}"
            began = time.perf_counter()
            rt.launch(_order(task))
            started.wait([task])
            times["runtime"].append(started.at[task] - began)
            rt.remove(task)
    finally:
        rt.close()
        _cleanup(client, agent_id)
    return times


def runtime_throughput(client: docker.DockerClient, agent_id: str, burst: int) -> float:
    """Containers per second: ``burst`` launches at once until the last is Started."""
    started = _Started()
    rt = DockerRuntime(agent_id, client=client, pids_limit=PIDS)
    rt.start(started)
    rt.connected.wait(10)
    tasks = [f"burst-{i}" for i in range(burst)]
    try:
        began = time.perf_counter()
        for task in tasks:
            rt.launch(_order(task))
        started.wait(tasks)
        return burst / (max(started.at.values()) - began)
    finally:
        rt.close()
        _cleanup(client, agent_id)


def _summary(times: list[float]) -> dict:
    return {"median_ms": round(statistics.median(times) * 1000, 1),
            "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))] * 1000, 1),
            "min_ms": round(min(times) * 1000, 1), "n": len(times)}


def main() -> None:
    """Run the three launch measurements and the burst; print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="launches per latency measurement")
    parser.add_argument("--burst", type=int, default=20, help="containers in the throughput burst")
    args = parser.parse_args()
    client = docker.from_env(timeout=120)
    client.images.get(IMAGE)  # fail early when .ci/docker.sh has not run
    agent_id = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        bare_sdk(client, agent_id, -1)  # warm the engine's caches
        times = latencies(client, agent_id, args.repeat)
        sdk, cli, ours = (_summary(times[k]) for k in ("bare_sdk", "bare_cli", "runtime"))
        rate = runtime_throughput(client, agent_id, args.burst)
    finally:
        _cleanup(client, agent_id)
    info = client.version()
    result = {
        "bare_sdk": sdk, "bare_cli": cli, "runtime": ours,
        "overhead_vs_sdk": round(ours["median_ms"] / sdk["median_ms"], 3),
        "overhead_vs_cli": round(ours["median_ms"] / cli["median_ms"], 3),
        "target_overhead": 1.2,
        "containers_per_sec": round(rate, 2), "burst": args.burst,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "docker": info.get("Version"),
                    "storage_driver": client.info().get("Driver")},
    }
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        json.dump(result, out, indent=2)
    print(f"{'launch':<12}{'median ms':>10}{'p90 ms':>9}{'min ms':>9}")
    for name in ("bare_sdk", "bare_cli", "runtime"):
        row = result[name]
        print(f"{name:<12}{row['median_ms']:>10}{row['p90_ms']:>9}{row['min_ms']:>9}")
    print(f"overhead vs bare SDK run: {result['overhead_vs_sdk']}x, vs docker run: "
          f"{result['overhead_vs_cli']}x (target <= 1.2x)")
    print(f"throughput: {result['containers_per_sec']} containers/s per agent "
          f"(burst of {args.burst})")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
