"""Gangs: tasks placed all together or none in one call (docs/semantics.md, "Gangs").

Shared by the engine wrapper and the twin, so both order a call's tasks and word a gang's
failure the same way. A gang is tried when its first member comes, with all its members in the
call's order: the members are moved up to stand right after each other there (a stable
reordering; tasks outside gangs keep their order). The engine then sees each gang as a run of
rows with one gang id.
"""
from __future__ import annotations

import numpy as np

from titus.scheduler.model import Failure

GANG = "gang"  # the reason of every member of a gang that could not be placed whole


def gang_order(keys: np.ndarray) -> np.ndarray | None:
    """The placement order of rows whose gang ids are ``keys`` (int, -1 outside a gang): each
    gang's rows moved up to its first row, in their own order. None when there is no gang."""
    n = keys.shape[0]
    member = keys >= 0
    if not member.any():
        return None
    pos = np.arange(n, dtype=np.int64)
    first = np.full(int(keys.max()) + 1, n, dtype=np.int64)
    np.minimum.at(first, keys[member], pos[member])
    anchor = np.where(member, first[np.where(member, keys, 0)], pos)
    return np.argsort(anchor, kind="stable")


def task_gang_keys(tasks) -> np.ndarray:
    """Gang ids of tasks (their gang names numbered by first appearance; -1 for none)."""
    ids: dict = {}
    return np.array([-1 if t.gang is None else ids.setdefault(t.gang, len(ids)) for t in tasks],
                    dtype=np.int32)


def class_gang_keys(task_class: np.ndarray, classes) -> np.ndarray:
    """Gang ids of array rows: the class index for a class with ``gang=True``, else -1."""
    return gang_keys(task_class, np.array([bool(c.gang) for c in classes], dtype=bool))


def gang_keys(task_class: np.ndarray, is_gang: np.ndarray) -> np.ndarray:
    """Gang ids of array rows from each class's gang flag (bool[K]): as ``class_gang_keys``."""
    if not is_gang.any():
        return np.full(task_class.shape[0], -1, dtype=np.int32)
    return np.where(is_gang[task_class], task_class, -1).astype(np.int32)


def compose(rows: np.ndarray | None, keys: np.ndarray):
    """Apply the gang order on top of ``rows`` (a placement order or None) for rows whose gang
    ids, in the caller's order, are ``keys``. Returns (rows or None, keys in placement order)."""
    placed = keys if rows is None else keys[rows]
    extra = gang_order(placed)
    if extra is None:
        return rows, placed
    rows = extra if rows is None else rows[extra]
    return rows, keys[rows]


def gang_failure(name: str, member: str, why: Failure, n_hosts: int) -> Failure:
    """The Failure of every member of a gang whose ``member`` could not be placed for ``why``:
    counts ``{"gang": n_hosts}``, message ``gang g1: member t7 fits no host (0/10 hosts: 10 cpus)``."""
    return Failure(counts={GANG: n_hosts}, message=f"gang {name}: member {member} fits no host ({why.message})")
