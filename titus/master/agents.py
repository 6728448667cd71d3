"""The agent registry: who is connected, which hosts each stands for, and its order queue.

Orders (launch, kill, remove) wait in a per-agent queue until the agent's next heartbeat takes
them. A heartbeat may wait for orders (``wait_ms``, a long poll): the waiting request sleeps on
an ``asyncio.Event`` that the queue sets, from any thread, when an order arrives.

Registration reconciliation: an agent (re)registering lists every task its runtime holds.
Tasks the master does not know (or has finished) get a KillOrder (running) or a RemoveOrder
(ended); tasks the master places there but the agent does not report are lost (a Launched one
is sent again instead: its launch may never have arrived); the rest are held again on their
hosts in the engine. Heartbeats carry status changes (applied through the task state machine,
illegal moves dropped) and the ids still running (unknown ones are killed). An agent silent
past the heartbeat timeout, or leaving, loses its tasks (they are replaced).

The functions below work on a :class:`titus.master.master.Master` under its lock, through its
write-ahead commit path.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Optional

from titus.agent.protocol import HostInfo, RegisterRequest, RegisterResponse, TaskStatusMsg
from titus.master import states
from titus.master.engine import engine_host
from titus.master.errors import NotFound
from titus.master.orders import kill_order, remove_order
from titus.master.records import TaskRecord, state_time_field
from titus.master.work import Work

log = logging.getLogger("titus.master.agents")


@dataclass(eq=False)
class AgentRecord:
    """One agent process."""

    id: str
    runtime: str = ""
    address: str = ""
    hosts: dict = field(default_factory=dict)  # host id -> HostInfo
    registered_at: float = 0.0
    last_seen: float = 0.0
    # True once the agent registered with this master process (after a restart it must again)
    registered: bool = False
    orders: deque = field(default_factory=deque)
    waiters: list = field(default_factory=list)  # (loop, asyncio.Event)
    kill_sent: dict = field(default_factory=dict)  # task id -> when a kill/remove was last sent

    def row(self) -> dict:
        """The store row."""
        import json

        return {"id": self.id, "runtime": self.runtime, "address": self.address,
                "hosts": json.dumps([h.model_dump() for h in self.hosts.values()]),
                "registered_at": self.registered_at, "last_seen": self.last_seen}

    @classmethod
    def from_row(cls, row: dict) -> "AgentRecord":
        """A record from a store row (not registered with this master yet)."""
        import json

        hosts = [HostInfo.model_validate(h) for h in json.loads(row["hosts"])]
        return cls(id=row["id"], runtime=row["runtime"], address=row["address"],
                   hosts={h.host_id: h for h in hosts}, registered_at=row["registered_at"],
                   last_seen=row["last_seen"])


class AgentRegistry:
    """Agents by id, hosts to agents, and order delivery."""

    def __init__(self):
        self.agents: dict[str, AgentRecord] = {}
        self.host_agent: dict[str, str] = {}
        self._lock = threading.Lock()  # guards orders/waiters (touched from the event loop)

    def get(self, agent_id: str) -> Optional[AgentRecord]:
        """The agent, or None."""
        return self.agents.get(agent_id)

    def put(self, agent: AgentRecord) -> None:
        """Add or replace an agent and index its hosts."""
        old = self.agents.get(agent.id)
        if old is not None:
            for host_id in old.hosts:
                if self.host_agent.get(host_id) == agent.id:
                    del self.host_agent[host_id]
            agent.orders = old.orders
            agent.waiters = old.waiters
        self.agents[agent.id] = agent
        for host_id in agent.hosts:
            self.host_agent[host_id] = agent.id

    def remove(self, agent_id: str) -> Optional[AgentRecord]:
        """Forget an agent and its hosts."""
        agent = self.agents.pop(agent_id, None)
        if agent is not None:
            for host_id in agent.hosts:
                if self.host_agent.get(host_id) == agent_id:
                    del self.host_agent[host_id]
            self._wake(agent)
        return agent

    def agent_of_host(self, host_id: str) -> Optional[str]:
        """The id of the agent standing for ``host_id``."""
        return self.host_agent.get(host_id)

    def hosts(self) -> list[tuple[str, HostInfo]]:
        """Every (agent id, host) pair."""
        return [(a.id, h) for a in self.agents.values() for h in a.hosts.values()]

    # orders -------------------------------------------------------------------------------
    def send(self, agent_id: str, order) -> bool:
        """Queue an order for an agent; False if the agent is unknown."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return False
        with self._lock:
            agent.orders.append(order)
        self._wake(agent)
        return True

    def take(self, agent_id: str, limit: int = 100_000) -> list:
        """Remove and return the agent's queued orders (up to ``limit``)."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return []
        with self._lock:
            out = []
            while agent.orders and len(out) < limit:
                out.append(agent.orders.popleft())
            return out

    def has_orders(self, agent_id: str) -> bool:
        """Whether orders wait for the agent."""
        agent = self.agents.get(agent_id)
        return bool(agent and agent.orders)

    async def wait_orders(self, agent_id: str, timeout: float) -> None:
        """Sleep until an order for the agent is queued or ``timeout`` seconds pass."""
        agent = self.agents.get(agent_id)
        if agent is None or timeout <= 0:
            return
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            if agent.orders:
                return
            agent.waiters.append(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                if entry in agent.waiters:
                    agent.waiters.remove(entry)

    def _wake(self, agent: AgentRecord) -> None:
        with self._lock:
            waiters = list(agent.waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop has closed
                pass


def register(master, req: RegisterRequest) -> RegisterResponse:
    """(Re)register an agent and reconcile what it holds with what the master believes."""
    with master.lock:
        now = master.now()
        old = master.registry.get(req.agent_id)
        agent = AgentRecord(id=req.agent_id, runtime=req.runtime, address=req.address,
                            hosts={h.host_id: h for h in req.hosts}, registered_at=now,
                            last_seen=now, registered=True)
        work = Work()
        work.agent_rows.append(agent.row())
        work.log.append(("agentRegistered", agent.id, {"hosts": len(agent.hosts)}))
        reported = {s.task_id: s for s in req.tasks}
        # hosts this agent had before but no longer announces: their tasks are lost
        gone = set(old.hosts) - set(agent.hosts) if old is not None else set()
        # every task the master places on this agent (or on one of its hosts)
        mine = [master.tasks[tid] for tid in master.agent_tasks.get(agent.id, ())
                if tid in master.tasks]
        mine += [t for t in master.tasks.values() if t.state in states.ON_HOST
                 and t.host_id in agent.hosts and t.agent_id != agent.id]
        readopt: list[TaskRecord] = []
        for task in mine:
            if task.state not in states.ON_HOST:
                continue
            status = reported.get(task.id)
            if task.host_id in gone or task.host_id not in agent.hosts:
                master.plan_finish(work, task, states.LOST, "host left the agent")
            elif status is not None:
                if status.state == states.FINISHED:
                    plan_status(master, work, agent, task, status)
                else:
                    readopt.append(task)
                    plan_status(master, work, agent, task, status)
                    if task.state == states.KILL_INITIATED:
                        job = master.jobs[task.job_id]
                        work.order(agent.id, kill_order(task.id, job.kill_grace_sec))
            elif task.state == states.LAUNCHED:
                readopt.append(task)  # its launch order may never have arrived: resend
                work.order(agent.id, master.launch_order(task, task.host_id, task.port_list))
            elif task.state == states.KILL_INITIATED:
                master.plan_finish(work, task, task.kill_reason or states.KILLED,
                                   "gone from its agent while being killed")
            else:
                master.plan_finish(work, task, states.LOST, "not reported by its agent")
        for tid, status in reported.items():
            task = master.tasks.get(tid)
            if task is None or task.state == states.FINISHED or task.host_id not in agent.hosts:
                if status.state == states.FINISHED:
                    work.order(agent.id, remove_order(tid))
                else:
                    work.order(agent.id, kill_order(tid, 0.0))
        for host_id in set(agent.hosts) | gone:
            work.removed_hosts.append(host_id)
        master.registry.put(agent)
        master.commit(work)
        # the engine follows: the agent's hosts (re)added, surviving tasks held again
        keep = set(master.settings.engine_attributes)
        master.scheduler.add_hosts([engine_host(info, keep) for info in agent.hosts.values()])
        for host_id in sorted(set(agent.hosts) & master.held_off):
            master.scheduler.disable_host(host_id)
        master.engine_hosts.update(agent.hosts)
        master.hosts_version += 1
        lost = Work()
        for task in readopt:
            if task.state == states.FINISHED or task.in_engine:
                continue
            if task.agent_id != agent.id:
                lost.update(task, agent_id=agent.id)
            try:
                master.scheduler.add_running(master.engine_task(task), task.host_id,
                                             ports=task.port_list or None)
                task.in_engine = True
                master._usage(task, +1)
            except (ValueError, KeyError) as exc:
                log.warning("cannot restore task %s on %s: %s", task.id, task.host_id, exc)
                master.plan_finish(lost, task, states.LOST, "could not be restored on its host")
                lost.order(agent.id, kill_order(task.id, 0.0))
        master._after(lost)
        if work.touched_jobs:
            master.settle_jobs(list(work.touched_jobs.values()))
        master.sched_dirty = True
        master.wake.set()
        return RegisterResponse(agent_id=agent.id,
                                heartbeat_interval_sec=master.settings.heartbeat_interval_sec,
                                heartbeat_timeout_sec=master.settings.heartbeat_timeout_sec)


def plan_status(master, work: Work, agent: AgentRecord, task: TaskRecord,
                status: TaskStatusMsg) -> None:
    """Plan the change an agent reported for one task (illegal moves are dropped)."""
    current = work.get(task, "state")
    now = master.now()
    if status.health is not None and status.health != task.health:
        task.health = status.health  # not stored: re-reported by the agent
        job = master.jobs.get(task.job_id)
        if status.health == "unhealthy" and job is not None and not job.batch:
            if task.unhealthy_since is None:
                task.unhealthy_since = now
                master._timer(now + master.settings.unhealthy_replace_sec, task.id, "unhealthy",
                              now)
        elif status.health != "unhealthy":
            task.unhealthy_since = None
    if status.state == current:
        return
    if not states.can_move_task(current, status.state):
        if current != states.FINISHED:
            log.warning("refused transition of %s: %s -> %s", task.id, current, status.state)
        return
    if status.state == states.FINISHED:
        kill_reason = work.get(task, "kill_reason")
        if current == states.KILL_INITIATED and kill_reason:
            reason = kill_reason
        else:
            reason = states.finish_reason(status.reason, status.exit_code)
        master.plan_finish(work, task, reason, status.message, status.exit_code)
        return
    if current == states.KILL_INITIATED:
        return
    work.update(task, state=status.state, **{state_time_field(status.state): now})


def heartbeat(master, agent_id: str, statuses: list[TaskStatusMsg], running: list[str]) -> bool:
    """Apply an agent's heartbeat; False if the agent must register again."""
    with master.lock:
        agent = master.registry.get(agent_id)
        if agent is None or not agent.registered:
            return False
        now = master.now()
        agent.last_seen = now
        work = Work()
        for status in statuses:
            task = master.tasks.get(status.task_id)
            if task is None or task.host_id not in agent.hosts:
                if task is None and status.state == states.FINISHED:
                    work.order(agent_id, remove_order(status.task_id))
                continue
            plan_status(master, work, agent, task, status)
        resend = master.settings.kill_resend_sec
        for tid in running:
            task = master.tasks.get(tid)
            state = work.get(task, "state") if task is not None else None
            if state in (None, states.FINISHED, states.KILL_INITIATED):
                last = agent.kill_sent.get(tid, 0.0)
                if (state == states.KILL_INITIATED
                        and now - work.get(task, "kill_initiated_at") < resend):
                    continue  # the kill order is fresh: give it time
                if now - last >= resend:
                    agent.kill_sent[tid] = now
                    grace = 0.0 if task is None else master.jobs[task.job_id].kill_grace_sec
                    work.order(agent_id, kill_order(tid, grace))
        if len(agent.kill_sent) > 10_000:
            agent.kill_sent = {k: v for k, v in agent.kill_sent.items() if now - v < resend}
        master._after(work)
        return True


