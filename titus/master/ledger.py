"""The one commit path: every change of jobs, tasks, agents, hosts and capacity groups.

``commit(work)`` does four things, in this order, under the state lock:

1. **validate** the change against the state machines (``titus.states``): a task or job only
   moves forward, a new task starts Accepted, an archived job has finished; hosts that join
   are ones the engine takes. A refused change raises :class:`~titus.states.IllegalTransition`
   (or the engine's ValueError naming the host) and nothing is written or applied;
2. **write** it to the store in one transaction (write-ahead: a crash after this point
   replays it from the store; a failed write changes nothing);
3. **apply** it to memory (:class:`~titus.master.state.ClusterState`) and to the engine
   (hosts in and out, resources released and held);
4. **emit**: agent orders are queued, observers hear of every changed job and task.

Then jobs the change touched are settled (a batch job whose tasks are all done, a killed job
with nothing left alive, finishes and is archived) through the same four steps.

``replay(work)`` is step 3 alone, for recovery: what the store holds is applied to an empty
memory through the same bookkeeping. Every other store write (agent liveness, the event log's
retention, the autoscaler's tables) goes through :meth:`Ledger.transaction`, so there is one
door to fence.
"""
from __future__ import annotations

import itertools
import json
import logging
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from titus import states
from titus.master.engine_adapter import EngineAdapter
from titus.master.errors import StoreUnavailable
from titus.master.events import EventBus
from titus.master.records import TaskRecord
from titus.master.state import ClusterState
from titus.master.store import Store, Txn
from titus.master.views import job_view, task_view
from titus.master.work import Work

log = logging.getLogger("titus.master.ledger")


