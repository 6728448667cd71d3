"""The agent registry: who is connected, which hosts each stands for, and its order queue.

Orders (launch, kill, remove) wait in a per-agent queue until the agent's next heartbeat takes
them. A heartbeat may wait for orders (``wait_ms``, a long poll): the waiting request sleeps on
an ``asyncio.Event`` that the queue sets, from any thread, when an order arrives.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Optional

from titus.protocol import HostInfo


@dataclass(eq=False)
class AgentRecord:
    """One agent process."""

    id: str
    runtime: str = ""
    address: str = ""
    hosts: dict = field(default_factory=dict)  # host id -> HostInfo
    registered_at: float = 0.0
    last_seen: float = 0.0
    lag_seen: float = 0.0  # the master's own lag (titus.master.lag) when last heard from
    # True once the agent registered with this master process (after a restart it must again)
    registered: bool = False
    orders: deque = field(default_factory=deque)
    waiters: list = field(default_factory=list)  # (loop, asyncio.Event)
    kill_sent: dict = field(default_factory=dict)  # task id -> when a kill/remove was last sent
    credential_sha256: str = ""  # SHA-256 of the agent's own credential (titus.master.auth)

    def row(self) -> dict:
        """The store row."""
        return {"id": self.id, "runtime": self.runtime, "address": self.address,
                "hosts": json.dumps([h.model_dump() for h in self.hosts.values()]),
                "registered_at": self.registered_at, "last_seen": self.last_seen,
                "credential_sha256": self.credential_sha256}

    @classmethod
    def from_row(cls, row: dict) -> "AgentRecord":
        """A record from a store row (not registered with this master yet)."""
        hosts = [HostInfo.model_validate(h) for h in json.loads(row["hosts"])]
        return cls(id=row["id"], runtime=row["runtime"], address=row["address"],
                   hosts={h.host_id: h for h in hosts}, registered_at=row["registered_at"],
                   last_seen=row["last_seen"],
                   credential_sha256=row.get("credential_sha256") or "")


class AgentRegistry:
    """Agents by id, hosts to agents, and order delivery."""

    def __init__(self):
        self.version = 0  # bumped whenever agents (and so hosts) come or go
        self.agents: dict[str, AgentRecord] = {}
        self.host_agent: dict[str, str] = {}
        self._by_credential: dict[str, str] = {}  # SHA-256 of an agent's credential -> its id
        self._lock = threading.Lock()  # guards orders/waiters (touched from the event loop)

    def get(self, agent_id: str) -> Optional[AgentRecord]:
        """The agent, or None."""
        return self.agents.get(agent_id)

    def put(self, agent: AgentRecord) -> None:
        self.version += 1
        """Add or replace an agent and index its hosts."""
        old = self.agents.get(agent.id)
        if old is not None:
            for host_id in old.hosts:
                if self.host_agent.get(host_id) == agent.id:
                    del self.host_agent[host_id]
            agent.orders = old.orders
            agent.waiters = old.waiters
            lost = set(old.hosts) - set(agent.hosts)
            if lost:  # launches for hosts it no longer stands for must not run there
                with self._lock:
                    kept = [o for o in agent.orders
                            if getattr(o, "host_id", None) not in lost]
                    agent.orders.clear()
                    agent.orders.extend(kept)
        self.agents[agent.id] = agent
        for host_id in agent.hosts:
            self.host_agent[host_id] = agent.id
        self._index_credential(old, agent)

    def remove(self, agent_id: str) -> Optional[AgentRecord]:
        self.version += 1
        """Forget an agent and its hosts."""
        agent = self.agents.pop(agent_id, None)
        if agent is not None:
            self._index_credential(agent, None)
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

    def agent_of_credential(self, sha256: str) -> Optional[str]:
        """The agent whose own credential has this SHA-256, or None. Looked up by digest: the
        credentials are 256-bit random, so the lookup's timing tells nothing about one."""
        return self._by_credential.get(sha256)

    def _index_credential(self, old: Optional[AgentRecord], new: Optional[AgentRecord]) -> None:
        if old is not None and old.credential_sha256:
            if self._by_credential.get(old.credential_sha256) == old.id:
                del self._by_credential[old.credential_sha256]
        if new is not None and new.credential_sha256:
            self._by_credential[new.credential_sha256] = new.id

    def launch_queued(self, agent_id: str, task_id: str) -> bool:
        """Whether a launch order for ``task_id`` waits in the agent's queue (not yet taken)."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return False
        with self._lock:
            return any(o.type == "launch" and o.task_id == task_id for o in agent.orders)

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
