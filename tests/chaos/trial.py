"""One chaos trial: a fresh database and cluster, a workload, one fault at a random moment,
then wait for the platform to settle and check every invariant.

``run_trial`` never raises for what the platform did: a cluster that does not settle is the
``not_converged`` violation. It raises only when the harness itself cannot run (no leader
at the start, PostgreSQL gone).
"""
from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tests.chaos.client import ChaosClient, GaveUp
from tests.chaos.cluster import ChaosCluster
from tests.chaos.faults import inject
from tests.chaos.invariants import Evidence, check_all, state
from tests.chaos.journal import read_runs
from tests.chaos.pgcluster import PgCluster
from tests.chaos.workload import Workload, make_workload


@dataclass
class TrialConfig:
    """How big a trial is and how long it may take."""

    masters: int = 3
    agents: int = 3
    hosts_per_agent: int = 2
    cpus: float = 4.0
    lease_sec: float = 2.0
    heartbeat_timeout_sec: float = 3.0
    batch_jobs: int = 3
    service_jobs: int = 2
    fault_window: tuple[float, float] = (0.3, 3.0)  # seconds after the first submit
    settle_timeout_sec: float = 45.0


@dataclass
class TrialResult:
    """What a trial did and found."""

    number: int
    kind: str
    seed: int
    fault: dict
    violations: list[dict]
    seconds: float
    converge_sec: Optional[float]
    notes: dict = field(default_factory=dict)
    client_retries: int = 0
    workdir: Optional[str] = None

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {"trial": self.number, "kind": self.kind, "seed": self.seed, "fault": self.fault,
                "violations": self.violations, "seconds": round(self.seconds, 2),
                "converge_sec": self.converge_sec, "notes": self.notes,
                "client_retries": self.client_retries, "workdir": self.workdir}


def run_trial(pg: PgCluster, number: int, kind: str, seed: int,
              config: Optional[TrialConfig] = None, keep_dir: Optional[Path] = None
              ) -> TrialResult:
    """Trial ``number`` with fault ``kind``, everything random drawn from ``seed``.

    Logs and journals are removed afterwards unless the trial found a violation and
    ``keep_dir`` is given (they are then moved there)."""
    config = config or TrialConfig()
    rng = random.Random(seed)
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"titus-chaos-{number}-"))
    store_url = pg.create_database("chaos")
    cluster = ChaosCluster(workdir, store_url, masters=config.masters, agents=config.agents,
                           hosts_per_agent=config.hosts_per_agent, cpus=config.cpus,
                           lease_sec=config.lease_sec,
                           heartbeat_timeout_sec=config.heartbeat_timeout_sec)
    client = None
    fault: dict = {"kind": kind}
    try:
        cluster.start()
        client = ChaosClient(cluster.urls, cluster.token, random.Random(rng.random()))
        workload = make_workload(rng, f"t{number}", batch_jobs=config.batch_jobs,
                                 service_jobs=config.service_jobs)
        thread = workload.start(client)
        time.sleep(rng.uniform(*config.fault_window))
        try:
            fault = inject(kind, cluster, pg, rng)
        except Exception as exc:  # the fault's own wait ran out: the platform did not recover
            fault = {"kind": kind, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        fault_end = time.monotonic()
        thread.join(timeout=config.settle_timeout_sec + 60)
        # the leader's view decides (a standby may be a refresh behind); standbys are then
        # held to catching up with it
        leader_client = _leader_client(cluster, client)
        converged, why = _settle(leader_client, workload, config.settle_timeout_sec)
        converge_sec = round(time.monotonic() - fault_end, 2) if converged else None
        time.sleep(0.5)  # let the last kills and launches reach the journals
        evidence = _collect(cluster, pg, store_url, leader_client, workload, converged, why)
        violations = check_all(evidence, multi=config.masters > 1)
        violations += _standbys_catch_up(cluster, leader_client, evidence.jobs)
        if "error" in fault:
            violations.insert(0, {"check": "fault_recovery", "detail": fault})
        dead = cluster.crashed()
        if dead:
            violations.append({"check": "process_died", "detail": {"processes": dead}})
        if violations:
            fault["logs"] = cluster.log_tails(15)
        result = TrialResult(number, kind, seed, _public(fault), violations,
                             time.monotonic() - began, converge_sec, evidence.notes,
                             client.retries)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)  # the harness failed: nothing to keep
        raise
    finally:
        for one in {id(c): c for c in (client, locals().get("leader_client")) if c}.values():
            one.close()
        cluster.stop()
        pg.drop_database(store_url)
    if result.violations and keep_dir is not None:
        target = Path(keep_dir) / f"trial-{number}-{kind}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(workdir), target)
        result.workdir = str(target)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _leader_client(cluster: ChaosCluster, client: ChaosClient) -> ChaosClient:
    """A client of the current leader only (the trial's client when there is one master)."""
    if len(cluster.masters) == 1:
        return client
    leader, _ = cluster.wait_leader(30)
    return ChaosClient([leader.url], cluster.token, random.Random(0))


