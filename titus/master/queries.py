"""Read-only queries over the master's memory and store, rendered for callers.

Each function takes the state lock for as long as it reads memory and returns plain data
(lists of records, JSON-ready dicts): callers — the REST layer, the autoscaler — never hold the
lock and never see a record being changed under them.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional

from titus import states
from titus.master.engine_adapter import EngineAdapter
from titus.master import readback
from titus.master.errors import NotFound
from titus.master.eviction import job_quota
from titus.master.records import JobRecord, TaskRecord
from titus.master.state import ClusterState
from titus.master.store import Store
from titus.master.views import job_view, task_view


class Queries:
    """Views of jobs, tasks, agents, hosts and capacity groups."""

    def __init__(self, state: ClusterState, engine: EngineAdapter, store: Store):
        self.state = state
        self.engine = engine
        self.store = store

    # jobs and tasks -------------------------------------------------------------------------
    def live_jobs(self) -> list[JobRecord]:
        """Every live job (a snapshot of the list; render records with :meth:`job_views`)."""
        with self.state.lock:
            return list(self.state.jobs.values())

    def archived_jobs(self, batch: int = 5000) -> Iterable[JobRecord]:
        """Every archived job, oldest first, read from the store in batches."""
        after = 0
        while True:
            rows = self.store.archived_jobs(after_seq=after, limit=batch)
            yield from self._readable(rows, readback.job, "archived job")
            if len(rows) < batch:
                return
            after = rows[-1]["seq"]

    def job(self, job_id: str) -> tuple[JobRecord, bool]:
        """A job and whether it is archived; NotFound if it never existed."""
        with self.state.lock:
            job = self.state.jobs.get(job_id)
            if job is not None:
                return job, False
        row = self.store.archived_job(job_id)
        jobs = self._readable([row] if row else [], readback.job, "archived job")
        if not jobs:  # never existed, or unreadable (reported)
            raise NotFound(job_id)
        return jobs[0], True

    def job_views(self, jobs: Iterable[JobRecord]) -> list[dict]:
        """Jobs as the REST API shows them."""
        with self.state.lock:
            return [job_view(j, self.state.settings.secret_env_pattern) for j in jobs]

    def task(self, task_id: str) -> tuple[TaskRecord, Optional[JobRecord], bool]:
        """A task, its job (if live) and whether it is archived; NotFound if unknown."""
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is not None:
                return task, self.state.jobs.get(task.job_id), False
        row = self.store.archived_task(task_id)
        tasks = self._readable([row] if row else [], readback.task, "archived task")
        if not tasks:  # never existed, or unreadable (reported)
            raise NotFound(task_id)
        return tasks[0], None, True

    def tasks(self, job_id: Optional[str] = None) -> list[TaskRecord]:
        """Every live task, or every task of one job (live or archived; NotFound if unknown)."""
        with self.state.lock:
            if job_id is None:
                return list(self.state.tasks.values())
            job = self.state.jobs.get(job_id)
            if job is not None:
                return list(job.tasks.values())
        self.job(job_id)  # NotFound if it never existed
        return self._readable(self.store.archived_tasks(job_id), readback.task, "archived task")

    def _readable(self, rows: list[dict], parse, kind: str) -> list:
        """Rows an older release stored that cannot be served are reported and left out."""
        return readback.each(rows, parse, kind, "id", self.state.skipped)

    def task_views(self, tasks: Iterable[TaskRecord]) -> list[dict]:
        """Tasks as the REST API shows them."""
        with self.state.lock:
            return [task_view(t, self.state.jobs.get(t.job_id)) for t in tasks]

    def observe_snapshot(self, job_id: Optional[str]) -> list[tuple[str, dict]]:
        """The current state for an observer: (kind, payload) of every job and its tasks."""
        with self.state.lock:
            jobs = self.state.jobs
            chosen = [jobs[job_id]] if job_id and job_id in jobs else (
                [] if job_id else list(jobs.values()))
            pattern = self.state.settings.secret_env_pattern
            out = [("jobUpdate", job_view(j, pattern)) for j in chosen]
            for j in chosen:
                out += [("taskUpdate", task_view(t, j)) for t in j.tasks.values()]
            return out

    def task_counts(self, jobs: Iterable[JobRecord]) -> dict[str, dict[str, int]]:
        """Tasks of each job by state: {job id: {state: count}} (the web UI's job list)."""
        with self.state.lock:
            return {j.id: dict(Counter(t.state for t in j.tasks.values())) for j in jobs}

    def events_of(self, job_id: str, limit: int = 200) -> list[dict]:
        """The newest ``limit`` event log entries about a job and its (newest 500) live tasks,
        oldest first: ``{"seq", "ts" (epoch s), "kind", "entityId", "data" (JSON text)}``."""
        with self.state.lock:
            job = self.state.jobs.get(job_id)
            # the newest tasks only: one statement holds a bounded number of parameters
            ids = [job_id] + (list(job.tasks)[-500:] if job is not None else [])
        return [{"seq": r["seq"], "ts": r["ts"], "kind": r["kind"], "entityId": r["entity_id"],
                 "data": r["data"]} for r in self.store.latest_events_of(ids, limit)]

    def backing_off(self) -> int:
        """How many waiting tasks are held back by a restart delay (crash-loop back-off or the
        retry policy's delay)."""
        # kept by the ledger as tasks come and go: a scrape must not walk a million waiting tasks
        return len(self.state.delayed)

    # agents and hosts -----------------------------------------------------------------------
    def agents(self) -> list[dict]:
        """Agents, with their hosts and when they were last heard from."""
        with self.state.lock:
            return [{"id": a.id, "runtime": a.runtime, "address": a.address,
                     "registered": a.registered, "lastSeen": a.last_seen,
                     "hosts": sorted(a.hosts)}
                    for a in self.state.registry.agents.values()]

    def agent_address(self, agent_id: str) -> str:
        """The base URL an agent serves logs on ("" if unknown)."""
        with self.state.lock:
            agent = self.state.registry.get(agent_id) if agent_id else None
            return agent.address if agent is not None else ""

    def hosts(self) -> list[dict]:
        """Hosts as the engine sees them: capacity, used resources, task count, attributes."""
        st = self.state
        with st.lock:
            counts = Counter(st.tasks[tid].host_id for tids in st.agent_tasks.values()
                             for tid in tids if tid in st.tasks)
            drains = st.drains
            return [{"id": h.host_id, "agentId": agent_id, "cpus": h.cpus,
                     "memoryMB": h.memory_mb, "diskMB": h.disk_mb,
                     "networkMbps": h.network_mbps, "gpu": h.gpu,
                     "used": self.engine.host_usage(h.host_id),
                     "tasks": counts.get(h.host_id, 0), "attributes": h.attributes,
                     "active": h.host_id in self.engine.hosts,
                     "heldOff": h.host_id in self.engine.held_off,
                     "drain": drains[h.host_id].view() if h.host_id in drains else None}
                    for agent_id, h in st.registry.hosts()]

    def drain(self, host_id: str) -> dict:
        """A host's drain state: ``draining``, when it began, its deadline, who asked, and the
        tasks still on it; NotFound if the host is neither registered nor drained."""
        st = self.state
        with st.lock:
            drain = st.drains.get(host_id)
            agent_id = st.registry.agent_of_host(host_id)
            if drain is None and agent_id is None:
                raise NotFound(host_id)
            left = sum(1 for t in st.tasks_on(agent_id or "")
                       if t.host_id == host_id and t.state in states.ON_HOST)
            return {"id": host_id, "draining": drain is not None, "tasks": left,
                    **(drain.view() if drain is not None else {})}

    def eviction_quota(self, job_id: str, now: float) -> dict:
        """How many tasks of a job may be disrupted now, and why not more (Titus's
        ``EvictionQuota``: ``{reference: {jobId}, quota, message}``); a finished job's is 0.
        NotFound if the job never existed."""
        with self.state.lock:
            job = self.state.jobs.get(job_id)
            if job is not None:
                q = job_quota(self.state, job, now)
                return {"reference": {"jobId": job_id}, "quota": q.count, "message": q.reason}
        self.job(job_id)  # NotFound if it never existed
        return {"reference": {"jobId": job_id}, "quota": 0, "message": "the job has finished"}

    def host_load(self) -> list[tuple]:
        """(host id, attributes, tasks on it) of every registered host."""
        with self.state.lock:
            running = Counter(t.host_id for t in self.state.tasks.values()
                              if t.state in states.ON_HOST)
            return [(h.host_id, dict(h.attributes), running.get(h.host_id, 0))
                    for _, h in self.state.registry.hosts()]

    # capacity groups ------------------------------------------------------------------------
    def capacity_groups(self, name: Optional[str] = None) -> list[dict]:
        """Capacity groups (or the one named; NotFound if unknown) with their current usage."""
        with self.state.lock:
            groups = self.state.capacity.groups
            if name is not None and name not in groups:
                raise NotFound(name)
            chosen = [groups[name]] if name is not None else list(groups.values())
            return [{**g.wire(), "usage": dict(self.state.group_usage.get(g.name, {}))}
                    for g in chosen]
