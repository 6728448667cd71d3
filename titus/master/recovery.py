"""Rebuilding the master from its store after a restart (including ``kill -9``).

Everything comes back: capacity groups, jobs and their tasks, agents. Waiting tasks are queued
again. Tasks that were on hosts wait for their agent to register again: registration puts them
back on their hosts in the engine (``add_running``), resends launches that may never have been
delivered, and marks lost what the agent no longer has. Agents get a full heartbeat timeout to
come back before their tasks are declared lost. Jobs whose work ended just before the crash are
finished and archived now.
"""
from __future__ import annotations

import json
import logging

from titus.master import states
from titus.master.agents import AgentRecord
from titus.master.capacity import CapacityGroup
from titus.master.model import CapacityGroupSpec
from titus.master.reconciler import resolve_service
from titus.master.records import JobRecord, TaskRecord
from titus.master.work import Work

log = logging.getLogger("titus.master.recovery")


def recover(master) -> dict:
    """Load the store into ``master``; returns counts of what was restored."""
    store = master.store
    with master.lock:
        now = master.now()
        for row in store.load_capacity_groups():
            spec = CapacityGroupSpec.model_validate(json.loads(row["spec"]))
            master.capacity.put(CapacityGroup.from_spec(spec))
        for row in store.load_agents():
            agent = AgentRecord.from_row(row)
            agent.last_seen = now  # a full timeout to re-register
            agent.registered = False
            master.registry.put(agent)
        master._job_seq, master._task_seq = store.max_seq()
        for row in store.load_jobs():
            job = JobRecord.from_row(row)
            master.jobs[job.id] = job
        latest: dict[tuple[str, int], TaskRecord] = {}
        for row in store.load_tasks():
            task = TaskRecord.from_row(row)
            job = master.jobs.get(task.job_id)
            if job is None:
                log.warning("task %s of unknown job %s ignored", task.id, task.job_id)
                continue
            job.tasks[task.id] = task
            job.next_index = max(job.next_index, task.idx + 1)
            master.tasks[task.id] = task
            master.state_counts[task.state] += 1
            if task.state != states.FINISHED:
                job.live_count += 1
            latest[(job.id, task.idx)] = task  # rows come in creation order
            if task.state == states.ACCEPTED:
                master.queue.add(job.group, task.id)
            elif task.state in states.ON_HOST and task.agent_id:
                master.agent_tasks.setdefault(task.agent_id, set()).add(task.id)
                master._arm_timers(task, job)
        for (job_id, idx), task in latest.items():
            job = master.jobs[job_id]
            if job.batch and task.state == states.FINISHED:
                job.done_indices.add(idx)
                if task.reason_code != states.NORMAL:
                    job.failed_indices.add(idx)
        # tasks on agents the store does not know can never be confirmed: lost
        work = Work()
        for task in list(master.tasks.values()):
            if task.state in states.ON_HOST and master.registry.get(task.agent_id) is None:
                master.plan_finish(work, task, states.LOST, "its agent is unknown after a restart")
        for job in list(master.jobs.values()):
            if not job.batch:
                resolve_service(master, work, job)
        master._after(work)
        master.settle_jobs(list(master.jobs.values()))
        master.sched_dirty = True
        return {"jobs": len(master.jobs), "tasks": len(master.tasks),
                "agents": len(master.registry.agents), "queued": len(master.queue)}