def _standbys_catch_up(cluster: ChaosCluster, leader: ChaosClient,
                       jobs: dict[str, Optional[dict]], within_sec: float = 5.0) -> list[dict]:
    """Every standby shows every job in the leader's state within ``within_sec``."""
    out = []
    for url in cluster.urls:
        if len(cluster.masters) == 1 or url in leader.urls:
            continue
        standby = ChaosClient([url], cluster.token, random.Random(0))
        try:
            for job_id, job in jobs.items():
                if job is None:
                    continue
                deadline = time.monotonic() + within_sec
                seen = None
                while time.monotonic() < deadline:
                    try:
                        view = standby.job(job_id)
                    except GaveUp:
                        view = None
                    seen = view and state(view)
                    if seen == state(job):
                        break
                    time.sleep(0.2)
                else:
                    out.append({"check": "standby_behind", "detail": {
                        "standby": url, "job_id": job_id, "standby_state": seen,
                        "leader_state": state(job), "waited_sec": within_sec}})
        finally:
            standby.close()
    return out


def _public(fault: dict) -> dict:
    """The fault record without monotonic clock values (meaningless in a report)."""
    return {k: v for k, v in fault.items() if k not in ("began", "ended")}


def _settle(client: ChaosClient, workload: Workload, timeout: float) -> tuple[bool, str]:
    """Wait until batch jobs finished and service jobs run their desired count."""
    deadline = time.monotonic() + timeout
    why = "not checked"
    while time.monotonic() < deadline:
        try:
            why = _unsettled(client, workload)
        except GaveUp as exc:
            why = f"API unavailable: {exc}"
        if not why:
            return True, ""
        time.sleep(0.5)
    return False, why


def _unsettled(client: ChaosClient, workload: Workload) -> str:
    """Why the trial's jobs are not where they should be ("" when they are)."""
    for plan in workload.plans:
        if not plan.job_id:
            continue
        job = client.job(plan.job_id)
        if job is None:
            return f"{plan.job_id} unknown"
        if plan.kind == "batch":
            if state(job) != "Finished":
                return f"batch {plan.job_id} is {state(job)}"
            continue
        tasks = client.tasks(plan.job_id)
        started = sum(state(t) == "Started" for t in tasks)
        moving = [state(t) for t in tasks if state(t) not in ("Started", "Finished")]
        if started != plan.desired or moving:
            return (f"service {plan.job_id}: {started} Started of {plan.desired}, "
                    f"others {moving}")
    return ""


def _collect(cluster: ChaosCluster, pg: PgCluster, store_url: str, client: ChaosClient,
             workload: Workload, converged: bool, why: str) -> Evidence:
    jobs, tasks = {}, {}
    for plan in workload.plans:
        if plan.job_id:
            try:
                jobs[plan.job_id] = client.job(plan.job_id)
                tasks[plan.job_id] = client.tasks(plan.job_id)
            except GaveUp:
                jobs[plan.job_id], tasks[plan.job_id] = None, []
    database = store_url.rsplit("/", 1)[1]
    store_ids = {row[0] for row in pg.sql(
        "SELECT id FROM jobs UNION ALL SELECT id FROM archive_jobs", database)}
    exists = pg.sql("SELECT to_regclass('leader_epochs') IS NOT NULL", database)[0][0]
    epochs = pg.sql("SELECT epoch, holder, url, acquired_at FROM leader_epochs",
                    database) if exists else []
    capacity = {host: (cluster.cpus, cluster.memory_mb)
                for slot in cluster.agents.values() for host in slot.hosts}
    runs = read_runs(slot.journal for slot in cluster.agents.values())
    return Evidence(workload.plans, jobs, tasks, store_ids, runs, capacity,
                    [(int(e), h, u, float(a)) for e, h, u, a in epochs],
                    list(cluster.samples), cluster.roles(), converged, why)

