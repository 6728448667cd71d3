"""The scheduling loop: waiting tasks -> engine (one batch call) -> store -> agent orders.

A round runs when there is new work (a new task, a freed host, a new host) and at least every
``schedule_interval_sec`` (100 ms by default) to let delayed retries in; the reconciler runs
every ``reconcile_interval_sec`` on the same thread. Assignments are written to the store
before any launch order is queued; if the write fails the engine gives the resources back.
A task that stays waiting keeps the engine's reason (``schedulingFailure`` in the API).
"""
from __future__ import annotations

import logging
import threading
import time

from titus.master import states
from titus.master.placement import place
from titus.master.reconciler import reconcile
from titus.master.work import Work

log = logging.getLogger("titus.master.loop")

# Re-run a round with no news at most this often (delayed retries come due by time).
IDLE_ROUND_SEC = 1.0
NO_HOSTS = "0/0 hosts: no host is registered"


def schedule_round(master, force: bool = False) -> int:
    """Place what can be placed now; returns how many tasks were launched."""
    with master.lock:
        now = master.now()
        if len(master.queue) == 0:
            return 0
        last = getattr(master, "_last_round", 0.0)
        if not (force or master.sched_dirty or now - last >= IDLE_ROUND_SEC):
            return 0
        if not master.engine_hosts:
            _explain_no_hosts(master)
            return 0
        master.sched_dirty = False
        master._last_round = now
        tasks, jobs = master.tasks, master.jobs
        demands: dict = {}

        def demand_of(task_id):
            job_id = tasks[task_id].job_id
            d = demands.get(job_id)
            if d is None:
                d = demands[job_id] = master.demand(jobs[job_id])
            return d

        order, held = master.queue.next_batch(
            groups=master.capacity, usage=master.group_usage, cluster=master.cluster_total(),
            demand_of=demand_of, eligible=lambda tid: tasks[tid].retry_at <= now,
            limit=master.settings.max_batch)
        for task_id, message in held.items():
            tasks[task_id].scheduling_failure = message
        if not order:
            return 0
        zones = master.zone_count()
        started = time.perf_counter()
        result = place(master, [tasks[tid] for tid in order], zones)
        elapsed = time.perf_counter() - started
        for observe in master.round_observers:
            observe(elapsed, len(order), len(result.assignments))
        work = Work()
        for task_id, host_id in result.assignments.items():
            task = tasks[task_id]
            agent_id = master.registry.agent_of_host(host_id) or ""
            ports = list(result.ports.get(task_id, ()))
            work.update(task, state=states.LAUNCHED, launched_at=now, host_id=host_id,
                        agent_id=agent_id, ports=",".join(str(p) for p in ports))
            work.order(agent_id, master.launch_order(task, host_id, ports))
        for task_id, message in result.failures.items():
            tasks[task_id].scheduling_failure = message
        try:
            master.commit(work)
        except Exception:
            log.exception("could not store a scheduling round; giving its resources back")
            for task_id in result.assignments:
                master.scheduler.release(task_id)
            master.sched_dirty = True
            return 0
        for task_id in result.assignments:
            task = tasks[task_id]
            task.in_engine = True
            master._usage(task, +1)
        if result.assignments:
            master.sched_dirty = True  # more may fit, and the queue may hold more
        return len(result.assignments)


def _explain_no_hosts(master) -> None:
    """With no host at all, waiting tasks say so (the engine is not asked)."""
    master.sched_dirty = False
    master._last_round = master.now()
    left = master.settings.max_batch
    for bucket in master.queue.by_group.values():
        for task_id in bucket:
            master.tasks[task_id].scheduling_failure = NO_HOSTS
            left -= 1
            if left <= 0:
                return


class MasterLoop(threading.Thread):
    """The background thread running scheduling rounds and reconciliation."""

    def __init__(self, master):
        super().__init__(name="titus-master-loop", daemon=True)
        self.master = master
        self._halt = threading.Event()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for it."""
        self._halt.set()
        self.master.wake.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        m = self.master
        last_reconcile = 0.0
        while not self._halt.is_set():
            m.wake.wait(m.settings.schedule_interval_sec)
            m.wake.clear()
            if self._halt.is_set():
                break
            try:
                placed = schedule_round(m)
                now = m.now()
                if now - last_reconcile >= m.settings.reconcile_interval_sec:
                    last_reconcile = now
                    reconcile(m)
                if placed:
                    m.wake.set()  # keep going while the queue drains
            except Exception:  # keep the platform alive; the next round retries
                log.exception("scheduling loop error")
                time.sleep(m.settings.schedule_interval_sec)
