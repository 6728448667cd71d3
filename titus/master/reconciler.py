"""Reconciliation: make what runs match what users asked for, and act on time.

Per job there are three states: desired (the descriptor: batch size, service capacity), running
(what agents report) and stored (the store, mirrored in memory). The resolver closes the gaps:

- a service job below its desired count gets new tasks; above it, surplus tasks are killed
  with ``scaledDown`` (tasks already KillInitiated count as gone first, then waiting Accepted
  tasks go, then the youngest running ones);
- agents silent for longer than the heartbeat timeout are lost: their tasks end ``lost`` and
  are replaced (without consuming user retries), their hosts leave the engine;
- timers: a task too long in Launched or StartInitiated ends ``stuckInState``, too long in
  KillInitiated ends ``stuckInKillingState``; a batch task past ``runtimeLimitSec`` is killed
  with ``runtimeLimitExceeded``; a service task unhealthy for longer than
  ``unhealthy_replace_sec`` is killed with ``unhealthy`` (and replaced);
- jobs whose work is over are finished and archived (``Master.settle_jobs``);
- the event log keeps its newest ``events_keep`` entries (trimmed every
  ``events_trim_interval_sec``).
"""
from __future__ import annotations

import heapq

from titus.master.orders import kill_order
from titus.master import states
from titus.master.work import Work


def resolve_service(master, work: Work, job) -> None:
    """Plan new or surplus-killing tasks so a service job holds its desired count."""
    if job.batch or work.job_get(job, "state") != states.ACCEPTED:
        return
    desired = work.job_get(job, "descriptor").service.capacity.desired
    active = [t for t in job.tasks.values()
              if work.get(t, "state") not in (states.FINISHED, states.KILL_INITIATED)]
    planned_new = [t for t in work.new_tasks if t.job_id == job.id]
    count = len(active) + len(planned_new)
    now = master.now()
    if count < desired:
        next_index = max([job.next_index] + [t.idx + 1 for t in planned_new])
        for i in range(desired - count):
            work.new_tasks.append(master._new_task(job, next_index + i, now))
    elif count > desired:
        surplus = count - desired
        waiting = [t for t in active if work.get(t, "state") == states.ACCEPTED]
        placed = [t for t in active if work.get(t, "state") != states.ACCEPTED]
        waiting.sort(key=lambda t: t.seq, reverse=True)
        placed.sort(key=lambda t: (t.launched_at or 0.0, t.seq), reverse=True)
        for task in (waiting + placed)[:surplus]:
            master.plan_kill(work, task, states.SCALED_DOWN)


def run_timers(master, work: Work, now: float) -> None:
    """Act on every timer that is due (stale timers, whose task moved on, are dropped)."""
    timers = master.timers
    while timers and timers[0][0] <= now:
        _, _, task_id, kind, stamp = heapq.heappop(timers)
        task = master.tasks.get(task_id)
        if task is None:
            continue
        state = work.get(task, "state")
        if kind in (states.LAUNCHED, states.START_INITIATED):
            if state == kind and task.state_time(kind) == stamp:
                master.plan_finish(work, task, states.STUCK_IN_STATE, f"too long in {kind}")
                work.order(task.agent_id, kill_order(task.id, 0.0))
        elif kind == states.KILL_INITIATED:
            if state == kind and task.kill_initiated_at == stamp:
                master.plan_finish(work, task, states.STUCK_IN_KILLING_STATE,
                                   "too long in KillInitiated")
        elif kind == "runtime":
            if state == states.STARTED and task.started_at == stamp:
                master.plan_kill(work, task, states.RUNTIME_LIMIT_EXCEEDED)
        elif kind == "unhealthy":
            if state == states.STARTED and task.unhealthy_since == stamp:
                master.plan_kill(work, task, states.UNHEALTHY)


def reconcile(master) -> None:
    """One reconciliation pass: lost agents, timers, service counts, job completion."""
    with master.lock:
        now = master.now()
        timeout = master.settings.heartbeat_timeout_sec
        for agent in list(master.registry.agents.values()):
            if now - agent.last_seen > timeout:
                master.lose_agent(agent, f"no heartbeat for more than {timeout:g}s")
        work = Work()
        run_timers(master, work, now)
        for job in list(master.jobs.values()):
            if not job.batch:
                resolve_service(master, work, job)
        master._after(work)
        keep = master.settings.events_keep
        if keep > 0 and now - getattr(master, "_events_trimmed_at", -1e18) >= master.settings.events_trim_interval_sec:
            master._events_trimmed_at = now
            master.store.trim_events(keep)
        if now - getattr(master, "_agents_saved_at", 0.0) >= max(1.0, timeout / 4):
            master._agents_saved_at = now
            with master.store.transaction() as tx:
                tx.touch_agents({a.id: a.last_seen for a in master.registry.agents.values()
                                 if a.registered})
