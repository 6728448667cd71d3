"""Orders for agents, built as plain dicts in the wire shape of ``titus.agent.protocol``.

A launch order is built once per placed task, so it skips pydantic (the fields come from an
already validated job); :class:`Order` adds attribute access for readers in Python.
"""
from __future__ import annotations


class Order(dict):
    """A wire-ready order (``{"type": "launch"|"kill"|"remove", "task_id": ..., ...}``)."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def kill_order(task_id: str, grace_sec: float) -> Order:
    """Stop a task: SIGTERM, then SIGKILL after ``grace_sec``."""
    return Order(type="kill", task_id=task_id, grace_sec=float(grace_sec))


def remove_order(task_id: str) -> Order:
    """Forget a task the master does not know (or has archived)."""
    return Order(type="remove", task_id=task_id)
