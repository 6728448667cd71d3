"""Agents joining, reporting and leaving: registration reconciliation and heartbeats.

Registration reconciliation: an agent (re)registering lists every task its runtime holds.
Tasks the master does not know (or has finished) get a KillOrder (running) or a RemoveOrder
(ended); tasks the master places there but the agent does not report are lost (a Launched one
is sent again instead: its launch may never have arrived); the rest are held again on their
hosts in the engine.

A host belongs to the agent that registered it last: an agent restarted under a new id on the
same machine takes the host and the tasks it reports. The old id keeps only its other hosts,
its queued launches for the moved host are dropped, a copy it still runs is killed, and losing
it later touches nothing that moved.

Who may do this (docs/security.md, "Agents"), when the master has tokens: an agent joins with
the bootstrap token and is handed its own credential (only its SHA-256 is stored, with the
agent); from then on it alone may heartbeat, re-register and deregister that agent id. A host
held by another *live* agent (registered, heard from within the heartbeat timeout) is not taken
over, and a live agent with a credential is not registered again without it. A master without
tokens (every caller ``ANONYMOUS``) keeps the rules above and issues no credential.

Heartbeats carry status changes (applied through the task state machine, illegal moves
dropped) and the ids still running (unknown ones are killed). An agent silent past the
heartbeat timeout, or leaving, loses its tasks (they are replaced).

Everything is planned into a :class:`~titus.master.work.Work` and committed by the ledger.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
from dataclasses import replace
from typing import Callable, Optional
from urllib.parse import quote, urlsplit

from titus import states
from titus.master.auth import AGENT_PREFIX, ANONYMOUS, Principal, digest, new_token
from titus.master.config import MasterSettings
from titus.master.errors import Conflict, Forbidden, NotFound
from titus.master.ledger import Ledger
from titus.master.lifecycle import Lifecycle
from titus.master.orders import launch_order
from titus.master.records import TaskRecord, state_time_field
from titus.master.registry import AgentRecord
from titus.master.state import ClusterState
from titus.master.work import Work
from titus.protocol import RegisterRequest, RegisterResponse, TaskStatusMsg, kill_order, remove_order

log = logging.getLogger("titus.master.agents")

# The store's meta key of the secret every master presents to agents' log servers.
LOG_TOKEN_KEY = "agent_log_token"


class Agents:
    """Registration, heartbeats and losses of agents."""

    def __init__(self, state: ClusterState, ledger: Ledger, lifecycle: Lifecycle,
                 settings: MasterSettings, clock: Callable[[], float],
                 lag: Callable[[], float] = lambda: 0.0):
        self.state = state
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.settings = settings
        self.clock = clock
        self.lag = lag  # the master's own lag so far, in seconds (titus.master.lag)
        # when each agent's latest request arrived, stamped before it waits for anything of
        # the master's (threads, the state lock): a queued heartbeat is not a silent agent
        self.heard: dict[str, float] = {}
        self._log_token: Optional[str] = None

    def register(self, req: RegisterRequest, caller: Principal = ANONYMOUS) -> RegisterResponse:
        """(Re)register an agent and reconcile what it holds with what the master believes.

        ``caller`` must be allowed to (see the module's docstring): Forbidden for another
        agent's credential, Conflict for a live agent's id or host."""
        st, finish = self.state, self.lifecycle.finish
        with st.lock:
            now = self.clock()
            old = st.registry.get(req.agent_id)
            credential = self._admit(req, old, caller, now)
            # fetched before anything is committed: a store that cannot give it changes nothing
            log_token = None if caller is ANONYMOUS else self.log_token_of(req.agent_id,
                                                                           create=True)
            kept = old.credential_sha256 if old is not None else ""
            agent = AgentRecord(id=req.agent_id, runtime=req.runtime, address=req.address,
                                hosts={h.host_id: h for h in req.hosts}, registered_at=now,
                                last_seen=now, lag_seen=self.lag(), registered=True,
                                credential_sha256=digest(credential) if credential else kept)
            work = Work()
            # a host another agent stood for now belongs to this one (an agent restarted under
            # a new id on the same machine): the other keeps only the hosts it still has
            for other_id in {st.registry.agent_of_host(h) for h in agent.hosts} - {None, agent.id}:
                other = st.registry.get(other_id)
                work.agents_put.append(replace(other, hosts={
                    h: info for h, info in other.hosts.items() if h not in agent.hosts}))
            work.agents_put.append(agent)
            work.log.append(("agentRegistered", agent.id, {"hosts": len(agent.hosts)}))
            reported = {s.task_id: s for s in req.tasks}
            # hosts this agent had before but no longer announces: their tasks are lost
            gone = set(old.hosts) - set(agent.hosts) if old is not None else set()
            # every task the master places on this agent (or on one of its hosts)
            mine = st.tasks_on(agent.id)
            mine += [t for t in st.tasks.values() if t.state in states.ON_HOST
                     and t.host_id in agent.hosts and t.agent_id != agent.id]
            for task in mine:
                if task.state not in states.ON_HOST:
                    continue
                status = reported.get(task.id)
                if task.host_id in gone or task.host_id not in agent.hosts:
                    finish(work, task, states.LOST, "host left the agent")
                elif status is not None:
                    if status.state != states.FINISHED:
                        work.holds.append(task)
                    self._plan_status(work, task, status)
                    if status.state == states.START_INITIATED and task.state in (
                            states.LAUNCHED, states.START_INITIATED):
                        # it may sit created but unstarted (its agent died in between): the
                        # order again is the master's word to start it (a no-op otherwise)
                        self._repeat_launch(work, agent.id, task)
                    if status.state != states.FINISHED and task.state == states.KILL_INITIATED:
                        job = st.jobs[task.job_id]
                        work.order(agent.id, kill_order(task.id, job.kill_grace_sec))
                elif task.state == states.LAUNCHED:
                    work.holds.append(task)  # its launch order may never have arrived: resend
                    self._resend_launch(work, agent.id, task)
                elif task.state == states.KILL_INITIATED:
                    finish(work, task, task.kill_reason or states.KILLED,
                           "gone from its agent while being killed")
                else:
                    finish(work, task, states.LOST, "not reported by its agent")
            for tid, status in reported.items():
                task = st.tasks.get(tid)
                if task is None or task.state == states.FINISHED or task.host_id not in agent.hosts:
                    if status.state == states.FINISHED:
                        work.order(agent.id, remove_order(tid))
                    else:
                        work.order(agent.id, kill_order(tid, 0.0))
            for task in work.holds:  # a host may have moved to this agent: it adopts the task
                if work.get(task, "agent_id") != agent.id:
                    work.update(task, agent_id=agent.id)
            # the engine follows: the agent's hosts leave and join again, surviving tasks held
            work.removed_hosts.extend(set(agent.hosts) | gone)
            work.added_hosts.extend(agent.hosts.values())
            failed = self.ledger.commit(work)
            if failed:
                lost = Work()
                for task in failed:
                    finish(lost, task, states.LOST, "could not be restored on its host")
                    lost.order(agent.id, kill_order(task.id, 0.0))
                self.ledger.commit(lost)
            return RegisterResponse(agent_id=agent.id,
                                    heartbeat_interval_sec=self.settings.heartbeat_interval_sec,
                                    heartbeat_timeout_sec=self.settings.heartbeat_timeout_sec,
                                    credential=credential, log_token=log_token)

    def _admit(self, req: RegisterRequest, old: Optional[AgentRecord], caller: Principal,
               now: float) -> Optional[str]:
        """Whether ``caller`` may register ``req`` (Forbidden or Conflict if not); returns the
        new credential to hand out (a bootstrap registration), or None."""
        if caller is ANONYMOUS:
            return None  # no tokens at all: anyone may register anything, as before
        if caller.agent_id is not None:
            if caller.agent_id != req.agent_id:
                raise Forbidden("this credential belongs to another agent", "agent_id")
        elif old is not None and old.credential_sha256 and self.live(old, now):
            raise Conflict(f"agent {req.agent_id} is live: only its own credential may "
                           "register it again", "agent_id")
        self._check_hosts(req, now)
        return new_token() if caller.agent_id is None else None

    def _check_hosts(self, req: RegisterRequest, now: float) -> None:
        """Conflict for a host that another live agent stands for (a silent one gives it up)."""
        registry = self.state.registry
        for i, host in enumerate(req.hosts):
            holder = registry.get(registry.agent_of_host(host.host_id) or "")
            if holder is not None and holder.id != req.agent_id and self.live(holder, now):
                raise Conflict(f"host {host.host_id} belongs to another live agent",
                               f"hosts[{i}].host_id")

    def live(self, agent: AgentRecord, now: float) -> bool:
        """Registered with this master and heard from within the heartbeat timeout."""
        return agent.registered and self.silence(agent, now) <= self.settings.heartbeat_timeout_sec

    def silence(self, agent: AgentRecord, now: float) -> float:
        """How long the agent itself has been silent, in seconds: since its latest request
        arrived, less the master's own lag since it was last heard (a master that could not
        run could not hear it either)."""
        heard = max(agent.last_seen, self.heard.get(agent.id, 0.0))
        # the master's lag extends the timeout at most once over: a master too busy for that
        # long loses its agents rather than never noticing a dead one
        credit = min(max(0.0, self.lag() - agent.lag_seen), self.settings.heartbeat_timeout_sec)
        return now - heard - credit

    def grace(self, seconds: float) -> None:
        """Give every known agent ``seconds`` more before its silence counts (a new leader:
        agents spent up to a lease, and their back-off, looking for it)."""
        until = self.clock() + seconds
        for agent_id in list(self.state.registry.agents):
            self.heard[agent_id] = max(self.heard.get(agent_id, 0.0), until)

    def arrived(self, agent_id: str, caller: Principal) -> None:
        """An agent's request arrived (called before it waits for threads or locks): the
        agent is not silent. Only the agent itself (or any caller of a master without
        tokens) counts."""
        if caller is ANONYMOUS or caller.name == AGENT_PREFIX + agent_id:
            self.heard[agent_id] = self.clock()

    def log_token(self, create: bool = False) -> Optional[str]:
        """The cluster's log secret: one per store (in its ``meta`` table, so every master of
        the store has it), made by the first ``create``. None if there is none yet and
        ``create`` is False. Never handed out: agents get :meth:`log_token_of`."""
        if self._log_token is None:
            self._log_token = self.ledger.meta(LOG_TOKEN_KEY, new_token() if create else None)
        return self._log_token

    def log_token_of(self, agent_id: str, create: bool = False) -> Optional[str]:
        """The token agent ``agent_id``'s log server accepts: an HMAC-SHA256 of its id under
        the cluster's log secret. Every master can compute it, and each agent holds only its
        own, so one agent (or a holder of the bootstrap token) cannot read another agent's
        task logs. None if there is no secret yet and ``create`` is False."""
        secret = self.log_token(create)
        if secret is None:
            return None
        mac = hmac.new(secret.encode(), agent_id.encode("utf-8", "surrogatepass"),
                       hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def heartbeat(self, agent_id: str, statuses: list[TaskStatusMsg], running: list[str],
                  caller: Principal = ANONYMOUS) -> bool:
        """Apply an agent's heartbeat; False if the agent must register again. Forbidden
        unless ``caller`` is that agent (or the master has no tokens)."""
        _check_self(agent_id, caller)
        st = self.state
        with st.lock:
            agent = st.registry.get(agent_id)
            if agent is None or not agent.registered:
                return False
            now = self.clock()
            agent.last_seen = now
            agent.lag_seen = self.lag()
            work = Work()
            for status in statuses:
                task = st.tasks.get(status.task_id)
                if task is None or task.host_id not in agent.hosts:
                    if task is None and status.state == states.FINISHED:
                        work.order(agent_id, remove_order(status.task_id))
                    continue
                self._plan_status(work, task, status)
            resend = self.settings.kill_resend_sec
            sent: dict[str, float] = {}
            for tid in running:
                task = st.tasks.get(tid)
                state = work.get(task, "state") if task is not None else None
                if task is not None and work.get(task, "agent_id") != agent_id:
                    state = None  # a copy on an agent the task moved away from: kill it there
                if state in (None, states.FINISHED, states.KILL_INITIATED):
                    last = agent.kill_sent.get(tid, 0.0)
                    if (state == states.KILL_INITIATED
                            and now - work.get(task, "kill_initiated_at") < resend):
                        continue  # the kill order is fresh: give it time
                    if now - last >= resend:
                        sent[tid] = now
                        grace = 0.0 if task is None else st.jobs[task.job_id].kill_grace_sec
                        work.order(agent_id, kill_order(tid, grace))
            self.ledger.commit(work)
            agent.kill_sent.update(sent)  # only once the orders are queued
            if len(agent.kill_sent) > 10_000:
                agent.kill_sent = {k: v for k, v in agent.kill_sent.items() if now - v < resend}
            return True

    def deregister(self, agent_id: str, caller: Principal = ANONYMOUS) -> None:
        """An agent leaving: its tasks are lost (and replaced), its hosts leave the engine.
        Forbidden unless ``caller`` is that agent (or the master has no tokens)."""
        _check_self(agent_id, caller)
        with self.state.lock:
            agent = self.state.registry.get(agent_id)
            if agent is None:
                raise NotFound(agent_id)
            self.lose(agent, "agent deregistered")

    def lose(self, agent: AgentRecord, why: str) -> None:
        """Mark every task of ``agent`` lost (they get replaced) and forget the agent."""
        with self.state.lock:
            work = Work()
            for task in self.state.tasks_on(agent.id):
                if task.state not in states.ON_HOST:
                    continue
                if task.state == states.KILL_INITIATED:
                    self.lifecycle.finish(work, task, task.kill_reason or states.KILLED, why)
                else:
                    self.lifecycle.finish(work, task, states.LOST, why)
            # only the hosts it still stands for (one may have moved to another agent)
            registry = self.state.registry
            work.removed_hosts.extend(h for h in agent.hosts if registry.agent_of_host(h) == agent.id)
            work.agent_deletes.append(agent.id)
            work.log.append(("agentLost", agent.id, {"why": why}))
            self.heard.pop(agent.id, None)
            log.warning("agent %s lost (%s): %d hosts leave", agent.id, why, len(agent.hosts))
            self.ledger.commit(work)

    def lose_silent(self, now: float) -> None:
        """Lose every agent silent for longer than the heartbeat timeout."""
        timeout = self.settings.heartbeat_timeout_sec
        with self.state.lock:
            for agent in list(self.state.registry.agents.values()):
                if self.silence(agent, now) > timeout:
                    self.lose(agent, f"no heartbeat for more than {timeout:g}s")

    def _resend_launch(self, work: Work, agent_id: str, task: TaskRecord) -> None:
        """Send a Launched task's order again, as a new attempt: counted on the task and
        written to the event log, so its history shows every attempt. An order still waiting
        in the agent's queue (registrations repeated before a heartbeat took it) is not one."""
        if self.state.registry.launch_queued(agent_id, task.id):
            return
        attempt = max(1, task.launch_attempts) + 1
        work.update(task, launch_attempts=attempt)
        work.log.append(("taskLaunchResent", task.id, {
            "jobId": task.job_id, "attempt": attempt, "agentId": agent_id,
            "hostId": task.host_id}))
        work.order(agent_id, launch_order(self.state.jobs[task.job_id], task, task.host_id,
                                          task.port_list, attempt, self.state.epoch))

    def _repeat_launch(self, work: Work, agent_id: str, task: TaskRecord) -> None:
        """Send a launch order again as the same attempt (not counted, no event): the agent
        ignores it unless the task's container was recovered unstarted, which it then starts."""
        if self.state.registry.launch_queued(agent_id, task.id):
            return
        work.order(agent_id, launch_order(self.state.jobs[task.job_id], task, task.host_id,
                                          task.port_list, max(1, task.launch_attempts)))

    def _plan_status(self, work: Work, task: TaskRecord, status: TaskStatusMsg) -> None:
        """Plan the change an agent reported for one task (illegal moves are dropped)."""
        current = work.get(task, "state")
        now = self.clock()
        if status.health is not None and status.health != work.noted(task, "health"):
            work.note(task, health=status.health)  # not stored: re-reported by the agent
            job = self.state.jobs.get(task.job_id)
            if status.health == "unhealthy" and job is not None and not job.batch:
                if work.noted(task, "unhealthy_since") is None:
                    work.note(task, unhealthy_since=now)
                    work.timer(now + self.settings.unhealthy_replace_sec, task.id, "unhealthy", now)
            elif status.health != "unhealthy":
                work.note(task, unhealthy_since=None)
        if status.state == current:
            return
        if not states.can_move_task(current, status.state):
            # a report the master has moved past (a kill or a loss racing the task's own
            # progress or end) is expected and harmless: only a report out of any order warns
            if current != states.FINISHED and not states.is_behind(status.state, current):
                log.warning("refused transition of %s: %s -> %s", task.id, current, status.state)
            else:
                log.debug("stale report of %s ignored: %s (now %s)", task.id, status.state,
                          current)
            return
        if status.state == states.FINISHED:
            kill_reason = work.get(task, "kill_reason")
            if current == states.KILL_INITIATED and kill_reason:
                reason = kill_reason
            else:
                reason = states.finish_reason(status.reason, status.exit_code)
            self.lifecycle.finish(work, task, reason, status.message, status.exit_code)
            return
        if current == states.KILL_INITIATED:
            return
        work.update(task, state=status.state, **{state_time_field(status.state): now})


