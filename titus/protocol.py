"""The agent <-> master protocol: HTTP/JSON messages, shared by both sides.

Agents call the master; the master never needs to reach an agent except to read logs.

- ``POST /api/v3/agents/register`` (:class:`RegisterRequest` -> :class:`RegisterResponse`):
  an agent announces the hosts it stands for (one for a docker agent, many for a sim agent)
  and every task its runtime still holds, so a restarted agent or master can reconcile.
- ``POST /api/v3/agents/{agent_id}/heartbeat`` (:class:`Heartbeat` -> :class:`HeartbeatReply`):
  carries a batch of task status changes and the ids of the tasks still running; the reply
  carries orders (:class:`LaunchOrder`, :class:`KillOrder`, :class:`RemoveOrder`). The master
  may hold the request up to ``wait_ms`` when it has no order yet (long poll), so launches are
  not delayed by the interval.
- ``DELETE /api/v3/agents/{agent_id}``: graceful deregistration.

Agents authenticate with ``Authorization: Bearer <token>`` when the master has tokens: the
shared bootstrap token to join, then the agent's own credential from :class:`RegisterResponse`.
An agent serves ``GET {address}/tasks/{task_id}/logs?follow=0|1`` for the master to proxy; the
master presents that agent's own log token there (``RegisterResponse.log_token``).

What the master receives (:class:`HostInfo`, :class:`TaskStatusMsg`, :class:`RegisterRequest`,
:class:`Heartbeat`) are pydantic models, validated on arrival. Orders are slotted stdlib
dataclasses: the master builds one per placed task (up to millions), which costs about a
sixth of a pydantic model. The master serialises a reply with
``pydantic_core.to_json({"orders": orders, "reregister": ...})``; the agent validates it with
:class:`HeartbeatReply`, which checks the dataclasses field by field like a model;
:meth:`HeartbeatReply.parse_each` reads each order on its own, so one malformed or unknown
order is skipped (and logged) without losing the others. Unknown keys are ignored, so a newer
master may add fields.

The same :class:`LaunchOrder` goes all the way to the agent's runtime. It carries the job's
own ``env`` only: the agent alone adds the container's ``TITUS_*`` variables
(``titus.agent.task_env``). Masters that predate ``task_index`` sent the index as
``env["TITUS_TASK_INDEX"]``; an order without ``task_index`` takes it from there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Field, GetCoreSchemaHandler,
                      TypeAdapter, ValidationError, model_validator)
from pydantic_core import core_schema

__all__ = [
    "HostInfo", "TaskStatusMsg", "RegisterRequest", "RegisterResponse", "Heartbeat",
    "HeartbeatReply", "HealthCheckOrder", "LaunchOrder", "KillOrder", "RemoveOrder", "Order",
    "kill_order", "remove_order",
]


# -- agent -> master -------------------------------------------------------------------------
#
# Everything an agent sends is held to what the store and every client can take back: finite
# numbers, integers in the store's column range, valid Unicode (no lone surrogate), ids no
# longer than a key column. A message breaking one is refused whole, before anything changes.

INT32_MAX = 2**31 - 1
MAX_QUANTITY = 1e12  # cpus, MB, Mbps of one host: far beyond any machine, exact in float64


# Checked by pydantic's compiled patterns, not Python code: a heartbeat may carry 500,000 ids
# (pydantic refuses lone surrogates in any str itself).
# An id or name (a store key column holds 255 characters): ids end up in URL paths, log lines
# and key columns, so no space, '/', control, zero-width, bidi-override or separator character
# (written with \u escapes, which pydantic, Python and JSON Schema readers all understand)
NAME_PATTERN = (r"^[^\s/\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e"
                r"\u2060-\u2064\ufeff]*$")
Name = Annotated[str, Field(max_length=255, pattern=NAME_PATTERN)]
# Free text (a message): anything but NUL, which PostgreSQL text cannot hold.
Text = Annotated[str, Field(max_length=65_536, pattern=r"^[^\x00]*$")]
# statuses or running ids in one message: a simulated agent stands for thousands of hosts
# (C1M: 500,000 running tasks per agent); the body bound (64 MiB) keeps it below ~1.7M ids
MAX_ITEMS = 2_000_000

# Headers of several masters on one store (titus.master.api.forward): every answer says the
# answering master's role and how stale its data may be; a standby names the leader.
ROLE_HEADER = "X-Titus-Role"
LEADER_HEADER = "X-Titus-Leader"
STALENESS_HEADER = "X-Titus-Staleness-Ms"


class _Incoming(BaseModel):
    """Base of what the master receives: finite numbers only."""

    model_config = ConfigDict(allow_inf_nan=False)


# Numbers are strict (``Field(strict=True)``, checked by pydantic's compiled code): ``true`` or
# ``false`` is not read as 1 or 0, nor a string as a number; an int is still a float.
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]


class HostInfo(_Incoming):
    """One host an agent stands for, with its resources and attributes.

    Quantities are finite and at most 1e12; ``ports`` are inclusive ranges within 1..65535."""

    host_id: Name = Field(min_length=1)
    cpus: float = Field(ge=0, le=MAX_QUANTITY, strict=True)
    memory_mb: float = Field(ge=0, le=MAX_QUANTITY, strict=True)
    disk_mb: float = Field(default=0, ge=0, le=MAX_QUANTITY, strict=True)
    network_mbps: float = Field(default=0, ge=0, le=MAX_QUANTITY, strict=True)
    gpu: int = Field(default=0, ge=0, le=INT32_MAX, strict=True)
    ports: list[tuple[Port, Port]] = Field(default_factory=lambda: [(31000, 31999)],
                                           max_length=1024)
    # zone, instance_type, instance_id, instance_group, ... (strings)
    attributes: dict[Name, Text] = Field(default_factory=dict, max_length=256)


class TaskStatusMsg(_Incoming):
    """A state change of one task as a runtime saw it (mirrors ``runtime.TaskStatus``)."""

    task_id: Name
    state: Literal["StartInitiated", "Started", "Finished"]
    reason: Name = ""
    message: Text = ""
    exit_code: Optional[int] = Field(default=None, ge=-INT32_MAX - 1, le=INT32_MAX, strict=True)
    health: Optional[Name] = None
    timestamp: float = Field(default=0.0, strict=True)
    host_id: Name = ""


class RegisterRequest(_Incoming):
    """An agent (re)joining: its hosts and what its runtime currently holds."""

    agent_id: Name = Field(min_length=1)
    runtime: Annotated[Name, Field(max_length=32)] = "sim"
    # base URL of the agent's own HTTP server (logs), "" if none
    address: Annotated[Text, Field(max_length=1024)] = ""
    hosts: list[HostInfo] = Field(max_length=MAX_ITEMS)
    tasks: list[TaskStatusMsg] = Field(default_factory=list, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _hosts_once(self) -> "RegisterRequest":
        seen: set = set()
        for host in self.hosts:
            if host.host_id in seen:
                raise ValueError(f"hosts: host {host.host_id!r} is listed twice")
            seen.add(host.host_id)
        return self


class Heartbeat(_Incoming):
    """Status changes since the last heartbeat, and the tasks still running."""

    statuses: list[TaskStatusMsg] = Field(default_factory=list, max_length=MAX_ITEMS)
    running: list[Name] = Field(default_factory=list, max_length=MAX_ITEMS)
    wait_ms: int = Field(default=0, ge=0, le=30000, strict=True)


# -- master -> agent -------------------------------------------------------------------------


class RegisterResponse(BaseModel):
    """The master's answer to a registration.

    ``credential``: the agent's own token, handed out when it joined with the bootstrap token;
    from then on the agent presents it instead (heartbeats, registrations, deregistration).
    None when the agent already holds one, or the master has no tokens. ``log_token``: the
    secret every master presents when it reads task logs from this agent's own server (one
    per agent: it opens no other agent's server)."""

    agent_id: str
    heartbeat_interval_sec: float = 0.5
    heartbeat_timeout_sec: float = 10.0
    credential: Optional[str] = None
    log_token: Optional[str] = None


