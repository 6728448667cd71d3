"""What each web UI page shows, read through the same paths as the REST API.

Every function takes the master (its facade) and reads through ``master.queries`` and the
REST views (``titus.master.views``): the pages show exactly what ``/api/v3`` answers, secret
env values redacted alike, and never touch the master's memory themselves. Each returns plain
data for a template.
"""
from __future__ import annotations

import re
from collections import deque
from typing import Optional

from titus import states
from titus.master.auth import ADMIN, ANONYMOUS, USER, Principal
from titus.master.errors import NotFound

# the resources of the hosts page: name in the engine, name in the REST host view, label
RESOURCES = (("cpus", "cpus", "CPU"), ("memory_mb", "memoryMB", "memory"),
             ("disk_mb", "diskMB", "disk"), ("network_mbps", "networkMbps", "network"),
             ("gpu", "gpu", "GPU"))
GROUP_RESOURCES = (("cpu", "cpus"), ("memoryMB", "memory_mb"), ("diskMB", "disk_mb"),
                   ("networkMbps", "network_mbps"), ("gpu", "gpu"))
JOB_LIMIT = 500  # rows of the job list (newest first)


def may_manage(who: Principal, submitted_by: str) -> bool:
    """Whether ``who`` may kill or scale a job submitted by ``submitted_by`` (the rule the
    master enforces on every write: admins any job, users their own and unowned ones); the
    page shows its buttons only then."""
    if who.can(ADMIN):
        return True
    return who.can(USER) and submitted_by in ("", who.name, ANONYMOUS.name)


# -- jobs ---------------------------------------------------------------------------------
def job_list(master, state: Optional[str], owner: Optional[str], group: Optional[str],
             limit: int = JOB_LIMIT) -> dict:
    """The newest ``limit`` jobs matching the filters (live ones unless ``state`` is
    Finished, which reads the archive), with their tasks counted by state, and the owners
    and capacity groups the filters can choose from."""
    queries = master.queries
    live = queries.live_jobs()
    source = queries.archived_jobs() if state == states.FINISHED else live
    chosen: deque = deque(maxlen=limit)  # the newest: archived jobs come oldest first
    for job in sorted(source, key=lambda j: j.seq) if source is live else source:
        if state and job.state != state:
            continue
        if owner and job.descriptor.owner.teamEmail != owner:
            continue
        if group and job.group != group:
            continue
        chosen.append(job)
    jobs = list(reversed(chosen))
    counts = queries.task_counts(jobs)
    rows = []
    for job, view in zip(jobs, queries.job_views(jobs)):
        d = view["jobDescriptor"]
        rows.append({"id": view["id"], "name": d.get("applicationName", ""),
                     "owner": (d.get("owner") or {}).get("teamEmail", ""),
                     "group": job.group, "type": "batch" if job.batch else "service",
                     "state": view["status"]["state"], "accepted": job.accepted_at,
                     "tasks": sorted(counts.get(job.id, {}).items())})
    groups = {g["name"] for g in queries.capacity_groups()} | {j.group for j in live}
    return {"rows": rows, "owners": sorted({j.descriptor.owner.teamEmail for j in live} - {""}),
            "groups": sorted(groups), "states": list(states.JOB_STATES), "limit": limit}


def job_page(master, job_id: str, who: Principal) -> dict:
    """A job (live or archived; NotFound if it never existed): its view, tasks, events and
    whether ``who`` may act on it."""
    job, archived = master.get_job(job_id)
    view = master.queries.job_views([job])[0]
    tasks = master.queries.task_views(master.queries.tasks(job_id))
    d = view["jobDescriptor"]
    container = d.get("container") or {}
    service = d.get("service") or {}
    return {"job": view, "archived": archived, "tasks": tasks,
            "events": master.queries.events_of(job_id), "descriptor": d,
            "env": sorted((container.get("env") or {}).items()),
            "resources": container.get("resources") or {},
            "capacity": service.get("capacity"), "batch": job.batch,
            "group": job.group, "submitted_by": job.submitted_by,
            "can_act": (not archived and job.state == states.ACCEPTED
                        and may_manage(who, job.submitted_by))}


_FAILURE = re.compile(r"^0/(\d+) hosts: (.*)$")
_REASON = re.compile(r"^(\d+) (.+)$")


def pending_reasons(message: str) -> tuple[Optional[int], list[tuple[str, int]], str]:
    """The engine's failure message (``0/10 hosts: 9 cpus, 1 constraint:...; asks 64 cpus;
    largest free 16``) as (hosts considered, [(reason, hosts rejecting for it)], the rest of
    the message); (None, [], message) when it has another shape."""
    head, _, rest = message.partition(";")
    match = _FAILURE.match(head.strip())
    if not match:
        return None, [], message
    reasons = []
    for part in re.split(r",\s(?=\d+\s)", match.group(2)):
        found = _REASON.match(part.strip())
        if found is None:
            return None, [], message
        reasons.append((found.group(2), int(found.group(1))))
    return int(match.group(1)), reasons, rest.strip(" ;")


