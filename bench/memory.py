"""Engine memory: peak RSS growth per host and per queued task.

Each measurement runs in a fresh subprocess that builds its inputs first (Host objects, demand
arrays), then resets the kernel's peak-RSS mark (``/proc/self/clear_refs``) and reads ``VmHWM``
from ``/proc/self/status`` around one step:

- hosts: ``Scheduler.add_hosts`` of H hosts, then one scheduling call of one task, which builds
  the host-class index (engine state, the index, and what the Python wrapper keeps);
- tasks: ``schedule_arrays`` of N rows onto a cluster (held-task state plus the call's own
  buffers; the caller's input arrays already exist and are not counted).

Per-host and per-task figures are slopes between two sizes, so fixed costs (allocator arenas,
first-call buffers) cancel out. A second pass of subprocesses measures, with tracemalloc, the
part that is Python-level (objects and numpy buffers the wrapper keeps); the engine also reports
its own dense arrays. The rest of the RSS growth is the engine's other C++ structures.

    python bench/memory.py                      # hosts 10k -> 100k, tasks 100k -> 1M

Writes bench/results/memory.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, save_json  # noqa: E402


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(kind: str, size: int, hosts: int, constraints: str, seed: int,
          trace: bool = False) -> dict:
    """Measure one step in this process (run via ``--child``); returns bytes of growth.

    With ``trace``, measures instead what Python-level allocations (tracemalloc: objects and
    numpy buffers, not the engine's C++ memory) the step keeps.
    """
    import gc
    import tracemalloc

    from titus import Task
    from titus.scheduler.factory import make_scheduler
    from titus.workloads import generate

    if kind == "hosts":
        workload = generate(hosts=size, tasks=0, seed=seed)
    else:
        workload = generate(hosts=hosts, tasks=size, constraints=constraints, seed=seed)
    host_objects = workload.hosts()
    scheduler = make_scheduler("native", seed=seed)
    if kind == "tasks":
        scheduler.add_hosts(host_objects)
    gc.collect()
    if trace:
        tracemalloc.start()
    exact = _reset_peak()
    before_hwm, before_rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    if kind == "hosts":
        scheduler.add_hosts(host_objects)
        placed = len(scheduler.schedule([Task("probe", cpus=0.5, memory_mb=64)]).assignments)
    else:
        out = scheduler.schedule_arrays(workload.demand, workload.task_class, workload.classes)
        placed = int((out >= 0).sum())
    after_hwm, after_rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    if trace:
        python_bytes, python_peak = tracemalloc.get_traced_memory()
        return {"kind": kind, "size": size, "python_bytes": python_bytes,
                "python_peak_bytes": python_peak}
    # the engine's own account of its dense arrays, where it offers one
    engine = getattr(scheduler, "_engine", None)
    return {"kind": kind, "size": size, "placed": placed, "peak_reset": exact,
            "peak_growth_bytes": (after_hwm - before_hwm) * 1024,
            "rss_growth_bytes": (after_rss - before_rss) * 1024,
            "engine_host_bytes": getattr(engine, "host_bytes", None),
            "engine_task_bytes": getattr(engine, "task_bytes", None)}


def _run_child(kind, size, hosts, constraints, seed, trace=False) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(size),
           "--cluster-hosts", str(hosts), "--constraints", constraints, "--seed", str(seed)]
    if trace:
        cmd.append("--trace")
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _slope(small: dict, large: dict, key: str, count_key: str = "size") -> float:
    return (large[key] - small[key]) / (large[count_key] - small[count_key])


def main(argv=None) -> int:
    """Measure and print bytes per host and per queued task."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", default="10000,100000", help="two host counts (slope between)")
    p.add_argument("--tasks", default="100000,1000000", help="two task counts (slope between)")
    p.add_argument("--cluster-hosts", type=int, default=100_000,
                   help="cluster size for the task measurements")
    p.add_argument("--constraints", default="zone")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, size = args.child
        print(json.dumps(child(kind, int(size), args.cluster_hosts, args.constraints, args.seed,
                               args.trace)))
        return 0
    host_sizes = [int(x) for x in args.hosts.split(",")]
    task_sizes = [int(x) for x in args.tasks.split(",")]
    hosts = [_run_child("hosts", n, args.cluster_hosts, args.constraints, args.seed)
             for n in host_sizes]
    tasks = [_run_child("tasks", n, args.cluster_hosts, args.constraints, args.seed)
             for n in task_sizes]
    traced_hosts = [_run_child("hosts", n, args.cluster_hosts, args.constraints, args.seed, True)
                    for n in host_sizes]
    traced_tasks = [_run_child("tasks", n, args.cluster_hosts, args.constraints, args.seed, True)
                    for n in task_sizes]
    result = {
        "hosts": hosts, "tasks": tasks, "traced_hosts": traced_hosts, "traced_tasks": traced_tasks,
        "python_bytes_per_host": _slope(traced_hosts[0], traced_hosts[-1], "python_bytes"),
        "python_bytes_per_task": _slope(traced_tasks[0], traced_tasks[-1], "python_bytes"), "cluster_hosts": args.cluster_hosts,
        "constraints": args.constraints,
        "bytes_per_host_peak": _slope(hosts[0], hosts[-1], "peak_growth_bytes"),
        "bytes_per_host_rss": _slope(hosts[0], hosts[-1], "rss_growth_bytes"),
        # per task: over tasks placed (a task that fails is not held)
        "bytes_per_task_peak": _slope(tasks[0], tasks[-1], "peak_growth_bytes", "size"),
        "bytes_per_task_rss": _slope(tasks[0], tasks[-1], "rss_growth_bytes", "size"),
    }
    for row in hosts + tasks:
        print(f"{row['kind']:>5} {row['size']:>9,}: peak +{row['peak_growth_bytes'] / 2**20:8.1f} MiB"
              f"  rss +{row['rss_growth_bytes'] / 2**20:8.1f} MiB  (placed {row['placed']:,})")
    print(f"per host: {result['bytes_per_host_peak']:.0f} B peak growth "
          f"({result['bytes_per_host_rss']:.0f} B resident)")
    print(f"per queued task: {result['bytes_per_task_peak']:.0f} B peak growth "
          f"({result['bytes_per_task_rss']:.0f} B resident)")
    print(f"of which Python-level (tracemalloc, kept): {result['python_bytes_per_host']:.0f} B per "
          f"host, {result['python_bytes_per_task']:.0f} B per queued task")
    if hosts[-1].get("engine_host_bytes") is not None:
        result["engine_reported_host_bytes"] = hosts[-1]["engine_host_bytes"]
        result["engine_reported_task_bytes"] = tasks[-1]["engine_task_bytes"]
        print(f"engine's own account (dense arrays): {result['engine_reported_host_bytes']} B per "
              f"host, {result['engine_reported_task_bytes']} B per held task")
    path = save_json("memory", {"machine": machine(),
                                "command": " ".join(["python bench/memory.py", *(argv or sys.argv[1:])]),
                                "result": result})
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