@dataclass(slots=True, kw_only=True)
class HealthCheckOrder:
    """A container health check: a command run inside the container."""

    command: list[str]
    interval_sec: float = 10.0
    timeout_sec: float = 5.0
    retries: int = 3


def _index_from_legacy_env(data: Any) -> Any:
    """A launch order without ``task_index`` (an older master) takes it from its env."""
    if isinstance(data, dict) and "task_index" not in data:
        env = data.get("env")
        raw = env.get("TITUS_TASK_INDEX") if isinstance(env, dict) else None
        if isinstance(raw, str) and raw.isdecimal():
            return {**data, "task_index": int(raw)}
    return data


@dataclass(slots=True, kw_only=True)
class LaunchOrder:
    """Start a task: everything a runtime needs to start its container.

    ``env`` is the job's env as the user gave it; ``task_index`` is the task's index in its
    job. ``host_id`` is the (possibly simulated) host the master placed the task on.
    """

    type: Literal["launch"] = "launch"
    task_id: str
    job_id: str
    task_index: int = 0
    host_id: str
    image: str  # "name:tag" or "name@digest"
    attempt: int = 1  # 1 for the first order of this task, one more for each re-send
    epoch: int = 0  # the leading master's epoch when it placed the task (0: no election)
    entry_point: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cpus: float = 1.0
    memory_mb: float = 512.0
    disk_mb: float = 0.0
    network_mbps: float = 0.0
    gpu: int = 0
    ports: list[int] = field(default_factory=list)
    kill_grace_sec: float = 10.0
    health_check: Optional[HealthCheckOrder] = None
    iam_role: Optional[str] = None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # validation only (the agent's side): building an order never goes through pydantic
        return core_schema.no_info_before_validator_function(_index_from_legacy_env,
                                                             handler(source))