class Ledger:
    """Validates, stores, applies and announces units of :class:`Work`."""

    def __init__(self, state: ClusterState, store: Store, engine: EngineAdapter,
                 events: EventBus, clock: Callable[[], float]):
        self.state = state
        self.store = store
        self.engine = engine
        self.events = events
        self.clock = clock
        # plans the follow-up of touched jobs (set by the composition root: lifecycle.settle)
        self.settle: Optional[Callable[[list], Work]] = None

    # ------------------------------------------------------------------ the door
    @contextmanager
    def transaction(self) -> Iterator[Txn]:
        """One store transaction; every write of the master goes through here.

        Raises :class:`~titus.master.errors.StoreUnavailable` if the store cannot take it
        (:meth:`Store.transaction`); nothing of it is kept then."""
        with self.store.transaction() as tx:
            yield tx

    def check_writable(self) -> None:
        """Write to the store and keep it (the readiness probe): StoreUnavailable if it cannot
        take writes now."""
        with self.transaction() as tx:
            tx.probe(self.clock())

    def commit(self, work: Work) -> list[TaskRecord]:
        """Validate, store, apply and announce ``work``, then settle the jobs it touched.

        Returns the tasks the engine could not hold again (``work.holds`` that no longer fit
        their host), for the caller to end. Raises ``IllegalTransition``, or
        :class:`~titus.master.errors.StoreUnavailable` when the write fails, with nothing
        changed: the write comes before memory, the engine, timers, orders and observers.
        Sequence numbers the caller drew for new jobs and tasks stay drawn (never reused: a
        write whose outcome is unknown may have stored them).
        """
        with self.state.lock:
            failed = self._commit(work)
            if work.touched_jobs and self.settle is not None:
                try:
                    self._commit(self.settle(list(work.touched_jobs.values())))
                except StoreUnavailable:  # logged by the store; the reconciler settles them
                    log.warning("could not settle jobs %s: the store is unavailable",
                                sorted(work.touched_jobs))
                except Exception:  # ``work`` stands; the jobs settle at their next change
                    log.exception("could not settle jobs %s", sorted(work.touched_jobs))
            return failed

    def replay(self, work: Work) -> None:
        """Apply what the store already holds (recovery): no write, no announcement."""
        with self.state.lock:
            self._apply(work, announce=False)

    def touch_agents(self, last_seen: dict[str, float]) -> None:
        """Record when agents were last heard from (a restarted master gives them that long)."""
        with self.transaction() as tx:
            tx.touch_agents(last_seen)

    def meta(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """A value of the store's ``meta`` table; with ``default``, stored first if absent
        (the first master to ask makes it; every later one reads the same)."""
        if default is None:  # a read: a standby may do it too
            return self.store.meta_get(key)
        with self.transaction() as tx:
            return tx.meta_setdefault(key, default)

    def trim_events(self, keep: int) -> int:
        """Keep the event log's newest ``keep`` entries; returns how many went."""
        with self.transaction() as tx:
            return tx.trim_events(keep)

    def forget_idempotency_keys(self, before: float) -> int:
        """Forget submissions' Idempotency-Keys created before ``before``; returns how many."""
        with self.transaction() as tx:
            gone = tx.forget_idempotency_keys(before)
        keys = self.state.idempotency
        for name in [k for k, v in keys.items() if v.created_at < before]:
            del keys[name]
        return gone

    # ------------------------------------------------------------------ steps
    def _commit(self, work: Work) -> list[TaskRecord]:
        if work.empty():
            return []
        self._validate(work)
        if work.stored():
            self._write(work)
        return self._apply(work, announce=True)

    def _validate(self, work: Work) -> None:
        for task in work.new_tasks:
            if task.state != states.ACCEPTED or task.id in self.state.tasks:
                raise states.IllegalTransition(f"task {task.id}: a new task starts Accepted")
        for task, vals in work.task_updates.items():
            target = vals.get("state", task.state)
            if target != task.state:
                states.check_task_move(task.id, task.state, target)
        for job, vals in work.job_updates.items():
            target = vals.get("state", job.state)
            if target != job.state:
                states.check_job_move(job.id, job.state, target)
        for job in work.archives:
            if work.job_get(job, "state") != states.FINISHED:
                raise states.IllegalTransition(f"job {job.id}: only a finished job is archived")
        if work.added_hosts:  # the engine must take them, or the registration is refused whole
            self.engine.check_hosts(work.added_hosts)

    def _write(self, work: Work) -> None:
        with self.transaction() as tx:
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
            for agent in work.agents_put:
                tx.upsert_agent(agent.row())
            for agent_id in work.agent_deletes:
                tx.delete_agent(agent_id)
            for group in work.capacity_puts:
                tx.upsert_capacity_group(group.name, group.tier, group.wire())
            for name in work.capacity_deletes:
                tx.delete_capacity_group(name)
            for key in work.keys:
                tx.insert_idempotency_key(key.row())
            tx.insert_disruptions([d.row() for d in work.disruptions])
            for drain in work.drain_puts:
                tx.put_drain(drain.row())
            tx.delete_drains(list(work.drain_deletes))
            now = self.clock()
            for kind, entity, data in work.log:
                tx.event(now, kind, entity, data)

    def _apply(self, work: Work, announce: bool) -> list[TaskRecord]:
        st = self.state
        for job in work.new_jobs:
            st.jobs[job.id] = job
        for task in work.new_tasks:
            self._add_task(task)
        for task, vals in work.task_updates.items():
            self._update_task(task, vals)
        for task, vals in work.notes.items():
            for name, value in vals.items():
                setattr(task, name, value)
        for task in work.placed:
            task.in_engine = True
            self._usage(task, +1)
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
        for host_id in work.removed_hosts:
            for tid in self.engine.remove_host(host_id):
                t = st.tasks.get(tid)
                if t is not None and t.in_engine:
                    t.in_engine = False
                    self._usage(t, -1)
        for group in work.capacity_puts:
            st.capacity.put(group)
        for name in work.capacity_deletes:
            st.capacity.remove(name)
        for agent in work.agents_put:
            st.registry.put(agent)
        for key in work.keys:
            st.idempotency[(key.scope, key.key)] = key
        for d in work.disruptions:
            st.disruptions.setdefault(d.job_id, []).append(d)
        for drain in work.drain_puts:
            st.drains[drain.host_id] = drain
        for host_id in work.drain_deletes:
            st.drains.pop(host_id, None)
        self.engine.add_hosts(work.added_hosts)
        self.engine.hold_off(work.hold_off + [d.host_id for d in work.drain_puts])
        # a drained host stays off whoever else lets it in (the autoscaler's lifecycle holds)
        gone = set(work.unhold)
        self.engine.let_in([h for h in work.release + work.drain_deletes
                            if h not in st.drains and h not in gone])
        self.engine.forget_holds(work.unhold)
        failed = self._hold(work.holds)
        for job in work.archives:
            st.jobs.pop(job.id, None)
            st.disruptions.pop(job.id, None)
            for tid in job.tasks:
                st.tasks.pop(tid, None)
                st.state_counts[states.FINISHED] -= 1
        for due, task_id, kind, stamp in work.timers:
            st.push_timer(due, task_id, kind, stamp)
        for agent_id, order in work.orders:
            st.registry.send(agent_id, order)
        for agent_id in work.agent_deletes:
            st.registry.remove(agent_id)
            st.agent_tasks.pop(agent_id, None)
        if work.added_hosts or work.release or work.capacity_puts or work.drain_deletes:
            st.sched_dirty = True
            st.wake.set()
        if announce and self.events.active:
            for task in itertools.chain(work.new_tasks, work.task_updates):
                job = st.jobs.get(task.job_id)
                self.events.publish("taskUpdate", task.job_id,
                                    lambda t=task, j=job: task_view(t, j))
            pattern = st.settings.secret_env_pattern
            for job in itertools.chain(work.new_jobs, work.job_updates):
                self.events.publish("jobUpdate", job.id, lambda j=job: job_view(j, pattern))
        if work.new_tasks:
            st.wake.set()
        return failed

    # ------------------------------------------------------------------ bookkeeping
    def _add_task(self, task: TaskRecord) -> None:
        st = self.state
        job = st.jobs[task.job_id]
        job.tasks[task.id] = task
        job.next_index = max(job.next_index, task.idx + 1)
        st.tasks[task.id] = task
        st.state_counts[task.state] += 1
        if task.state != states.FINISHED:
            job.live_count += 1
        if task.state == states.ACCEPTED:
            st.queue.add(job.group, task.id)
            st.sched_dirty = True
            if task.retry_at > 0:
                st.delayed.add(task.id)
        elif task.state in states.ON_HOST and task.agent_id:
            st.agent_tasks.setdefault(task.agent_id, set()).add(task.id)
            st.arm_timers(task, job)

    def _update_task(self, task: TaskRecord, vals: dict) -> None:
        st = self.state
        old_state, old_agent = task.state, task.agent_id
        for name, value in vals.items():
            setattr(task, name, value)
        new_state = task.state
        if old_agent and task.agent_id != old_agent:
            st.agent_tasks.get(old_agent, set()).discard(task.id)  # adopted by another agent
        if new_state == old_state:
            if "agent_id" in vals and task.agent_id and new_state in states.ON_HOST:
                st.agent_tasks.setdefault(task.agent_id, set()).add(task.id)  # re-adopted
            return
        st.state_counts[old_state] -= 1
        if old_state == states.ACCEPTED:
            st.delayed.discard(task.id)
        st.state_counts[new_state] += 1
        job = st.jobs.get(task.job_id)
        if old_state == states.ACCEPTED and job is not None:
            st.queue.discard(job.group, task.id)
            task.scheduling_failure = ""
            task.capacity_limited = False
        if new_state in states.ON_HOST and task.agent_id:
            st.agent_tasks.setdefault(task.agent_id, set()).add(task.id)
        if new_state == states.FINISHED:
            if job is not None:
                job.live_count -= 1
            if task.in_engine:
                self.engine.release(task.id)
                task.in_engine = False
                self._usage(task, -1)
                st.sched_dirty = True
            held = st.agent_tasks.get(task.agent_id)
            if held is not None:
                held.discard(task.id)
            return
        st.arm_timers(task, job)

    def _hold(self, tasks: list[TaskRecord]) -> list[TaskRecord]:
        failed = []
        for task in tasks:
            if task.state == states.FINISHED or task.in_engine:
                continue
            try:
                self.engine.hold(task)
            except (ValueError, KeyError) as exc:
                log.warning("cannot restore task %s on %s: %s", task.id, task.host_id, exc)
                failed.append(task)
                continue
            task.in_engine = True
            self._usage(task, +1)
        return failed

    def _usage(self, task: TaskRecord, sign: int) -> None:
        job = self.state.jobs.get(task.job_id)
        if job is None:
            return
        used = self.state.group_usage.setdefault(job.group, {})
        for r, v in self.state.demand(job).items():
            used[r] = used.get(r, 0.0) + sign * v