def _check_self(agent_id: str, caller: Principal) -> None:
    """Forbidden unless ``caller`` is agent ``agent_id`` (or the master has no tokens)."""
    if caller is ANONYMOUS or caller.agent_id == agent_id:
        return
    if caller.agent_id is None:
        raise Forbidden("the bootstrap token may only register; use the agent's own "
                        "credential", "agent_id")
    raise Forbidden("this credential belongs to another agent", "agent_id")


def address_problem(address: str, source: Optional[str]) -> Optional[str]:
    """Why the master must not contact an agent at ``address``, or None.

    An address is a base URL only: http or https, a host and maybe a port, no user, path,
    query or fragment (the master adds its own fixed paths). With ``source`` (the address an
    authenticated registration came from) its host must be that IP address, so a registration
    can only point the master at the machine it was sent from."""
    if not address:
        return None
    try:
        base = base_url(address)
    except ValueError as exc:
        return str(exc)
    if source is None:
        return None
    if not _same_ip(urlsplit(base).hostname or "", source):
        return (f"the host must be the IP address this registration comes from "
                f"({source or 'unknown'})")
    return None


def base_url(address: str) -> str:
    """``scheme://host[:port]`` of an agent's address; ValueError saying what is wrong."""
    if any(c in address for c in "?#@\\") or any(c.isspace() or ord(c) < 32 for c in address):
        raise ValueError("a base URL only: no user, query, fragment, backslash or whitespace")
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https"):
        raise ValueError("the scheme must be http or https")
    if not parts.hostname:
        raise ValueError("a host is needed")
    if parts.path not in ("", "/"):
        raise ValueError("a base URL only: no path (the master adds its own)")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError("the port must be a number from 1 to 65535")
    return f"{parts.scheme}://{parts.netloc}"


def logs_url(address: str, task_id: str) -> str:
    """The URL of a task's logs on its agent (ValueError for an address not to contact)."""
    return f"{base_url(address)}/tasks/{quote(task_id, safe='')}/logs"


def _same_ip(host: str, source: str) -> bool:
    """Whether ``host`` is an IP literal naming the address ``source`` (IPv4-mapped IPv6
    counts as its IPv4). Names are refused: the master does not resolve them."""
    try:
        ours, theirs = ipaddress.ip_address(host), ipaddress.ip_address(source)
    except ValueError:
        return False
    return _plain(ours) == _plain(theirs)


def _plain(ip):
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped if mapped is not None else ip