def task_page(master, task_id: str, who: Principal) -> dict:
    """A task (live or archived; NotFound if unknown): its view, its job's resources and
    capacity group, why it waits, and whether ``who`` may kill it."""
    task, job, archived = master.get_task(task_id)
    view = master.queries.task_views([task])[0]
    if job is None:
        try:
            job, _ = master.get_job(task.job_id)
        except NotFound:
            job = None
    job_view = master.queries.job_views([job])[0] if job is not None else None
    container = (job_view or {}).get("jobDescriptor", {}).get("container") or {}
    failure = view.get("schedulingFailure") or ""
    considered, reasons, rest = pending_reasons(failure) if failure else (None, [], "")
    history = list(view["statusHistory"]) + [view["status"]]
    return {"task": view, "archived": archived, "job": job_view,
            "resources": container.get("resources") or {}, "history": history,
            "pending": failure, "considered": considered, "reasons": reasons,
            "pending_rest": rest,
            "can_act": (not archived and task.state != states.FINISHED and job is not None
                        and may_manage(who, job.submitted_by))}


# -- hosts --------------------------------------------------------------------------------
def heat(used: float, capacity: float) -> tuple[float, int]:
    """Utilisation as a fraction and its heat step 0..10 (the colour of a host's cell)."""
    if not capacity or capacity <= 0:
        return 0.0, 0
    share = max(0.0, min(1.0, used / capacity))
    return share, int(round(share * 10))


def host_map(master, resource: str) -> dict:
    """Hosts by zone, each with its utilisation of ``resource`` (an engine name of
    :data:`RESOURCES`), whether it is draining (held off) or disabled (not in the engine);
    the utilisation of every resource in every zone (``matrix``: [(zone, [cell])]) and
    cluster totals per resource."""
    view_name = {engine: rest for engine, rest, _ in RESOURCES}[resource]
    zones: dict[str, list] = {}
    totals = {engine: [0.0, 0.0] for engine, _, _ in RESOURCES}
    by_zone: dict[str, dict] = {}  # zone -> resource -> [used, capacity]
    hosts = sorted(master.queries.hosts(), key=lambda h: h["id"])
    for h in hosts:
        used = h.get("used") or {}
        zone = str((h.get("attributes") or {}).get("zone", "") or "(no zone)")
        sums = by_zone.setdefault(zone, {engine: [0.0, 0.0] for engine, _, _ in RESOURCES})
        for engine, rest, _ in RESOURCES:
            amount, capacity = float(used.get(engine, 0.0) or 0.0), float(h.get(rest, 0.0) or 0.0)
            for pair in (totals[engine], sums[engine]):
                pair[0] += amount
                pair[1] += capacity
        share, step = heat(float(used.get(resource, 0.0) or 0.0), float(h.get(view_name) or 0.0))
        mark = "disabled" if not h.get("active") else ("draining" if h.get("heldOff") or h.get("drain") else "")
        zones.setdefault(zone, []).append({**h, "share": share, "step": step, "mark": mark,
                                           "usedAmount": used.get(resource, 0.0),
                                           "capacity": h.get(view_name)})
    summary = [{"resource": engine, "label": label, "used": u, "capacity": c,
                "share": (u / c) if c > 0 else 0.0}
               for (engine, _, label), (u, c) in zip(RESOURCES, totals.values())]
    matrix = [(zone, [{"resource": engine, "used": u, "capacity": c,
                       "share": heat(u, c)[0], "step": heat(u, c)[1]}
                      for engine, (u, c) in sums.items()])
              for zone, sums in sorted(by_zone.items())]
    return {"zones": sorted(zones.items()), "hosts": hosts, "resource": resource,
            "resources": RESOURCES, "summary": summary, "matrix": matrix}


# -- capacity groups ----------------------------------------------------------------------
def capacity_groups(master) -> dict:
    """Every capacity group with its guarantee, limit, usage, its share of its guarantee per
    resource and its dominant share of the cluster (the queue's fair-share measure)."""
    cluster: dict[str, float] = {}
    for h in master.queries.hosts():
        if h.get("active"):
            for engine, rest, _ in RESOURCES:
                cluster[engine] = cluster.get(engine, 0.0) + float(h.get(rest) or 0.0)
    groups = []
    for g in sorted(master.queries.capacity_groups(), key=lambda g: g.get("name", "")):
        usage = g.get("usage") or {}
        guarantee = g.get("resources") or {}
        limit = g.get("limit") or {}
        rows = []
        for wire, engine in GROUP_RESOURCES:
            used = float(usage.get(engine, 0.0) or 0.0)
            guaranteed = float(guarantee.get(wire, 0.0) or 0.0)
            rows.append({"resource": wire, "used": used, "guaranteed": guaranteed,
                         "limit": limit.get(wire), "of_guarantee":
                         (used / guaranteed) if guaranteed > 0 else None,
                         "of_cluster": (used / cluster[engine]) if cluster.get(engine) else 0.0})
        dominant = max((r["of_cluster"] for r in rows), default=0.0)
        groups.append({"name": g.get("name", ""), "tier": g.get("tier", ""), "rows": rows,
                       "dominant": dominant})
    return {"groups": groups, "cluster": cluster}


# -- instance groups ----------------------------------------------------------------------
def instance_groups(service) -> dict:
    """The autoscaler's groups with their rule, numbers and recent actions (newest first);
    ``service`` None (a standby: the autoscaler runs on the leader) gives none."""
    if service is None:
        return {"groups": [], "standby": True}
    groups = []
    for g in service.view():
        actions = sorted(g.get("actions") or [], key=lambda a: a.get("at") or 0, reverse=True)
        groups.append({**g, "actions": actions})
    return {"groups": groups, "standby": False}
