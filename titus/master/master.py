"""The master: jobs, tasks, agents and the engine, kept consistent with the store.

Every operation takes the master lock, plans its changes into a :class:`Work`, writes them to
the store in one transaction (write-ahead), then applies them to memory, queues agent orders
and notifies observers. The scheduling loop (``titus.master.loop``), the reconciler
(``titus.master.reconciler``) and agent registration and heartbeats (``titus.master.agents``)
work through the same path.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from typing import Callable, Optional

from titus.agent.protocol import RegisterRequest, RegisterResponse, TaskStatusMsg
from titus.master import agents, retry, states
from titus.master.agents import AgentRecord, AgentRegistry
from titus.master.capacity import CapacityGroup, CapacityGroups, demand_of
from titus.master.config import MasterSettings
from titus.master.engine import make_scheduler
from titus.master.errors import Conflict, NotFound  # noqa: F401  (re-exported)
from titus.master.events import EventBus
from titus.master.ids import new_id
from titus.master.model import CapacityUpdate, JobDescriptor
from titus.master.orders import Order, kill_order
from titus.master.model_constraints import to_engine
from titus.master.queue import PendingQueue
from titus.master.records import JobRecord, TaskRecord
from titus.master.store import Store
from titus.master.views import job_view, task_view
from titus.master.work import Work
from titus.constraints import HostAttrValue
from titus.scheduler.model import Task

log = logging.getLogger("titus.master")



class Master:
    """The control plane's state and operations."""

    def __init__(self, settings: MasterSettings, store: Store, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.lock = threading.RLock()
        self.jobs: dict[str, JobRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.registry = AgentRegistry()
        self.capacity = CapacityGroups()
        self.queue = PendingQueue()
        self.events = EventBus()
        self.scheduler = make_scheduler(settings.fitness, settings.good_enough,
                                        task_order=settings.task_order)
        self.engine_hosts: set[str] = set()
        # Hosts kept disabled (draining, or in a PhasedOut group) even across a re-registration,
        # which would otherwise bring a host back enabled.
        self.held_off: set[str] = set()
        self.hosts_version = 0  # bumped whenever hosts come or go (constraint caches follow)
        self.agent_tasks: dict[str, set[str]] = {}
        self.group_usage: dict[str, dict[str, float]] = {}
        self.state_counts: dict[str, int] = {s: 0 for s in states.TASK_STATES}
        self.timers: list = []  # (due, n, task id, kind, stamp)
        self._timer_n = itertools.count()
        self._job_seq = 0
        self._task_seq = 0
        self.wake = threading.Event()  # new work for the scheduling loop
        self.sched_dirty = True
        self.started_at = clock()
        self.round_observers: list = []  # called with (seconds, tasks offered, tasks placed)

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        """The master's clock."""
        return self.clock()

    def _next_task_seq(self) -> int:
        self._task_seq += 1
        return self._task_seq

    def cluster_total(self) -> dict[str, float]:
        """Sum of the resources of every registered host."""
        total = {"cpus": 0.0, "memory_mb": 0.0, "disk_mb": 0.0, "network_mbps": 0.0, "gpu": 0.0}
        for _, h in self.registry.hosts():
            total["cpus"] += h.cpus
            total["memory_mb"] += h.memory_mb
            total["disk_mb"] += h.disk_mb
            total["network_mbps"] += h.network_mbps
            total["gpu"] += h.gpu
        return total

    def zone_count(self) -> int:
        """How many zones the registered hosts are in (at least 1)."""
        return max(1, len({h.attributes.get("zone") for _, h in self.registry.hosts()
                           if h.attributes.get("zone")}))

    def demand(self, job: JobRecord) -> dict[str, float]:
        """What one task of ``job`` needs, in engine resource names (cached per job)."""
        if job.demand_cache is None:
            job.demand_cache = demand_of(job.descriptor.container.resources)
        return job.demand_cache

    def engine_task(self, task: TaskRecord, zones: Optional[int] = None) -> Task:
        """The engine's view of a task (constraints cached per job, zone count and host set)."""
        job = self.jobs[task.job_id]
        zones = self.zone_count() if zones is None else zones
        key = (zones, self.hosts_version)
        cached = job.engine_cache.get(key)
        if cached is None:
            c = job.descriptor.container
            cached = (self._by_hostname(to_engine(c.hardConstraints.constraints, zones)),
                      self._by_hostname(to_engine(c.softConstraints.constraints, zones)),
                      self.demand(job))
            job.engine_cache = {key: cached}
        hard, soft, d = cached
        return Task(task.id, cpus=d["cpus"], memory_mb=d["memory_mb"], disk_mb=d["disk_mb"],
                    network_mbps=d["network_mbps"], scalars={"gpu": d["gpu"]} if d["gpu"] else {},
                    job=job.id, group=job.group, hard=hard, soft=soft)

    def _by_hostname(self, constraints: list) -> list:
        """Constraints on host attributes the engine is not given, as constraints on host ids.

        (An attribute with one value per host, such as ``instance_id``, is cheaper for the
        engine as the set of hosts carrying the wanted values.)
        """
        kept = self.settings.engine_attributes
        out = []
        for c in constraints:
            if isinstance(c, HostAttrValue) and c.attr != "hostname" and c.attr not in kept:
                wanted = set(c.values)
                hosts = sorted(h.host_id for _, h in self.registry.hosts()
                               if h.attributes.get(c.attr) in wanted)
                # no host has it: a readable stand-in no host is called, so it still fails
                c = HostAttrValue("hostname", values=hosts or [
                    f"<no host with {c.attr}={','.join(map(str, c.values))}>"])
            out.append(c)
        return out

    def launch_order(self, task: TaskRecord, host_id: str, ports: list[int]) -> Order:
        """The order that starts ``task`` on ``host_id``."""
        job = self.jobs[task.job_id]
        c = job.descriptor.container
        env = dict(c.env)
        env.update({"TITUS_JOB_ID": job.id, "TITUS_TASK_ID": task.id,
                    "TITUS_TASK_INDEX": str(task.idx)})
        hc = None
        if c.healthCheck is not None:
            hc = {"command": list(c.healthCheck.command), "interval_sec": c.healthCheck.intervalSec,
                  "timeout_sec": c.healthCheck.timeoutSec, "retries": c.healthCheck.retries}
        r = c.resources
        # built from validated data, in the wire shape of protocol.LaunchOrder
        return Order(
            type="launch", task_id=task.id, job_id=job.id, host_id=host_id,
            image=c.image.reference(), entry_point=list(c.entryPoint), command=list(c.command),
            env=env, cpus=float(r.cpu), memory_mb=float(r.memoryMB), disk_mb=float(r.diskMB),
            network_mbps=float(r.networkMbps), gpu=int(r.gpu), ports=list(ports),
            kill_grace_sec=job.kill_grace_sec, health_check=hc,
            iam_role=c.securityProfile.iamRole)

    def _new_task(self, job: JobRecord, idx: int, now: float, *, resubmit_of: str = "",
                  resubmit_number: int = 0, system_resubmit_number: int = 0,
                  retry_at: float = 0.0) -> TaskRecord:
        return TaskRecord(id=new_id(), job_id=job.id, seq=self._next_task_seq(), idx=idx,
                          resubmit_of=resubmit_of, resubmit_number=resubmit_number,
                          system_resubmit_number=system_resubmit_number, retry_at=retry_at,
                          accepted_at=now)

    # ------------------------------------------------------------------ commit / apply
    def commit(self, work: Work) -> None:
        """Write ``work`` to the store, then apply it to memory and tell the outside world."""
        if work.empty():
            return
        with self.store.transaction() as tx:
            for job in work.new_jobs:
                tx.insert_job(job.row())
            tx.insert_tasks([t.row_tuple() for t in work.new_tasks], TaskRecord.ROW_FIELDS)
            tx.update_tasks([{"seq": t.seq, **vals} for t, vals in work.task_updates.items()])
            for job, vals in work.job_updates.items():
                stored = dict(vals)
                if "descriptor" in stored:
                    stored["descriptor"] = json.dumps(stored["descriptor"].wire())
                tx.update_job(job.id, stored)
            for job in work.archives:
                tx.archive_job(job.id)
            for row in work.agent_rows:
                tx.upsert_agent(row)
            for agent_id in work.agent_deletes:
                tx.delete_agent(agent_id)
            now = self.now()
            for kind, entity, data in work.log:
                tx.event(now, kind, entity, data)
        self._apply(work)

    def _apply(self, work: Work) -> None:
        for job in work.new_jobs:
            self.jobs[job.id] = job
        for task in work.new_tasks:
            job = self.jobs[task.job_id]
            job.tasks[task.id] = task
            job.next_index = max(job.next_index, task.idx + 1)
            self.tasks[task.id] = task
            self.state_counts[task.state] += 1
            if task.state != states.FINISHED:
                job.live_count += 1
            if task.state == states.ACCEPTED:
                self.queue.add(job.group, task.id)
                self.sched_dirty = True
        for task, vals in work.task_updates.items():
            self._apply_task(task, vals)
        for job, idx, failed in work.done_indices:
            job.done_indices.add(idx)
            if failed:
                job.failed_indices.add(idx)
        for job, vals in work.job_updates.items():
            for name, value in vals.items():
                setattr(job, name, value)
            job.wire_cache = None
            job.engine_cache = {}
            job.demand_cache = None
        if work.removed_hosts:
            self.hosts_version += 1
        for host_id in work.removed_hosts:
            if host_id in self.engine_hosts:
                for tid in self.scheduler.remove_host(host_id):
                    t = self.tasks.get(tid)
                    if t is not None and t.in_engine:
                        t.in_engine = False
                        self._usage(t, -1)
                self.engine_hosts.discard(host_id)
        for job in work.archives:
            self.jobs.pop(job.id, None)
            for tid in job.tasks:
                self.tasks.pop(tid, None)
                self.state_counts[states.FINISHED] -= 1
        for agent_id, order in work.orders:
            self.registry.send(agent_id, order)
        if self.events.active:
            for task in itertools.chain(work.new_tasks, work.task_updates):
                job = self.jobs.get(task.job_id)
                self.events.publish("taskUpdate", task.job_id,
                                    lambda t=task, j=job: task_view(t, j))
            for job in itertools.chain(work.new_jobs, work.job_updates):
                self.events.publish("jobUpdate", job.id, lambda j=job: job_view(j))
        if work.new_tasks:
            self.wake.set()

    def _apply_task(self, task: TaskRecord, vals: dict) -> None:
        old_state = task.state
        for name, value in vals.items():
            setattr(task, name, value)
        new_state = task.state
        if new_state == old_state:
            if "agent_id" in vals and task.agent_id and new_state in states.ON_HOST:
                self.agent_tasks.setdefault(task.agent_id, set()).add(task.id)  # re-adopted
            return
        self.state_counts[old_state] -= 1
        self.state_counts[new_state] += 1
        job = self.jobs.get(task.job_id)
        if old_state == states.ACCEPTED and job is not None:
            self.queue.discard(job.group, task.id)
            task.scheduling_failure = ""
        if new_state in states.ON_HOST and task.agent_id:
            self.agent_tasks.setdefault(task.agent_id, set()).add(task.id)
        if new_state == states.FINISHED:
            if job is not None:
                job.live_count -= 1
            if task.in_engine:
                try:
                    self.scheduler.release(task.id)
                except KeyError:
                    pass
                task.in_engine = False
                self._usage(task, -1)
                self.sched_dirty = True
            held = self.agent_tasks.get(task.agent_id)
            if held is not None:
                held.discard(task.id)
            return
        self._arm_timers(task, job)

    def _arm_timers(self, task: TaskRecord, job: Optional[JobRecord]) -> None:
        s = self.settings
        timeout = {states.LAUNCHED: s.launched_timeout_sec,
                   states.START_INITIATED: s.start_initiated_timeout_sec,
                   states.KILL_INITIATED: s.kill_initiated_timeout_sec}.get(task.state)
        stamp = task.state_time(task.state)
        if timeout and stamp is not None:
            self._timer(stamp + timeout, task.id, task.state, stamp)
        if task.state == states.STARTED and job is not None and job.runtime_limit_sec > 0:
            self._timer(task.started_at + job.runtime_limit_sec, task.id, "runtime", task.started_at)

    def _timer(self, due: float, task_id: str, kind: str, stamp: float) -> None:
        heapq.heappush(self.timers, (due, next(self._timer_n), task_id, kind, stamp))

    def _usage(self, task: TaskRecord, sign: int) -> None:
        job = self.jobs.get(task.job_id)
        if job is None:
            return
        used = self.group_usage.setdefault(job.group, {})
        for r, v in self.demand(job).items():
            used[r] = used.get(r, 0.0) + sign * v

    # ------------------------------------------------------------------ task endings
    def plan_finish(self, work: Work, task: TaskRecord, reason: str, message: str = "",
                    exit_code: Optional[int] = None) -> None:
        """Plan ``task`` -> Finished(reason), and its replacement if the retry rules say so."""
        current = work.get(task, "state")
        if current == states.FINISHED:
            return
        now = self.now()
        work.update(task, state=states.FINISHED, reason_code=reason, reason_message=message,
                    finished_at=now, exit_code=exit_code)
        job = self.jobs[task.job_id]
        work.touch(job)
        active = work.job_get(job, "state") == states.ACCEPTED
        kill_reason = work.get(task, "kill_reason")
        # a task that was being killed on purpose ends for that purpose, however it ended
        judged = kill_reason if kill_reason and reason in retry.SYSTEM_REASONS else reason
        decision = retry.decide(
            batch=job.batch, rule=job.rule, reason=judged, user_retries_used=task.user_retries_used,
            system_retries_used=task.system_resubmit_number, job_active=active,
            retry_on_runtime_limit=bool(job.batch and job.descriptor.batch.retryOnRuntimeLimit),
            max_system_retries=self.settings.max_system_retries)
        if not job.batch and decision.resubmit:
            # a service job replaces only while it is below its desired count
            desired = work.job_get(job, "descriptor").service.capacity.desired
            if self._planned_live(work, job) >= desired:
                decision = retry.NO
        if decision.resubmit:
            work.new_tasks.append(self._new_task(
                job, task.idx, now, resubmit_of=task.id, resubmit_number=task.resubmit_number + 1,
                system_resubmit_number=task.system_resubmit_number + (1 if decision.system else 0),
                retry_at=now + decision.delay_sec if decision.delay_sec > 0 else 0.0))
        elif job.batch:
            work.done_indices.append((job, task.idx, reason != states.NORMAL))

    def _planned_live(self, work: Work, job: JobRecord) -> int:
        """Tasks of a job that will be alive (and not being killed) after ``work``."""
        n = 0
        for t in job.tasks.values():
            if work.get(t, "state") not in (states.FINISHED, states.KILL_INITIATED):
                n += 1
        n += sum(1 for t in work.new_tasks if t.job_id == job.id)
        return n

    def plan_kill(self, work: Work, task: TaskRecord, kill_reason: str) -> None:
        """Plan killing ``task``: a waiting one ends at once, a placed one gets a KillOrder."""
        state = work.get(task, "state")
        if state == states.FINISHED:
            return
        if state == states.ACCEPTED:
            self.plan_finish(work, task, kill_reason, "killed before it was placed")
            return
        job = self.jobs[task.job_id]
        if state != states.KILL_INITIATED:
            work.update(task, state=states.KILL_INITIATED, kill_reason=kill_reason,
                        kill_initiated_at=self.now())
        work.order(work.get(task, "agent_id"), kill_order(task.id, job.kill_grace_sec))

    def settle_jobs(self, jobs) -> None:
        """Finish and archive jobs whose work is over (batch done, or killed and drained)."""
        work = Work()
        now = self.now()
        for job in jobs:
            if job.id not in self.jobs or job.state == states.FINISHED:
                continue
            if job.live_count > 0:
                continue
            if job.state == states.KILL_INITIATED:
                reason = "killed"
            elif job.batch and len(job.done_indices) >= job.size:
                reason = "normal" if not job.failed_indices else "failed"
            else:
                continue
            work.update_job(job, state=states.FINISHED, reason_code=reason, finished_at=now,
                            reason_message="" if reason != "failed" else "some tasks failed")
            work.archives.append(job)
            work.log.append(("jobFinished", job.id, {"reason": reason}))
            log.info("job %s finished (%s)", job.id, reason)
        self.commit(work)

    def _after(self, work: Work) -> None:
        """Commit ``work`` and settle the jobs it touched."""
        self.commit(work)
        if work.touched_jobs:
            self.settle_jobs(list(work.touched_jobs.values()))

    # ------------------------------------------------------------------ jobs API
    def submit_job(self, descriptor: JobDescriptor) -> JobRecord:
        """Store a new (validated) job and its first tasks; returns the job."""
        with self.lock:
            now = self.now()
            self._job_seq += 1
            job = JobRecord(id=new_id(), seq=self._job_seq, descriptor=descriptor,
                            accepted_at=now)
            work = Work()
            work.new_jobs.append(job)
            for idx in range(job.size):
                work.new_tasks.append(self._new_task(job, idx, now))
            work.log.append(("jobAccepted", job.id, {"applicationName": descriptor.applicationName}))
            self.commit(work)
            log.info("job %s accepted (%d tasks)", job.id, job.size)
            return job

    def get_job(self, job_id: str) -> tuple[JobRecord, bool]:
        """A job and whether it is archived; NotFound if it never existed."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is not None:
                return job, False
        row = self.store.archived_job(job_id)
        if row is None:
            raise NotFound(job_id)
        return JobRecord.from_row(row), True

    def kill_job(self, job_id: str) -> JobRecord:
        """Kill every task of a job and finish it; NotFound if it is not live."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                self.get_job(job_id)  # NotFound if unknown
                raise Conflict("job is already finished")
            if job.state != states.ACCEPTED:
                return job
            work = Work()
            work.update_job(job, state=states.KILL_INITIATED, kill_initiated_at=self.now(),
                            reason_code="killed", reason_message="killed by a user")
            for task in list(job.tasks.values()):
                self.plan_kill(work, task, states.KILLED)
            work.log.append(("jobKillInitiated", job.id, {}))
            self._after(work)
            return job

    def resize_job(self, job_id: str, update: CapacityUpdate) -> JobRecord:
        """Change a service job's capacity; the reconciler adds or removes tasks."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                self.get_job(job_id)
                raise Conflict("job is finished")
            if job.batch:
                raise Conflict("only service jobs can be resized")
            if job.state != states.ACCEPTED:
                raise Conflict("job is being killed")
            cap = job.descriptor.service.capacity
            new = {"min": cap.min if update.min is None else update.min,
                   "desired": cap.desired if update.desired is None else update.desired,
                   "max": cap.max if update.max is None else update.max}
            if update.desired is None:  # keep desired inside the new bounds
                new["desired"] = min(max(new["desired"], new["min"]), new["max"])
            if not (new["min"] <= new["desired"] <= new["max"]):
                from titus.master.validation import Problem, SpecError

                raise SpecError([Problem("capacity", "must satisfy min <= desired <= max", new)],
                                "capacity")
            descriptor = job.descriptor.model_copy(deep=True)
            descriptor.service.capacity.min = new["min"]
            descriptor.service.capacity.desired = new["desired"]
            descriptor.service.capacity.max = new["max"]
            work = Work()
            work.update_job(job, descriptor=descriptor)
            work.log.append(("jobResized", job.id, new))
            self.commit(work)
            from titus.master.reconciler import resolve_service

            work = Work()
            resolve_service(self, work, job)
            self._after(work)
            return job

    # ------------------------------------------------------------------ tasks API
    def get_task(self, task_id: str) -> tuple[TaskRecord, Optional[JobRecord], bool]:
        """A task, its job (if live) and whether it is archived."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is not None:
                return task, self.jobs.get(task.job_id), False
        row = self.store.archived_task(task_id)
        if row is None:
            raise NotFound(task_id)
        return TaskRecord.from_row(row), None, True

    def kill_task(self, task_id: str, shrink: bool = False) -> TaskRecord:
        """Kill one task. A service job replaces it unless ``shrink`` lowers the desired count."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.state == states.FINISHED:
                self.get_task(task_id)
                raise Conflict("task is already finished")
            job = self.jobs[task.job_id]
            work = Work()
            reason = states.KILLED
            if shrink and not job.batch:
                descriptor = job.descriptor.model_copy(deep=True)
                cap = descriptor.service.capacity
                cap.desired = max(0, cap.desired - 1)
                cap.min = min(cap.min, cap.desired)
                work.update_job(job, descriptor=descriptor)
                reason = states.SCALED_DOWN
            self.plan_kill(work, task, reason)
            self._after(work)
            return task

    # ------------------------------------------------------------------ capacity groups
    def put_capacity_group(self, group: CapacityGroup) -> None:
        """Create or replace a capacity group (stored first)."""
        with self.lock:
            with self.store.transaction() as tx:
                tx.upsert_capacity_group(group.name, group.tier, group.wire())
            self.capacity.put(group)
            self.sched_dirty = True

    def delete_capacity_group(self, name: str) -> None:
        """Remove a capacity group; NotFound if unknown."""
        with self.lock:
            if name not in self.capacity.groups:
                raise NotFound(name)
            with self.store.transaction() as tx:
                tx.delete_capacity_group(name)
            self.capacity.remove(name)

    # ------------------------------------------------------------------ agents
    def register_agent(self, req: RegisterRequest) -> RegisterResponse:
        """(Re)register an agent and reconcile what it holds (see ``agents.register``)."""
        return agents.register(self, req)

    def heartbeat(self, agent_id: str, statuses: list[TaskStatusMsg], running: list[str]) -> bool:
        """Apply an agent's heartbeat; False if it must register again (``agents.heartbeat``)."""
        return agents.heartbeat(self, agent_id, statuses, running)

    def deregister_agent(self, agent_id: str) -> None:
        """An agent leaving gracefully (``agents.deregister``)."""
        agents.deregister(self, agent_id)

    def lose_agent(self, agent: AgentRecord, why: str) -> None:
        """Mark an agent's tasks lost and forget it (``agents.lose``)."""
        agents.lose(self, agent, why)