def deregister(master, agent_id: str) -> None:
    """An agent leaving: its tasks are lost (and replaced), its hosts leave the engine."""
    with master.lock:
        agent = master.registry.get(agent_id)
        if agent is None:
            raise NotFound(agent_id)
        lose(master, agent, "agent deregistered")


def lose(master, agent: AgentRecord, why: str) -> None:
    """Mark every task of ``agent`` lost (they get replaced) and forget the agent."""
    work = Work()
    for tid in list(master.agent_tasks.get(agent.id, ())):
        task = master.tasks.get(tid)
        if task is None or task.state not in states.ON_HOST:
            continue
        if task.state == states.KILL_INITIATED:
            master.plan_finish(work, task, task.kill_reason or states.KILLED, why)
        else:
            master.plan_finish(work, task, states.LOST, why)
    work.removed_hosts.extend(agent.hosts)
    work.agent_deletes.append(agent.id)
    work.log.append(("agentLost", agent.id, {"why": why}))
    log.warning("agent %s lost (%s): %d hosts leave", agent.id, why, len(agent.hosts))
    master.commit(work)
    master.registry.remove(agent.id)
    master.agent_tasks.pop(agent.id, None)
    if work.touched_jobs:
        master.settle_jobs(list(work.touched_jobs.values()))
