"""Rebuilding the master from its store after a restart (including ``kill -9``).

Everything comes back through the ledger's own bookkeeping (``Ledger.replay``): capacity
groups, agents, jobs and their tasks, drained hosts and disruptions. Waiting tasks are
queued again. Tasks that were on hosts wait for their agent to register again: registration
holds them on their hosts in the engine, resends launches that may never have been delivered, and marks lost what the agent no longer
has. Agents get a full heartbeat timeout to come back before their tasks are declared lost.
Then one ordinary commit ends what can never be confirmed, brings service jobs to their
desired count, and settles jobs whose work ended just before the crash.
"""
from __future__ import annotations

import json
import logging
from typing import Callable

from titus import states
from titus.boundary import check_value
from titus.master import readback
from titus.master.capacity import CapacityGroup
from titus.master.idempotency import IdempotencyKey
from titus.master.ledger import Ledger
from titus.master.lifecycle import Lifecycle
from titus.master.model import CapacityGroupSpec
from titus.master.moves import Disruption, Drain
from titus.master.records import JobRecord, TaskRecord
from titus.master.registry import AgentRecord
from titus.master.state import ClusterState
from titus.master.store import Store
from titus.master.work import Work

log = logging.getLogger("titus.master.recovery")


def _group(row: dict) -> CapacityGroup:
    data = check_value(json.loads(row["spec"]), what="stored capacity group")
    return CapacityGroup.from_spec(CapacityGroupSpec.model_validate(data))


def _agent(row: dict) -> AgentRecord:
    check_value(row, what="stored agent")
    return AgentRecord.from_row(row)


def recover(store: Store, state: ClusterState, ledger: Ledger, lifecycle: Lifecycle,
            clock: Callable[[], float], follow_up: bool = True) -> dict:
    """Load the store into an empty ``state``; returns counts of what was restored (and
    ``skipped``: rows that cannot be read back, left in the store). Everything is read from
    one consistent snapshot of the store (:meth:`Store.reading`).

    ``follow_up`` False (a standby's read-only copy) stops after loading: nothing is written,
    nothing ended or started."""
    with store.reading():
        restored, seqs = _load(store, state, clock())
    with state.lock:
        state.job_seq, state.task_seq = seqs
        ledger.replay(restored)
        if follow_up:
            _follow_up(state, ledger, lifecycle)
        return {"jobs": len(state.jobs), "tasks": len(state.tasks),
                "agents": len(state.registry.agents), "queued": len(state.queue),
                "skipped": len(state.skipped.rows)}


def _load(store: Store, state: ClusterState, now: float) -> tuple[Work, tuple[int, int]]:
    """What the store holds, as one unit of work to replay, and the highest sequence
    numbers used."""
    restored = Work()
    skipped = state.skipped
    for group in readback.each(store.load_capacity_groups(), _group, "capacity group", "name",
                           skipped):
        restored.capacity_puts.append(group)
    owner: dict[str, AgentRecord] = {}
    agent_rows = sorted(store.load_agents(), key=lambda r: r["registered_at"])
    for agent in readback.each(agent_rows, _agent, "agent", "id", skipped):
        agent.last_seen = now  # a full timeout to re-register
        for host_id in agent.hosts:  # a host listed twice (older stores) is the latest's
            previous = owner.get(host_id)
            if previous is not None:
                previous.hosts.pop(host_id, None)
            owner[host_id] = agent
        restored.agents_put.append(agent)
    jobs: dict[str, JobRecord] = {}
    for job in readback.each(store.load_jobs(), readback.job, "job", "id", skipped):
        jobs[job.id] = job
    restored.new_jobs.extend(jobs.values())
    keep = state.settings.idempotency_keep_sec
    restored.keys.extend(readback.each(store.load_idempotency_keys(now - keep),
                                   IdempotencyKey.from_row, "idempotency key", "key", skipped))
    latest: dict[tuple[str, int], TaskRecord] = {}
    for task in readback.each(store.load_tasks(), readback.task, "task", "id", skipped):
        if task.job_id not in jobs:
            log.warning("task %s of unknown job %s ignored", task.id, task.job_id)
            continue
        restored.new_tasks.append(task)
        latest[(task.job_id, task.idx)] = task
    restored.drain_puts.extend(readback.each(store.load_drains(), Drain.from_row,
                                             "drained host", "host_id", skipped))
    restored.disruptions.extend(d for d in readback.each(
        store.load_disruptions(), Disruption.from_row, "disruption", "task_id", skipped)
        if d.job_id in jobs)
    for (job_id, idx), task in latest.items():
        job = jobs[job_id]
        if job.batch and task.state == states.FINISHED:
            restored.done_indices.append((job, idx, task.reason_code != states.NORMAL))
    return restored, store.max_seq()


def _follow_up(state: ClusterState, ledger: Ledger, lifecycle: Lifecycle) -> None:
    """One ordinary commit after loading: what can never be confirmed ends, service jobs are
    brought to their count, jobs whose work ended just before the crash settle."""
    # tasks on agents the store does not know can never be confirmed: lost
    work = Work()
    for task in list(state.tasks.values()):
        if task.state in states.ON_HOST and state.registry.get(task.agent_id) is None:
            lifecycle.finish(work, task, states.LOST, "its agent is unknown after a restart")
    for job in list(state.jobs.values()):
        if not job.batch:
            lifecycle.resolve_service(work, job)
    ledger.commit(work)
    ledger.commit(lifecycle.settle(list(state.jobs.values())))
    state.sched_dirty = True
