"""The scheduling loop: waiting tasks -> engine (one batch call) -> ledger -> agent orders.

A round runs as soon as there is new work (a new task, a freed host, a new host: the loop
wakes on ``state.wake`` or at the latest after ``schedule_interval_sec``); with no news, at
most every ``IDLE_ROUND_SEC``, to let delayed retries in. The reconciler runs every
``reconcile_interval_sec`` on the same thread. Assignments are committed (stored) before
any launch order is queued; if the commit fails the engine gives the resources back (and
while the store refuses writes the loop backs off and retries: ``MasterLoop``). A task
that stays waiting keeps the engine's reason (``schedulingFailure`` in the API); one held back
by its capacity group's limit is marked so (``capacity_limited``): it needs no new host.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from titus import states
from titus.master.config import MasterSettings
from titus.master.engine_adapter import EngineAdapter
from titus.master.errors import StoreUnavailable
from titus.master.ledger import Ledger
from titus.master.orders import launch_order
from titus.master.state import ClusterState
from titus.master.work import Work

log = logging.getLogger("titus.master.loop")

# Re-run a round with no news at most this often (delayed retries come due by time).
IDLE_ROUND_SEC = 1.0
# The longest pause between tries while the store refuses writes.
MAX_BACKOFF_SEC = 5.0
NO_HOSTS = "0/0 hosts: no host is registered"


class Scheduling:
    """Scheduling rounds: the queue's next batch through the engine, committed."""

    def __init__(self, state: ClusterState, ledger: Ledger, engine: EngineAdapter,
                 settings: MasterSettings, clock: Callable[[], float], lifecycle=None):
        self.state = state
        self.lifecycle = lifecycle  # kills the tasks a Critical task preempts
        self.ledger = ledger
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.last_round = 0.0
        self.observers: list = []  # called with (seconds, tasks offered, tasks placed)

    def run_round(self, force: bool = False) -> int:
        """Place what can be placed now; returns how many tasks were launched.

        Raises :class:`StoreUnavailable` if the round could not be stored: the engine has given
        back what it placed and the tasks wait in the queue, as before the round."""
        st = self.state
        with st.lock:
            now = self.clock()
            if len(st.queue) == 0:
                return 0
            if not (force or st.sched_dirty or now - self.last_round >= IDLE_ROUND_SEC):
                return 0
            st.sched_dirty = False
            self.last_round = now
            if not self.engine.hosts:
                self.ledger.commit(self._explain_no_hosts())
                return 0
            tasks, jobs = st.tasks, st.jobs
            demands: dict = {}

            def demand_of(task_id):
                job_id = tasks[task_id].job_id
                d = demands.get(job_id)
                if d is None:
                    d = demands[job_id] = st.demand(jobs[job_id])
                return d

            order, held = st.queue.next_batch(
                groups=st.capacity, usage=st.group_usage, cluster=st.cluster_total(),
                demand_of=demand_of, eligible=lambda tid: tasks[tid].retry_at <= now,
                limit=self.settings.max_batch)
            work = Work()
            for task_id, message in held.items():
                work.note(tasks[task_id], scheduling_failure=message, capacity_limited=True)
            if not order:
                self.ledger.commit(work)
                return 0
            self.engine.compact_if_due()  # between rounds: nothing placed and not yet stored
            started = time.perf_counter()
            result = self.engine.place([tasks[tid] for tid in order], st.zone_count(),
                                       self._preemption_quotas(order, now))
            elapsed = time.perf_counter() - started
            for observe in self.observers:
                observe(elapsed, len(order), len(result.assignments))
            for task_id, host_id in result.assignments.items():
                task = tasks[task_id]
                agent_id = st.registry.agent_of_host(host_id) or ""
                ports = list(result.ports.get(task_id, ()))
                work.update(task, state=states.LAUNCHED, launched_at=now, host_id=host_id,
                            agent_id=agent_id, ports=",".join(str(p) for p in ports),
                            launch_attempts=1)
                work.placed.append(task)
                work.order(agent_id, launch_order(jobs[task.job_id], task, host_id, ports, 1,
                                                       st.epoch))
            for task_id, message in result.failures.items():
                work.note(tasks[task_id], scheduling_failure=message, capacity_limited=False)
            victims = self._preempt(work, result.preemptions, now)
            try:
                self.ledger.commit(work)
            except StoreUnavailable:  # the loop backs off; the next round places them again
                self._give_back(result.assignments, victims)
                raise
            except Exception:
                log.exception("could not store a scheduling round; giving its resources back")
                self._give_back(result.assignments, victims)
                return 0
            if result.assignments:
                st.sched_dirty = True  # more may fit, and the queue may hold more
            return len(result.assignments)

    def _give_back(self, assignments, victims=()) -> None:
        """An uncommitted round: the engine releases what it placed and holds again what it
        preempted (they were not killed); the tasks stay queued."""
        for task_id in assignments:
            self.engine.release(task_id)
        for task in victims:
            try:
                self.engine.hold(task)
            except (ValueError, KeyError):
                log.warning("could not hold preempted task %s again", task.id)
        self.state.sched_dirty = True

    def _preemption_quotas(self, order, now: float):
        """{Flex job id: tasks it may lose now} by the job's disruption budget, when a task of
        the batch belongs to a preempting Critical group (docs/preemption.md); else None."""
        st = self.state
        if self.lifecycle is None:
            return None
        groups = {st.jobs[st.tasks[tid].job_id].group for tid in order}
        if not any(st.capacity.preempts(g) for g in groups):
            return None
        from titus.master.eviction import preemption_quota  # plans kills: imported on use

        quotas = {}
        for job in st.jobs.values():
            if st.capacity.get(job.group).tier != "Flex":
                continue
            if any(t.state in states.ON_HOST for t in job.tasks.values()):
                count = preemption_quota(st, job, now)
                if count > 0:
                    quotas[job.id] = count
        return quotas

    def _preempt(self, work: Work, preemptions: dict, now: float) -> list:
        """Plan killing the tasks the engine preempted (reason ``preempted``, recorded as a
        disruption of their job); returns them. A victim already being killed keeps its own
        kill (reason and all) and is no disruption: the engine only freed its room early."""
        from titus.master.moves import Disruption

        st = self.state
        victims = []
        for preemptor, ids in preemptions.items():
            for vid in ids:
                task = st.tasks.get(vid)
                if task is None:
                    continue
                victims.append(task)
                if work.get(task, "state") == states.KILL_INITIATED:
                    continue  # already ending for its own reason: freed early, not a disruption
                job = st.jobs[task.job_id]
                self.lifecycle.kill(work, task, states.PREEMPTED)
                work.disruptions.append(Disruption(task.id, job.id, task.idx, states.PREEMPTED, now,
                                                   "scheduler"))
                work.log.append(("taskPreempted", job.id, {"taskId": task.id, "by": preemptor}))
        return victims

    def _explain_no_hosts(self) -> Work:
        """With no host at all, waiting tasks say so (the engine is not asked)."""
        work = Work()
        left = self.settings.max_batch
        tasks = self.state.tasks
        for bucket in self.state.queue.by_group.values():
            for task_id in bucket:
                task = tasks[task_id]
                if task.scheduling_failure == NO_HOSTS and not task.capacity_limited:
                    continue  # told already: each submission must not rewrite every note
                work.note(task, scheduling_failure=NO_HOSTS, capacity_limited=False)
                left -= 1
                if left <= 0:
                    return work
        return work


