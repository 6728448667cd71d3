"""The invariants checked after every trial, as pure functions of what was collected.

Each check returns a list of violations: ``{"check": name, "detail": ...}`` with enough in
``detail`` (ids, times, counts) to find the bug. Facts that are allowed but worth knowing
(a lost task that still ran to its end on a paused agent) are ``notes``, not violations.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Optional

from tests.chaos.journal import Run
from tests.chaos.workload import JobPlan

# Ends that resubmit without using the retry policy (docs/master.md, Retries).
SYSTEM_REASONS = {"lost", "transientSystemError", "stuckInState", "stuckInKillingState",
                  "crashed"}
EPS = 1e-6


@dataclass
class Evidence:
    """Everything a trial collected for the checks."""

    plans: list[JobPlan]
    jobs: dict[str, Optional[dict]]  # job id -> view (None: no master knows it)
    tasks: dict[str, list[dict]]  # job id -> task views
    store_job_ids: set[str]  # live and archived jobs in the store
    runs: list[Run]
    capacity: dict[str, tuple[float, float]]  # host -> (cpus, memory MB)
    epochs: list[tuple[int, str, str, float]]  # leader_epochs rows
    samples: list  # HealthSample
    final_health: dict[str, Optional[dict]]  # url -> /health at the end
    converged: bool = True
    convergence: str = ""
    notes: dict = field(default_factory=dict)


def _v(check: str, **detail) -> dict:
    return {"check": check, "detail": detail}


def state(item: dict) -> str:
    """A job's or task's state."""
    return item["status"]["state"]


def reason(item: dict) -> str:
    """A job's or task's reason code."""
    return item["status"].get("reasonCode", "")


def check_accepted_jobs(ev: Evidence) -> list[dict]:
    """Every submit got an answer; every accepted job is known afterwards; no job the
    client did not get (a retried submit made twice) is in the store."""
    out = []
    accepted = {p.job_id for p in ev.plans if p.job_id}
    for plan in ev.plans:
        if plan.error:
            out.append(_v("api_unavailable", job=plan.name, job_id=plan.job_id,
                          error=plan.error[:400]))
        if plan.job_id and ev.jobs.get(plan.job_id) is None:
            out.append(_v("job_lost", job=plan.name, job_id=plan.job_id))
        if plan.job_id and plan.job_id not in ev.store_job_ids:
            out.append(_v("job_lost", job=plan.name, job_id=plan.job_id, where="store"))
    for extra in sorted(ev.store_job_ids - accepted):
        out.append(_v("job_duplicated", job_id=extra,
                      note="in the store but never returned to the client"))
    return out


def check_batch(ev: Evidence) -> list[dict]:
    """Every batch index ended exactly once as its retry policy allows: exit 0 -> one
    ``normal`` task and no failures; exit 1 -> retries + 1 ``failed`` tasks; nothing else but
    system ends (lost ...), which do not count. Each counted end ran to its end on an agent."""
    out = []
    natural = Counter(run.task for run in ev.runs if run.natural_end)
    for plan in ev.plans:
        if plan.kind != "batch" or not plan.job_id or ev.jobs.get(plan.job_id) is None:
            continue
        job = ev.jobs[plan.job_id]
        if state(job) != "Finished":
            out.append(_v("batch_not_finished", job_id=plan.job_id, state=state(job)))
        by_index: dict[int, list[dict]] = defaultdict(list)
        for task in ev.tasks.get(plan.job_id, []):
            by_index[task["index"]].append(task)
        for index in range(plan.size):
            tasks = by_index.pop(index, [])
            ends = Counter(reason(t) for t in tasks if state(t) == "Finished")
            live = [t["id"] for t in tasks if state(t) != "Finished"]
            counted = {r: n for r, n in ends.items() if r not in SYSTEM_REASONS}
            want = {"normal": 1} if plan.exit_code == 0 else {"failed": plan.retries + 1}
            if counted != want or live:
                out.append(_v("batch_index_ends", job_id=plan.job_id, index=index,
                              expected=want, got=dict(ends), live=live,
                              tasks=[(t["id"], state(t), reason(t)) for t in tasks]))
            for task in tasks:
                if reason(task) in ("normal", "failed") and natural[task["id"]] != 1:
                    out.append(_v("batch_run_count", job_id=plan.job_id, index=index,
                                  task_id=task["id"], api_reason=reason(task),
                                  natural_ends_in_journals=natural[task["id"]]))
        if by_index:
            out.append(_v("batch_index_unknown", job_id=plan.job_id,
                          indexes=sorted(by_index)))
    return out


def check_services(ev: Evidence) -> list[dict]:
    """Service jobs run exactly their desired count, as the master says and as the agents
    say (no orphan the master forgot, no task the master believes runs but does not)."""
    out = []
    open_runs = defaultdict(set)
    for run in ev.runs:
        if run.end is None:
            open_runs[run.job].add(run.task)
    for plan in ev.plans:
        if plan.kind != "service" or not plan.job_id or ev.jobs.get(plan.job_id) is None:
            continue
        started = {t["id"] for t in ev.tasks.get(plan.job_id, []) if state(t) == "Started"}
        if len(started) != plan.desired:
            out.append(_v("service_count", job_id=plan.job_id, desired=plan.desired,
                          started=len(started)))
        running = open_runs.get(plan.job_id, set())
        if running != started:
            out.append(_v("service_agents_disagree", job_id=plan.job_id,
                          only_on_agents=sorted(running - started),
                          only_in_master=sorted(started - running)))
    return out


def check_unknown_runs(ev: Evidence) -> list[dict]:
    """Every task an agent ran belongs to a job the client submitted and the master knows."""
    known = {t["id"] for tasks in ev.tasks.values() for t in tasks}
    ours = {p.job_id for p in ev.plans if p.job_id}
    unknown = sorted({(r.job, r.task) for r in ev.runs
                      if r.job in ours and r.task not in known})
    return [_v("unknown_task_ran", job_id=job, task_id=task) for job, task in unknown]


def check_overcommit(ev: Evidence) -> list[dict]:
    """No host ever held more CPU or memory than it has, from the agents' own journals."""
    out = []
    by_host: dict[str, list[Run]] = defaultdict(list)
    for run in ev.runs:
        by_host[run.host].append(run)
    for host, runs in by_host.items():
        cpus, mem = ev.capacity.get(host, (float("inf"), float("inf")))
        events = []
        for run in runs:
            events.append((run.start, 1, run))
            if run.end is not None:
                events.append((run.end, 0, run))  # ends first at the same instant
        events.sort(key=lambda e: (e[0], e[1]))
        used_cpu = used_mem = 0.0
        alive: set[str] = set()
        for at, starting, run in events:
            sign = 1 if starting else -1
            used_cpu += sign * run.cpus
            used_mem += sign * run.mem
            (alive.add if starting else alive.discard)(run.task)
            if starting and (used_cpu > cpus + EPS or used_mem > mem + EPS):
                out.append(_v("host_overcommitted", host=host, at_mono=round(at, 3),
                              cpus_used=used_cpu, cpus=cpus, mem_used=used_mem, mem=mem,
                              tasks=sorted(alive)))
                break  # one per host is enough to find it
    return out


