"""The order a scheduling call places its tasks in (shared by the engine wrapper and the twin).

``"given"`` places tasks in the caller's order (Fenzo's way). ``"interleave_jobs"`` spreads each
job's tasks evenly through the call: hosts then fill with a mix of jobs -- cpu-heavy beside
memory-heavy -- instead of one job's profile each, which strands less capacity on clusters of
mixed machine shapes. It is a permutation only: the placement rules are unchanged.
"""
from __future__ import annotations

import numpy as np

from titus.readers import text

TASK_ORDERS = ("given", "interleave_jobs")


def check_task_order(task_order) -> str:
    """``task_order`` if it is one of TASK_ORDERS, else ValueError naming the choices."""
    name = text(task_order)  # not a subclass's ==
    if name not in TASK_ORDERS:
        raise ValueError(f"task_order must be one of {', '.join(TASK_ORDERS)}, got {task_order!r}")
    return name


def interleave_jobs(job_codes: np.ndarray) -> np.ndarray:
    """The placement order for tasks of jobs ``job_codes`` (int64[N]; -1: no job, a job of one).

    The k-th of a job's n tasks in the call goes at position key ``(k + 0.5) / n``; equal keys
    go by the job's first appearance. Returns int64[N]: the input rows in placement order.
    """
    codes = np.asarray(job_codes, dtype=np.int64)
    n = codes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    alone = codes < 0
    if alone.any():  # each task without a job is a job of its own
        codes = codes.copy()
        codes[alone] = codes.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    _, first, inverse, counts = np.unique(codes, return_index=True, return_inverse=True,
                                          return_counts=True)
    inverse = inverse.reshape(-1)
    by_job = np.argsort(inverse, kind="stable")           # rows grouped by job, input order within
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[by_job] = np.arange(n) - np.repeat(starts, counts)
    key = (rank + 0.5) / counts[inverse]
    return np.lexsort((first[inverse], key))


def job_codes_of_tasks(tasks) -> np.ndarray:
    """Job codes (first appearance order; -1 for no job) of a list of Task objects."""
    seen: dict = {}
    return np.fromiter((-1 if t.job is None else seen.setdefault(t.job, len(seen)) for t in tasks),
                       dtype=np.int64, count=len(tasks))


def job_codes_of_rows(task_class: np.ndarray, classes) -> np.ndarray:
    """Job codes of array rows: each row's class's job (-1 for no job)."""
    seen: dict = {}
    per_class = np.fromiter((-1 if c.job is None else seen.setdefault(c.job, len(seen)) for c in classes),
                            dtype=np.int64, count=len(classes))
    return per_class[np.asarray(task_class, dtype=np.int64)]


def placement_order(tasks: list, task_order: str) -> list:
    """``tasks`` in the order a call places them."""
    if task_order == "given" or len(tasks) < 2:
        return tasks
    return [tasks[i] for i in interleave_jobs(job_codes_of_tasks(tasks)).tolist()]


def row_order(task_class: np.ndarray, classes, task_order: str) -> np.ndarray | None:
    """The rows of an array call in placement order, or None for the given order."""
    if task_order == "given" or len(task_class) < 2:
        return None
    return interleave_jobs(job_codes_of_rows(task_class, classes))


def in_input_order(out: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """Per-row results computed in placement order ``rows``, back in the caller's row order."""
    if rows is None:
        return out
    back = np.empty_like(out)
    back[rows] = out
    return back