class MasterLoop(threading.Thread):
    """The background thread running scheduling rounds and reconciliation.

    It never ends on an error: a failing round or pass is logged and tried again. While the
    store refuses writes (:class:`StoreUnavailable`) the loop backs off, from
    ``schedule_interval_sec`` doubling to ``MAX_BACKOFF_SEC``, and resumes on its own once the
    store answers (the store logs when an outage begins and when it ends)."""

    def __init__(self, scheduling: Scheduling, reconcile: Callable[[], None],
                 wake: threading.Event, settings: MasterSettings, clock: Callable[[], float]):
        super().__init__(name="titus-master-loop", daemon=True)
        self.scheduling = scheduling
        self.reconcile = reconcile
        self.wake = wake
        self.settings = settings
        self.clock = clock
        self._halt = threading.Event()
        self.pause = 0.0  # seconds to wait before the next try (0: not backing off)
        self.store_failing = False

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for it."""
        self._halt.set()
        self.wake.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        try:
            self._run()
        except BaseException:  # not even this may end the thread unseen
            log.critical("the scheduling loop stopped", exc_info=True)
            raise

    def _run(self) -> None:
        s = self.settings
        last_reconcile = 0.0
        while not self._halt.is_set():
            if self.pause:  # backing off: a wake does not cut the pause short
                self._halt.wait(self.pause)
            else:
                self.wake.wait(s.schedule_interval_sec)
            self.wake.clear()
            if self._halt.is_set():
                break
            placed, failure = self._attempt(self.scheduling.run_round)
            now = self.clock()
            if now - last_reconcile >= s.reconcile_interval_sec:
                last_reconcile = now
                failure = self._attempt(self.reconcile)[1] or failure
            self._settle_pause(failure)
            if placed:
                self.wake.set()  # keep going while the queue drains

    def _attempt(self, step: Callable) -> tuple:
        """Run one round or pass: (its result, None), or (0, "store"/"error") if it failed."""
        try:
            return step(), None
        except StoreUnavailable:  # the store logged the cause
            return 0, "store"
        except Exception:  # keep the platform alive; the next round retries
            log.exception("scheduling loop error")
            return 0, "error"

    def _settle_pause(self, failure) -> None:
        """The pause before the next try: doubling while the store fails."""
        interval = self.settings.schedule_interval_sec
        if failure == "store":
            self.pause = min(MAX_BACKOFF_SEC, max(interval, self.pause * 2))
            if not self.store_failing:  # the store logs the outage's start and end
                log.info("scheduling backs off while the store is unavailable (retries at "
                         "least every %gs)", MAX_BACKOFF_SEC)
            self.store_failing = True
            return
        self.store_failing = False
        self.pause = interval if failure == "error" else 0.0
