"""Lower bounds on the number of hosts any placement needs.

Two bounds, both valid for any packing (no placement can use fewer hosts):

- ``greedy``: for each resource alone, the fewest hosts whose capacities cover the total demand
  (take hosts largest-first); the bound is the maximum over resources. On equal hosts this is
  the classic ``max over r of ceil(total demand[r] / capacity[r])``.
- ``lp``: the fractional packing LP over host types -- minimise ``sum_k y_k`` subject to
  ``sum_k y_k * capacity[k, r] >= demand[r]`` for every resource and ``0 <= y_k <= count_k`` --
  rounded up. It is never below ``greedy`` and equals it on equal hosts. Solved with OR-Tools'
  GLOP when ``ortools`` is installed (the ``bench`` extra); ``method="auto"`` falls back to
  ``greedy`` otherwise, and the result says which method was used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_EPS = 1e-9
METHODS = ("auto", "lp", "greedy")


@dataclass(frozen=True)
class HostBound:
    """A lower bound on hosts: ``hosts`` (None when the demand exceeds the whole cluster)."""

    hosts: int | None
    method: str


def lower_bound_hosts(capacity: np.ndarray, total_demand: np.ndarray,
                      method: str = "auto") -> HostBound:
    """Lower bound on the hosts (rows of ``capacity[H, R]``) needed to hold ``total_demand[R]``.

    ``method`` is ``"auto"`` (LP if OR-Tools is importable, else greedy), ``"lp"`` or
    ``"greedy"``. Resources with zero total demand are ignored.
    """
    capacity = np.asarray(capacity, dtype=np.float64)
    total_demand = np.asarray(total_demand, dtype=np.float64)
    if capacity.ndim != 2 or total_demand.shape != (capacity.shape[1],):
        raise ValueError(
            f"capacity must be [hosts, resources] and total_demand [resources], "
            f"got {capacity.shape} and {total_demand.shape}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        method = "lp" if _ortools_available() else "greedy"
    wanted = total_demand > _EPS
    if not wanted.any():
        return HostBound(0, method)
    if np.any(capacity[:, wanted].sum(axis=0) < total_demand[wanted] * (1 - _EPS)):
        return HostBound(None, method)
    if method == "greedy":
        return HostBound(_greedy(capacity[:, wanted], total_demand[wanted]), method)
    return HostBound(_lp(capacity[:, wanted], total_demand[wanted]), method)


def _greedy(capacity: np.ndarray, demand: np.ndarray) -> int:
    best = 0
    for r in range(len(demand)):
        covered = np.cumsum(np.sort(capacity[:, r])[::-1])
        best = max(best, int(np.searchsorted(covered, demand[r] * (1 - _EPS))) + 1)
    return best


def _lp(capacity: np.ndarray, demand: np.ndarray) -> int:
    from ortools.linear_solver import pywraplp

    types, counts = np.unique(capacity, axis=0, return_counts=True)
    solver = pywraplp.Solver.CreateSolver("GLOP")
    y = [solver.NumVar(0.0, float(n), f"y{k}") for k, n in enumerate(counts)]
    for r in range(len(demand)):
        # scaled to the largest capacity so every row is well conditioned
        scale = float(types[:, r].max())
        solver.Add(sum(y[k] * (types[k, r] / scale) for k in range(len(types)))
                   >= demand[r] / scale * (1 - _EPS))
    solver.Minimize(sum(y))
    status = solver.Solve()
    if status != pywraplp.Solver.OPTIMAL:  # pragma: no cover - the LP is feasible by the check above
        raise RuntimeError(f"the host lower-bound LP did not solve (status {status})")
    value = solver.Objective().Value()
    # never below the greedy bound: guards against the LP's tolerance rounding down
    return max(math.ceil(value - 1e-6), _greedy(capacity, demand))


def _ortools_available() -> bool:
    try:
        import ortools.linear_solver.pywraplp  # noqa: F401
    except ImportError:
        return False
    return True