@dataclass(slots=True, kw_only=True)
class KillOrder:
    """Stop a task: SIGTERM, then SIGKILL after ``grace_sec``."""

    type: Literal["kill"] = "kill"
    task_id: str
    grace_sec: float = 10.0


@dataclass(slots=True, kw_only=True)
class RemoveOrder:
    """Forget a task the master does not know (the reaper) or has archived."""

    type: Literal["remove"] = "remove"
    task_id: str


Order = Annotated[Union[LaunchOrder, KillOrder, RemoveOrder], Field(discriminator="type")]


class HeartbeatReply(BaseModel):
    """Orders for the agent. ``reregister`` asks it to register again (master lost it)."""

    orders: list[Order] = Field(default_factory=list)
    reregister: bool = False

    @classmethod
    def parse_each(cls, raw: bytes) -> tuple["HeartbeatReply", list[str]]:
        """The reply in ``raw`` with every order it can read, and why the others were not.

        The orders were taken off the master's queue when the reply was written: one an agent
        cannot read (a newer kind, a bad field) must not take the others down with it. The
        master's timeouts end what an unread order leaves waiting. ``ValueError`` only if the
        reply itself is not one (not JSON, not an object)."""
        envelope = _ReplyEnvelope.model_validate_json(raw)
        orders, unread = [], []
        for i, item in enumerate(envelope.orders):
            try:
                orders.append(_ORDER.validate_python(item))
            except ValidationError as exc:
                unread.append(f"orders[{i}]: {str(exc).splitlines()[0][:200]}")
        return cls.model_construct(orders=orders, reregister=envelope.reregister), unread


class _ReplyEnvelope(BaseModel):
    orders: list[Any] = Field(default_factory=list)
    reregister: bool = False


_ORDER = TypeAdapter(Order)


def kill_order(task_id: str, grace_sec: float) -> KillOrder:
    """Stop a task: SIGTERM, then SIGKILL after ``grace_sec``."""
    return KillOrder(task_id=task_id, grace_sec=float(grace_sec))


def remove_order(task_id: str) -> RemoveOrder:
    """Forget a task the master does not know (or has archived)."""
    return RemoveOrder(task_id=task_id)
