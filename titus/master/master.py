"""The master: the control plane's composition root and its narrow interface.

It wires the parts together and offers the operations callers need; the parts receive only
the collaborators they use:

- :class:`~titus.master.state.ClusterState` — memory (jobs, tasks, agents, queue), one lock;
- :class:`~titus.master.ledger.Ledger` — the one commit path (validate, store, apply, emit);
- :class:`~titus.master.engine_adapter.EngineAdapter` — the scheduling engine and its hosts;
- :class:`~titus.master.lifecycle.Lifecycle` — plans endings, retries, kills, service counts;
- :class:`~titus.master.agents.Agents` — registration, heartbeats, lost agents;
- :class:`~titus.master.loop.Scheduling` and :class:`~titus.master.reconciler.Reconciler`,
  run by :class:`~titus.master.loop.MasterLoop`;
- :class:`~titus.master.queries.Queries` — read-only views for the REST layer.

Callers (REST routers, the autoscaler, tests) use the methods below and never take a lock.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Optional, Sequence

from titus import states
from titus.master.agents import Agents
from titus.master.capacity import CapacityGroup
from titus.master.config import MasterSettings
from titus.master.engine_adapter import EngineAdapter
from titus.master.auth import (ADMIN, AGENT, AGENT_PREFIX, ANONYMOUS, Principal, digest,
                               principal)
from titus.master.errors import Conflict, Forbidden, NotFound  # noqa: F401  (re-exported)
from titus.master.events import EventBus
from titus.master.eviction import Outcome, evict
from titus.master.idempotency import IdempotencyKey, KeyReused
from titus.master.lag import METER
from titus.master.ledger import Ledger
from titus.master.lifecycle import Lifecycle
from titus.master.loop import MasterLoop, Scheduling
from titus.master.model import CapacityUpdate, JobDescriptor
from titus.master.moves import Drain
from titus.master.queries import Queries
from titus.master.reconciler import Reconciler
from titus.master.relocation import Relocator
from titus.master.recovery import recover
from titus.master.records import JobRecord, TaskRecord
from titus.master.state import ClusterState
from titus.master.store import Store
from titus.master.work import Work
from titus.protocol import RegisterRequest, RegisterResponse, TaskStatusMsg
from titus.scheduler.model import Task


class Master:
    """Submit, kill and resize jobs; register and hear agents; query views."""

    def __init__(self, settings: MasterSettings, store: Store,
                 clock: Callable[[], float] = time.time, events: Optional[EventBus] = None,
                 lag: Optional[Callable[[], float]] = None):
        self.settings, self.store, self.clock = settings, store, clock
        self.state = ClusterState(settings)
        # observers (given: a bus that outlives this master, e.g. across a failover)
        self.events = events if events is not None else EventBus()
        self.engine = EngineAdapter(settings, self.state)
        self.ledger = Ledger(self.state, store, self.engine, self.events, clock)
        self.lifecycle = Lifecycle(self.state, settings, clock)
        self.ledger.settle = self.lifecycle.settle
        if lag is None:  # the process's own lag counts on its real clock only (tests fake it)
            lag = (lambda: METER.total) if clock is time.time else (lambda: 0.0)
        self.agents = Agents(self.state, self.ledger, self.lifecycle, settings, clock, lag)
        self.scheduling = Scheduling(self.state, self.ledger, self.engine, settings, clock,
                                     lifecycle=self.lifecycle)
        self.relocator = Relocator(self.state, self.lifecycle, clock)
        self.reconciler = Reconciler(self.state, self.ledger, self.lifecycle, self.agents,
                                     settings, clock, self.relocator)
        self.queries = Queries(self.state, self.engine, store)
        self.started_at = clock()

    def recover(self, follow_up: bool = True) -> dict:
        """Rebuild memory from the store (once, before serving); returns what came back.
        ``follow_up`` False: a read-only copy (a standby's), nothing written."""
        restored = recover(self.store, self.state, self.ledger, self.lifecycle, self.clock,
                           follow_up)
        lag = self.agents.lag()
        for agent in self.state.registry.agents.values():  # their timeout starts now
            agent.lag_seen = lag
        return restored

    def loop(self) -> MasterLoop:
        """A (not yet started) thread running scheduling rounds and reconciliation."""
        return MasterLoop(self.scheduling, self.reconciler.reconcile, self.state.wake,
                          self.settings, self.clock)

    def now(self) -> float:
        """The master's clock (epoch seconds)."""
        return self.clock()

    # ------------------------------------------------------------------ jobs and tasks
    def submit_job(self, descriptor: JobDescriptor, key: Optional[IdempotencyKey] = None,
                   caller: Principal = ANONYMOUS) -> JobRecord:
        """Store a new (validated) job and its first tasks; returns the job.

        With ``key`` (an :class:`~titus.master.idempotency.IdempotencyKey` without job id) a
        repeat of a remembered submission returns the first job instead; the same key with
        another body raises :class:`~titus.master.idempotency.KeyReused`. ``caller`` is
        recorded as the job's ``submitted_by``."""
        with self.state.lock:
            now = self.clock()
            if key is not None:
                first = self.state.idempotency.get((key.scope, key.key))
                keep = self.settings.idempotency_keep_sec
                if first is not None and first.created_at >= now - keep:
                    if first.body_sha256 != key.body_sha256:
                        raise KeyReused(key.key, first.job_id)
                    return self.queries.job(first.job_id)[0]
            job = self.state.new_job(descriptor, now, submitted_by=caller.name)
            work = Work()
            if key is not None:
                work.keys.append(replace(key, job_id=job.id, created_at=now))
            work.new_jobs.append(job)
            work.new_tasks.extend(self.state.new_task(job, i, now) for i in range(job.size))
            work.log.append(("jobAccepted", job.id, {"applicationName": descriptor.applicationName}))
            self.ledger.commit(work)
            return job

    def kill_job(self, job_id: str, caller: Principal = ANONYMOUS) -> JobRecord:
        """Kill every task of a job; it finishes when they have ended. Conflict if finished,
        Forbidden unless ``caller`` may manage the job."""
        with self.state.lock:
            job = self._live_job(job_id, "job is already finished", caller)
            _may_manage(caller, job)
            if job.state != states.ACCEPTED:
                return job
            work = Work()
            work.update_job(job, state=states.KILL_INITIATED, kill_initiated_at=self.clock(),
                            reason_code="killed", reason_message="killed by a user")
            for task in list(job.tasks.values()):
                self.lifecycle.kill(work, task, states.KILLED)
            work.log.append(("jobKillInitiated", job.id, {}))
            self.ledger.commit(work)
            return job

    def resize_job(self, job_id: str, update: CapacityUpdate,
                   caller: Principal = ANONYMOUS) -> JobRecord:
        """Change a service job's capacity; tasks are started or killed to match."""
        with self.state.lock:
            job = self._live_job(job_id, "job is finished", caller)
            _may_manage(caller, job)
            if job.batch:
                raise Conflict("only service jobs can be resized")
            if job.state != states.ACCEPTED:
                raise Conflict("job is being killed")
            work = Work()
            self.lifecycle.resize(work, job, update)
            self.ledger.commit(work)
            return job

    def kill_task(self, task_id: str, shrink: bool = False,
                  caller: Principal = ANONYMOUS) -> TaskRecord:
        """Kill one task. A service job replaces it unless ``shrink`` lowers the desired count."""
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is None or task.state == states.FINISHED:
                _, job, _ = self.queries.task(task_id)  # NotFound if unknown
                if job is not None:
                    _may_manage(caller, job)
                raise Conflict("task is already finished")
            job = self.state.jobs[task.job_id]
            _may_manage(caller, job)
            shrink = shrink and not job.batch
            work = Work()
            if shrink and task.state != states.KILL_INITIATED:  # a retried call shrinks once
                self.lifecycle.shrink(work, job)
            self.lifecycle.kill(work, task, states.SCALED_DOWN if shrink else states.KILLED)
            self.ledger.commit(work)
            return task

    # ------------------------------------------------------------------ eviction and drains
    def evict_task(self, task_id: str, caller: Principal = ANONYMOUS) -> Outcome:
        """Evict a task if its job's disruption budget allows it now (``titus.master.eviction``):
        it is killed with reason ``evicted`` and replaced as usual. The outcome either way (a
        refusal is no error); NotFound if the task never existed, Forbidden unless ``caller``
        may manage its job. A retried call finds the task evicted and kills nothing more."""
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is None:
                gone, _, _ = self.queries.task(task_id)  # NotFound if it never existed
                code = "alreadyEvicted" if gone.reason_code == states.EVICTED else "finished"
                return Outcome(False, code, f"the task has finished ({gone.reason_code})")
            job = self.state.jobs[task.job_id]
            _may_manage(caller, job)
            work = Work()
            outcome = evict(self.state, self.lifecycle, work, task, job, self.clock(),
                            caller.name)
            if outcome.allowed:
                self.ledger.commit(work)
            return outcome

    def drain_hosts(self, host_ids: Sequence[str], deadline_sec: Optional[float] = None,
                    caller: Principal = ANONYMOUS, strict: bool = True,
                    by: Optional[str] = None) -> list[Drain]:
        """Drain hosts: no new task lands on them and their tasks are moved off at the pace
        the budgets allow (``titus.master.relocation``); batch tasks still there after
        ``deadline_sec`` are killed and run elsewhere. Draining a drained host again keeps
        when it began (a new ``deadline_sec`` replaces its deadline). NotFound for a host
        that is neither registered nor drained (``strict``; else it is skipped). ``by``
        names who asked (default: the caller). Stored before it acts, so a restarted master
        goes on draining."""
        with self.state.lock:
            now = self.clock()
            known = {info.host_id for _, info in self.state.registry.hosts()}
            work = Work()
            for host_id in dict.fromkeys(host_ids):
                old = self.state.drains.get(host_id)
                if old is None and host_id not in known:
                    if strict:
                        raise NotFound(host_id)
                    continue
                deadline = (now + deadline_sec) if deadline_sec is not None else (
                    old.deadline if old is not None else None)
                drain = Drain(host_id, old.since if old is not None else now, deadline,
                              old.by if old is not None else (by or caller.name))
                if drain != old:
                    work.drain_puts.append(drain)
                    work.log.append(("hostDrain", host_id, drain.view()))
            self.ledger.commit(work)
            return [self.state.drains[h] for h in dict.fromkeys(host_ids)
                    if h in self.state.drains]

    def undrain_hosts(self, host_ids: Sequence[str], strict: bool = True) -> None:
        """Stop draining hosts: tasks may land on them again (moves already begun go on).
        NotFound for a host neither registered nor drained (``strict``)."""
        with self.state.lock:
            known = {info.host_id for _, info in self.state.registry.hosts()}
            work = Work()
            for host_id in dict.fromkeys(host_ids):
                if host_id in self.state.drains:
                    work.drain_deletes.append(host_id)
                    work.log.append(("hostUndrain", host_id, {}))
                elif strict and host_id not in known:
                    raise NotFound(host_id)
            self.ledger.commit(work)

    def get_job(self, job_id: str) -> tuple[JobRecord, bool]:
        """A job and whether it is archived; NotFound if it never existed."""
        return self.queries.job(job_id)

    def get_task(self, task_id: str) -> tuple[TaskRecord, Optional[JobRecord], bool]:
        """A task, its job (if live) and whether it is archived; NotFound if unknown."""
        return self.queries.task(task_id)

    def _live_job(self, job_id: str, finished: str, caller: Principal) -> JobRecord:
        job = self.state.jobs.get(job_id)
        if job is None:
            archived, _ = self.queries.job(job_id)  # NotFound if it never existed
            _may_manage(caller, archived)  # another's job is 403 whatever its state
            raise Conflict(finished)
        return job

    # ------------------------------------------------------------------ capacity groups
    def put_capacity_group(self, group: CapacityGroup) -> None:
        """Create or replace a capacity group."""
        work = Work()
        work.capacity_puts.append(group)
        self.ledger.commit(work)

    def delete_capacity_group(self, name: str) -> None:
        """Remove a capacity group; NotFound if unknown."""
        with self.state.lock:
            if name not in self.state.capacity.groups:
                raise NotFound(name)
            work = Work()
            work.capacity_deletes.append(name)
            self.ledger.commit(work)

    # ------------------------------------------------------------------ agents
    def agent_principal(self, token: Optional[str]) -> Optional[Principal]:
        """The principal ``agent:<id>`` of an agent's own credential, or None."""
        if not token:
            return None
        agent_id = self.state.registry.agent_of_credential(digest(token))
        return principal(AGENT_PREFIX + agent_id, [AGENT]) if agent_id else None

    def register_agent(self, req: RegisterRequest,
                       caller: Principal = ANONYMOUS) -> RegisterResponse:
        """(Re)register an agent and reconcile what it holds (see ``titus.master.agents``).
        Forbidden or Conflict when ``caller`` may not register it."""
        return self.agents.register(req, caller)

    def agent_arrived(self, agent_id: str, caller: Principal = ANONYMOUS) -> None:
        """An agent's request arrived: it is not silent, however long the master takes to
        get to it (no lock taken)."""
        self.agents.arrived(agent_id, caller)

    def heartbeat(self, agent_id: str, statuses: list[TaskStatusMsg], running: list[str],
                  caller: Principal = ANONYMOUS) -> bool:
        """Apply an agent's heartbeat; False if it must register again. Forbidden unless
        ``caller`` is that agent."""
        return self.agents.heartbeat(agent_id, statuses, running, caller)

    def deregister_agent(self, agent_id: str, caller: Principal = ANONYMOUS) -> None:
        """An agent leaving gracefully; NotFound if unknown, Forbidden unless ``caller`` is
        that agent."""
        self.agents.deregister(agent_id, caller)

    def agent_log_token(self, agent_id: str) -> Optional[str]:
        """The token to present to agent ``agent_id``'s log server: its own, derived from the
        cluster's log secret (None if no agent was handed one)."""
        return self.agents.log_token_of(agent_id)

    def take_orders(self, agent_id: str) -> list:
        """Remove and return the orders queued for an agent."""
        return self.state.registry.take(agent_id)

    async def wait_orders(self, agent_id: str, timeout: float) -> None:
        """Sleep until an order for the agent is queued or ``timeout`` seconds pass."""
        await self.state.registry.wait_orders(agent_id, timeout)

    # ------------------------------------------------------------------ for the autoscaler
    def waiting_for_hosts(self) -> list[Task]:
        """Tasks that wait for a host now (due, and not held back by their capacity group's
        limit), as the engine sees them: what new hosts would have to fit."""
        with self.state.lock:
            now, zones = self.clock(), self.state.zone_count()
            return [self.engine.task_for(t, zones) for t in self.state.tasks.values()
                    if t.state == states.ACCEPTED and t.retry_at <= now
                    and not t.capacity_limited]

    def hold_off_hosts(self, host_ids: Sequence[str]) -> None:
        """No new task lands on these hosts (draining), also after they register again."""
        work = Work()
        work.hold_off.extend(host_ids)
        self.ledger.commit(work)

    def release_hosts(self, host_ids: Sequence[str]) -> None:
        """Tasks may land on these hosts again."""
        work = Work()
        work.release.extend(host_ids)
        self.ledger.commit(work)

    def forget_hosts(self, host_ids: Sequence[str]) -> None:
        """Hosts were terminated: forget them, and agents all of whose hosts they were."""
        gone = set(host_ids)
        with self.state.lock:
            work = Work()
            work.unhold.extend(sorted(gone))  # not enabled: they are gone
            work.drain_deletes.extend(sorted(gone & set(self.state.drains)))
            self.ledger.commit(work)
            registry = self.state.registry
            for agent_id in {registry.agent_of_host(h) for h in gone} - {None}:
                agent = registry.get(agent_id)
                if agent is not None and set(agent.hosts) <= gone:
                    self.agents.lose(agent, "agent deregistered")

    def publish(self, kind: str, render: Callable[[], dict]) -> None:
        """Tell observers of a cluster-wide event (an autoscaling action, ...)."""
        self.events.publish(kind, "", render)

    # ------------------------------------------------------------------ read-only views
    def read_if_free(self, fn: Callable, *args) -> tuple[bool, object]:
        """``(True, fn(*args))`` run under the state lock if it is free at once, else
        ``(False, None)`` without waiting (the caller, an event loop, reads on a thread)."""
        lock = self.state.lock
        if not lock.acquire(blocking=False):
            return False, None
        try:
            return True, fn(*args)
        finally:
            lock.release()

    def counts(self) -> dict:
        """Live numbers for metrics: tasks by state, queued tasks, jobs, agents, hosts."""
        with self.state.lock:
            return {"tasks": dict(self.state.state_counts), "queued": len(self.state.queue),
                    "jobs": len(self.state.jobs), "agents": len(self.state.registry.agents),
                    "hosts": len(self.engine.hosts)}

    def on_round(self, observer: Callable[[float, int, int], None]) -> None:
        """Call ``observer(seconds, tasks offered, tasks placed)`` after each engine round."""
        self.scheduling.observers.append(observer)

    @property
    def jobs(self) -> dict[str, JobRecord]:
        """Live jobs by id (read only)."""
        return self.state.jobs

    @property
    def tasks(self) -> dict[str, TaskRecord]:
        """Live tasks by id (read only)."""
        return self.state.tasks

    @property
    def registry(self):
        """The agent registry (read only)."""
        return self.state.registry

    @property
    def scheduler(self):
        """The scheduling engine (read only)."""
        return self.engine.scheduler

    @property
    def state_counts(self) -> dict[str, int]:
        """Live tasks per state."""
        return self.state.state_counts

    @property
    def group_usage(self) -> dict[str, dict[str, float]]:
        """What each capacity group holds on hosts."""
        return self.state.group_usage


def _may_manage(caller: Principal, job: JobRecord) -> None:
    """Forbidden unless ``caller`` submitted the job or is an admin. Jobs from before
    principals (or from a master without tokens) have no submitter: any user may manage them."""
    if caller.can(ADMIN) or job.submitted_by in ("", caller.name, ANONYMOUS.name):
        return
    raise Forbidden(f"job {job.id} was submitted by another principal", "jobId")
