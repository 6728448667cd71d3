"""Reconciliation: make what runs match what users asked for, and act on time.

Per job there are three states: desired (the descriptor: batch size, service capacity), running
(what agents report) and stored (the store, mirrored in memory). A pass closes the gaps:

- agents silent for longer than the heartbeat timeout are lost: their tasks end ``lost`` and
  are replaced (without consuming user retries), their hosts leave the engine;
- timers: a task too long in Launched or StartInitiated ends ``stuckInState``, too long in
  KillInitiated ends ``stuckInKillingState``; a batch task past ``runtimeLimitSec`` is killed
  with ``runtimeLimitExceeded``; a service task unhealthy for longer than
  ``unhealthy_replace_sec`` is killed with ``unhealthy`` (and replaced);
- tasks on drained hosts are moved at the pace their budgets allow (``Relocator.plan``);
- service jobs are brought to their desired count (``Lifecycle.resolve_service``);
- jobs whose work is over are finished and archived (``Lifecycle.settle``);
- the event log keeps its newest ``events_keep`` entries and submissions' Idempotency-Keys
  are kept ``idempotency_keep_sec`` (both trimmed every ``events_trim_interval_sec``), and agents' liveness is saved for a restarted master.

A pass the store refuses changes nothing and is tried again by the loop; silence during a store
outage does not count against agents.
"""
from __future__ import annotations

from typing import Callable

from titus import states
from titus.master.agents import Agents
from titus.master.config import MasterSettings
from titus.master.errors import StoreUnavailable
from titus.master.ledger import Ledger
from titus.master.lifecycle import Lifecycle
from titus.master.relocation import Relocator
from titus.master.state import ClusterState
from titus.master.work import Work
from titus.protocol import kill_order


class Reconciler:
    """One reconciliation pass at a time, on the scheduling loop's thread."""

    def __init__(self, state: ClusterState, ledger: Ledger, lifecycle: Lifecycle, agents: Agents,
                 settings: MasterSettings, clock: Callable[[], float],
                 relocator: Relocator | None = None):
        self.state = state
        self.relocator = relocator or Relocator(state, lifecycle, clock)
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.agents = agents
        self.settings = settings
        self.clock = clock
        self.events_trimmed_at = -1e18
        self.agents_saved_at = 0.0
        self.store_failed_at = -1e18  # when a pass last found the store unavailable

    def reconcile(self) -> None:
        """One pass: lost agents, timers, service counts, job completion, housekeeping.

        Raises :class:`StoreUnavailable` if the store refuses a write. What that write planned
        is not applied (the timers it acted on are armed again), and for one heartbeat timeout
        after that no agent is lost for silence: its reports could not be stored either."""
        with self.state.lock:
            now = self.clock()
            try:
                self._pass(now)
            except StoreUnavailable:
                self.store_failed_at = now
                raise

    def _pass(self, now: float) -> None:
        """The pass, under the state lock (held by :meth:`reconcile`)."""
        st, s = self.state, self.settings
        if now - self.store_failed_at > s.heartbeat_timeout_sec:
            self.agents.lose_silent(now)
        work = Work()
        due = self.run_timers(work, now)
        self.relocator.plan(work, now)
        for job in list(st.jobs.values()):
            if not job.batch:
                self.lifecycle.resolve_service(work, job)
        try:
            self.ledger.commit(work)
        except StoreUnavailable:
            for task_id, kind, stamp in due:  # still due: the next pass acts on them
                st.push_timer(now, task_id, kind, stamp)
            raise
        self.ledger.commit(self.lifecycle.settle(
            [j for j in st.jobs.values() if j.live_count == 0]))
        if now - self.events_trimmed_at >= s.events_trim_interval_sec:
            self.events_trimmed_at = now
            if s.events_keep > 0:
                self.ledger.trim_events(s.events_keep)
            self.ledger.forget_idempotency_keys(now - s.idempotency_keep_sec)
        if now - self.agents_saved_at >= max(1.0, s.heartbeat_timeout_sec / 4):
            self.agents_saved_at = now
            self.ledger.touch_agents({a.id: a.last_seen for a in st.registry.agents.values()
                                      if a.registered})

    def run_timers(self, work: Work, now: float) -> list[tuple[str, str, float]]:
        """Act on every timer that is due (stale timers, whose task moved on, are dropped);
        returns the timers taken off, (task id, kind, stamp), to arm again if ``work`` is not
        committed."""
        finish, kill = self.lifecycle.finish, self.lifecycle.kill
        due = self.state.pop_due(now)
        for task_id, kind, stamp in due:
            task = self.state.tasks.get(task_id)
            if task is None:
                continue
            state = work.get(task, "state")
            if kind in (states.LAUNCHED, states.START_INITIATED):
                if state == kind and task.state_time(kind) == stamp:
                    finish(work, task, states.STUCK_IN_STATE, f"too long in {kind}")
                    work.order(task.agent_id, kill_order(task.id, 0.0))
            elif kind == states.KILL_INITIATED:
                if state == kind and task.kill_initiated_at == stamp:
                    finish(work, task, states.STUCK_IN_KILLING_STATE, "too long in KillInitiated")
            elif kind == "runtime":
                if state == states.STARTED and task.started_at == stamp:
                    kill(work, task, states.RUNTIME_LIMIT_EXCEEDED)
            elif kind == "unhealthy":
                if state == states.STARTED and task.unhealthy_since == stamp:
                    kill(work, task, states.UNHEALTHY)
        return due
