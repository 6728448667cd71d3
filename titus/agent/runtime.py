"""What the agent asks of a container runtime (``sim`` or ``docker``).

The agent owns the conversation with the master; a runtime only starts, watches, kills and
reports containers. It is handed the master's :class:`titus.protocol.LaunchOrder` as received
(the container's ``TITUS_*`` environment comes from ``titus.agent.task_env``). Status changes
are pushed through the ``emit`` callback given to ``start``, from any thread, never by a poll
per container.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, Iterator

from titus.protocol import LaunchOrder


@dataclass
class TaskStatus:
    """A state change of one task, as the runtime observed it.

    ``state`` is one of StartInitiated, Started, Finished; ``reason`` for Finished is normal,
    failed, killed, oom, ...; ``health`` is healthy, unhealthy, starting or None.
    """

    task_id: str
    state: str
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    health: str | None = None
    timestamp: float = 0.0
    host_id: str = ""


Emit = Callable[[TaskStatus], None]


class Runtime(abc.ABC):
    """A place where task containers run."""

    name: str = "abstract"

    @abc.abstractmethod
    def start(self, emit: Emit) -> None:
        """Begin watching; every later state change is passed to ``emit``."""

    @abc.abstractmethod
    def launch(self, order: LaunchOrder) -> None:
        """Start the task's container; progress arrives through ``emit``.

        The order is shared with the agent: read it, never change it."""

    @abc.abstractmethod
    def kill(self, task_id: str, grace_sec: float) -> None:
        """Stop the task: SIGTERM, then SIGKILL after ``grace_sec``; ends in Finished/killed."""

    @abc.abstractmethod
    def list(self) -> list[TaskStatus]:
        """Current state of every task this runtime holds (used to recover after a restart)."""

    @abc.abstractmethod
    def remove(self, task_id: str) -> None:
        """Forget the task and delete what is left of its container (the reaper)."""

    def logs(self, task_id: str, follow: bool = False) -> Iterator[bytes]:
        """The task's stdout/stderr; with ``follow``, keep yielding until it ends."""
        return iter(())

    def close(self) -> None:
        """Stop watching and release resources."""
