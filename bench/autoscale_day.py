"""A simulated day of the autoscaler against moto's Auto Scaling groups, with faults.

Two instance groups (``alpha``, ``beta``: 4-cpu hosts, rule min_idle 1 / max_idle 2) are
backed by Auto Scaling groups on moto's server (real HTTP). Simulated agents stand for the
instances: an instance joins (its host registers) 3 minutes after it is first seen, except
10% that never join. Tasks (1-2 cpus, 10-60 min) arrive on a daily curve and are placed
first-fit on joined, non-draining hosts; what does not fit is the autoscaler's shortfall.
Halfway through, ``alpha``'s Auto Scaling group is deleted out of band.

Measured: tasks placed and still waiting, busy hosts terminated by the autoscaler (the goal:
0), instances terminated for never joining, the broken group's reported error, and hosts per
group over time (plotted to ``bench/results/autoscale_day.png`` when matplotlib is there,
else ``.svg``). Writes ``bench/results/autoscale_day.json``. Bounded: about a minute.

    python bench/autoscale_day.py [--hours 24] [--step-sec 120] [--seed 1]
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import RESULTS, machine, save_json  # noqa: E402
from titus.autoscale.autoscaler import TERMINATE, Autoscaler  # noqa: E402
from titus.autoscale.groups import InstanceGroup, InstanceGroupRegistry  # noqa: E402
from titus.autoscale.hostview import HostView  # noqa: E402
from titus.autoscale.providers.ec2 import Ec2Provider  # noqa: E402
from titus.autoscale.rules import AutoscaleRule, RuleBook  # noqa: E402
from titus.scheduler.model import Task  # noqa: E402

BOOT_SEC = 180.0
GROUPS = ("alpha", "beta")


def never_joins(instance_id: str, share: float) -> bool:
    """Whether a simulated instance never registers (a fixed ``share`` of ids)."""
    return int(hashlib.sha256(instance_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def simulate(moto_url: str, hours: float = 24.0, step_sec: float = 120.0, seed: int = 1,
             never_join_share: float = 0.10, delete_at: float | None = None) -> dict:
    """Run the day; returns the figures and the per-step series."""
    rng = random.Random(seed)
    provider = Ec2Provider(region="us-east-1", endpoint_url=moto_url, image_id=_image(moto_url),
                           prefix=f"day{seed}-{int(time.time() * 1000) % 10**8}-",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    itype = provider.instance_type("m5.xlarge")
    groups = InstanceGroupRegistry([InstanceGroup(name=g, instance_type=itype,
                                                  zones=("us-east-1a", "us-east-1b"),
                                                  max_size=40) for g in GROUPS])
    for g in groups:
        provider.ensure_group(g)
    rules = RuleBook(groups, [AutoscaleRule(group=g, min_idle=1, max_idle=2, cooldown_sec=300)
                              for g in GROUPS])
    scaler = Autoscaler(groups, rules, provider, provision_timeout_sec=900)
    end = hours * 3600.0
    delete_at = end / 2 if delete_at is None else delete_at
    first_seen: dict[str, float] = {}
    running: dict[str, list[tuple[float, float]]] = {}  # host id -> [(ends at, cpus)]
    waiting: list[tuple[str, float, float]] = []  # (task id, cpus, duration)
    figures = {"submitted": 0, "placed": 0, "busy_terminated": 0, "provision_timeouts": 0,
               "lost_to_deletion": 0, "errors": {}}
    series = []
    serial = 0
    now = 0.0
    deleted = False
    while now < end:
        if not deleted and now >= delete_at:
            provider.asg.delete_auto_scaling_group(
                AutoScalingGroupName=provider.asg_name("alpha"), ForceDelete=True)
            deleted = True
        # arrivals on a daily curve (a busy afternoon, a quiet night)
        rate = 3.0 + 2.5 * math.sin(2 * math.pi * (now / 86400.0 - 0.25))
        for _ in range(_poisson(rng, max(0.2, rate) * step_sec / 120.0)):
            serial += 1
            waiting.append((f"t{serial}", rng.choice((1.0, 2.0)), rng.uniform(600, 3600)))
            figures["submitted"] += 1
        # instances and their hosts
        joined: dict[str, HostView] = {}
        live_ids = set()
        for g in groups:
            try:
                instances = provider.instances(g)
            except Exception:
                instances = {}
            for iid, zone in instances.items():
                live_ids.add(iid)
                first_seen.setdefault(iid, now)
                if now - first_seen[iid] >= BOOT_SEC and not never_joins(iid, never_join_share):
                    joined[f"host-{iid}"] = HostView(f"host-{iid}", g.name, zone,
                                                     attributes={"instance_id": iid})
        for host_id in list(running):
            if host_id not in joined:  # its instance went away
                if running[host_id] and deleted:
                    figures["lost_to_deletion"] += len(running[host_id])
                del running[host_id]
        for host_id in joined:
            running[host_id] = [(e, c) for e, c in running.get(host_id, []) if e > now]
        # first-fit placement on joined hosts that take tasks
        draining = scaler.all_draining()
        placed_on = set()
        left = []
        for task_id, cpus, duration in waiting:
            for host_id in sorted(joined):
                if host_id in draining:
                    continue
                if sum(c for _, c in running[host_id]) + cpus <= 4.0:
                    running[host_id].append((now + duration, cpus))
                    placed_on.add(host_id)
                    figures["placed"] += 1
                    break
            else:
                left.append((task_id, cpus, duration))
        waiting = left
        views = [HostView(h.id, h.group, h.zone, running=len(running[h.id]),
                          placed_this_round=h.id in placed_on, attributes=h.attributes)
                 for h in joined.values()]
        busy_now = {v.id for v in views if v.running}
        actions = scaler.step(views, unplaced=[Task(t, cpus=c, memory_mb=100)
                                               for t, c, _ in waiting], now=now)
        for a in actions:
            if a.direction != TERMINATE:
                continue
            if a.reason == "provision_timeout":
                figures["provision_timeouts"] += a.count
            else:
                figures["busy_terminated"] += len(busy_now & set(a.hosts))
        status = {s.group: s for s in scaler.status()}
        for name, s in status.items():
            if s.error:
                figures["errors"].setdefault(name, s.error)
        series.append({"t": now, "waiting": len(waiting), **{
            name: {"joined": sum(1 for v in views if v.group == name),
                   "requested": status[name].requested if name in status else 0,
                   "failing": bool(status[name].error) if name in status else False}
            for name in GROUPS}})
        now += step_sec
    figures["waiting_at_end"] = len(waiting)
    return {"figures": figures, "series": series, "hours": hours, "step_sec": step_sec,
            "never_join_share": never_join_share, "deleted_at_sec": delete_at}


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _image(moto_url: str) -> str:
    probe = Ec2Provider(region="us-east-1", endpoint_url=moto_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")
    images = probe.ec2.describe_images(Filters=[{"Name": "name", "Values": ["amzn2-ami-*"]}])
    return images["Images"][0]["ImageId"]


def plot(result: dict, stem: str = "autoscale_day") -> str:
    """Hosts per group over time (PNG with matplotlib, else a plain SVG); returns the path."""
    hours = [p["t"] / 3600 for p in result["series"]]
    lines = {f"{g} joined": [p[g]["joined"] for p in result["series"]] for g in GROUPS}
    lines["waiting tasks / 10"] = [p["waiting"] / 10 for p in result["series"]]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _svg(hours, lines, result["deleted_at_sec"] / 3600, RESULTS / f"{stem}.svg")
    fig, ax = plt.subplots(figsize=(9, 4))
    for label, ys in lines.items():
        ax.plot(hours, ys, label=label)
    ax.axvline(result["deleted_at_sec"] / 3600, color="grey", ls="--", label="alpha's ASG deleted")
    ax.set_xlabel("hour"), ax.set_ylabel("hosts"), ax.legend()
    path = RESULTS / f"{stem}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return str(path)


def _svg(xs, lines, marker, path) -> str:
    w, h, pad = 900, 360, 40
    top = max(1.0, max(max(ys) for ys in lines.values()))
    span = max(xs) or 1.0
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]

    def pt(x, y):
        return f"{pad + x / span * (w - 2 * pad):.1f},{h - pad - y / top * (h - 2 * pad):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<line x1="{pad + marker / span * (w - 2 * pad):.1f}" y1="{pad}" '
             f'x2="{pad + marker / span * (w - 2 * pad):.1f}" y2="{h - pad}" stroke="grey" '
             'stroke-dasharray="4"/>']
    for i, (label, ys) in enumerate(lines.items()):
        c = colours[i % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{c}" points="'
                     + " ".join(pt(x, y) for x, y in zip(xs, ys)) + '"/>')
        parts.append(f'<text x="{pad + 10}" y="{pad + 15 * (i + 1)}" fill="{c}" '
                     f'font-size="12">{label}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 8}" font-size="12">hour (0-{span:g}); '
                 f'max {top:g} hosts; dashed: alpha\'s ASG deleted</text></svg>')
    path.write_text("\n".join(parts))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--step-sec", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        began = time.perf_counter()
        result = simulate(f"http://{host}:{port}", args.hours, args.step_sec, args.seed)
        result["wall_sec"] = round(time.perf_counter() - began, 1)
    finally:
        server.stop()
    result["plot"] = plot(result)
    result["machine"] = machine()
    f = result["figures"]
    print(f"{args.hours:g} h simulated in {result['wall_sec']} s: {f['submitted']} tasks, "
          f"{f['placed']} placed, {f['waiting_at_end']} waiting at the end; busy hosts "
          f"terminated: {f['busy_terminated']}; never-joined instances terminated: "
          f"{f['provision_timeouts']}; tasks lost with the deleted ASG: "
          f"{f['lost_to_deletion']}; errors: {f['errors']}")
    print("wrote", save_json("autoscale_day", result), "and", result["plot"])


if __name__ == "__main__":
    main()
