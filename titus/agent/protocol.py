"""The agent <-> master protocol: HTTP/JSON messages, as pydantic models.

Agents call the master; the master never needs to reach an agent except to read logs.

- ``POST /api/v3/agents/register`` (:class:`RegisterRequest` -> :class:`RegisterResponse`):
  an agent announces the hosts it stands for (one for a docker agent, many for a sim agent)
  and every task its runtime still holds, so a restarted agent or master can reconcile.
- ``POST /api/v3/agents/{agent_id}/heartbeat`` (:class:`Heartbeat` -> :class:`HeartbeatReply`):
  carries a batch of task status changes and the ids of the tasks still running; the reply
  carries orders (launch, kill, remove). The master may hold the request up to ``wait_ms``
  when it has no order yet (long poll), so launches are not delayed by the interval.
- ``DELETE /api/v3/agents/{agent_id}``: graceful deregistration.

Agents authenticate with ``Authorization: Bearer <agent token>`` when the master has one.
An agent serves ``GET {address}/tasks/{task_id}/logs?follow=0|1`` for the master to proxy.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, Field


class HostInfo(BaseModel):
    """One host an agent stands for, with its resources and attributes."""

    host_id: str
    cpus: float = Field(ge=0)
    memory_mb: float = Field(ge=0)
    disk_mb: float = Field(default=0, ge=0)
    network_mbps: float = Field(default=0, ge=0)
    gpu: int = Field(default=0, ge=0)
    ports: list[tuple[int, int]] = Field(default_factory=lambda: [(31000, 31999)])
    # zone, instance_type, instance_id, instance_group, ... (strings)
    attributes: dict[str, str] = Field(default_factory=dict)


class TaskStatusMsg(BaseModel):
    """A state change of one task as a runtime saw it (mirrors ``runtime.TaskStatus``)."""

    task_id: str
    state: Literal["StartInitiated", "Started", "Finished"]
    reason: str = ""
    message: str = ""
    exit_code: Optional[int] = None
    health: Optional[str] = None
    timestamp: float = 0.0
    host_id: str = ""


class RegisterRequest(BaseModel):
    """An agent (re)joining: its hosts and what its runtime currently holds."""

    agent_id: str
    runtime: str = "sim"
    address: str = ""  # base URL of the agent's own HTTP server (logs), "" if none
    hosts: list[HostInfo]
    tasks: list[TaskStatusMsg] = Field(default_factory=list)


class RegisterResponse(BaseModel):
    """The master's answer to a registration."""

    agent_id: str
    heartbeat_interval_sec: float = 0.5
    heartbeat_timeout_sec: float = 10.0


class LaunchOrder(BaseModel):
    """Start a task (fields mirror ``runtime.LaunchSpec``)."""

    type: Literal["launch"] = "launch"
    task_id: str
    job_id: str
    host_id: str
    image: str
    entry_point: list[str] = Field(default_factory=list)
    command: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cpus: float = 1.0
    memory_mb: float = 512.0
    disk_mb: float = 0.0
    network_mbps: float = 0.0
    gpu: int = 0
    ports: list[int] = Field(default_factory=list)
    kill_grace_sec: float = 10.0
    health_check: Optional[dict] = None  # {"command": [...], "interval_sec", "timeout_sec", "retries"}
    iam_role: Optional[str] = None


class KillOrder(BaseModel):
    """Stop a task: SIGTERM, then SIGKILL after ``grace_sec``."""

    type: Literal["kill"] = "kill"
    task_id: str
    grace_sec: float = 10.0


class RemoveOrder(BaseModel):
    """Forget a task the master does not know (the reaper) or has archived."""

    type: Literal["remove"] = "remove"
    task_id: str


Order = Annotated[Union[LaunchOrder, KillOrder, RemoveOrder], Field(discriminator="type")]


class Heartbeat(BaseModel):
    """Status changes since the last heartbeat, and the tasks still running."""

    statuses: list[TaskStatusMsg] = Field(default_factory=list)
    running: list[str] = Field(default_factory=list)
    wait_ms: int = Field(default=0, ge=0, le=30000)


class HeartbeatReply(BaseModel):
    """Orders for the agent. ``reregister`` asks it to register again (master lost it)."""

    orders: list[Order] = Field(default_factory=list)
    reregister: bool = False