def check_one_host_per_task(ev: Evidence) -> list[dict]:
    """No task id ran on two hosts (or twice on one) at the same moment."""
    out = []
    by_task: dict[str, list[Run]] = defaultdict(list)
    for run in ev.runs:
        by_task[run.task].append(run)
    for task, runs in by_task.items():
        for i, a in enumerate(runs):
            for b in runs[i + 1:]:
                if a.overlaps(b):
                    out.append(_v("task_on_two_hosts", task_id=task, hosts=[a.host, b.host],
                                  starts=[round(a.start, 3), round(b.start, 3)]))
        if len(runs) > 1:
            ev.notes["task_ids_started_again"] = ev.notes.get("task_ids_started_again", 0) + 1
    return out


def check_epochs(ev: Evidence, multi: bool) -> list[dict]:
    """At most one leader per epoch: one URL claims each epoch in /health, epochs were taken
    in order, every launch order's epoch was taken by someone, and at the end exactly one
    master leads and the others follow it."""
    out = []
    claims: dict[int, set[str]] = defaultdict(set)
    for sample in ev.samples:
        if sample.role == "leader" and sample.epoch is not None:
            claims[sample.epoch].add(sample.url)
    for epoch, urls in sorted(claims.items()):
        if len(urls) > 1:
            out.append(_v("two_leaders_one_epoch", epoch=epoch, urls=sorted(urls)))
    rows = sorted(ev.epochs)
    by_epoch = {row[0]: row for row in rows}
    for a, b in zip(rows, rows[1:]):
        if b[3] < a[3]:
            out.append(_v("epochs_out_of_order", epochs=[a[0], b[0]], acquired=[a[3], b[3]]))
    for epoch, urls in claims.items():
        row = by_epoch.get(epoch)
        if rows and (row is None or {row[2]} != urls):
            out.append(_v("epoch_holder_mismatch", epoch=epoch, health_urls=sorted(urls),
                          store_url=row[2] if row else None))
    order_epochs = {run.epoch for run in ev.runs if run.epoch is not None}
    if rows:
        for epoch in sorted(order_epochs - set(by_epoch)):
            out.append(_v("order_of_unknown_epoch", epoch=epoch))
        late = 0
        for run in ev.runs:  # an order of epoch E that reached its agent after E+1 began
            nxt = by_epoch.get((run.epoch or 0) + 1)
            late += bool(run.epoch and nxt and run.start_wall > nxt[3] + 1.0)
        ev.notes["orders_after_next_epoch"] = late
    if multi:
        answering = {url: body for url, body in ev.final_health.items() if body}
        leaders = [url for url, body in answering.items() if body["role"] == "leader"]
        if len(leaders) != 1:
            out.append(_v("leaders_at_end", leaders=leaders,
                          roles={u: (b["role"], b["epoch"]) for u, b in answering.items()}))
        else:
            for url, body in answering.items():
                if url != leaders[0] and (body["role"] != "standby"
                                          or body.get("leader") != leaders[0]):
                    out.append(_v("standby_does_not_follow", url=url, role=body["role"],
                                  follows=body.get("leader"), leader=leaders[0]))
    return out


def check_all(ev: Evidence, multi: bool) -> list[dict]:
    """Every invariant; the violations found."""
    out = []
    if not ev.converged:
        out.append(_v("not_converged", state=ev.convergence))
    for check in (check_accepted_jobs, check_batch, check_services, check_unknown_runs,
                  check_overcommit, check_one_host_per_task):
        out += check(ev)
    out += check_epochs(ev, multi)
    return out
