"""Optimal host count with OR-Tools CP-SAT, for judging packing quality on small instances.

Pure multi-resource bin packing (constraints ignored): tasks with equal demand are one item type
``g`` with a count ``n_g``; ``x[g, h]`` tasks of type g go on host h, ``y[h]`` says h is used;
minimise ``sum y``. Quantities are scaled to integers per resource (by the smallest power of ten
that makes them whole, up to 10**6; otherwise demand is rounded up and capacity down, which can
only make the optimum larger). Hosts with equal capacity are interchangeable, so within such a
type host ``h+1`` is used only if host ``h`` is (symmetry breaking).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CpSatResult:
    """``hosts`` best host count found, ``bound`` CP-SAT's proven lower bound, ``status`` name."""

    hosts: int | None
    bound: int
    status: str
    seconds: float

    @property
    def optimal(self) -> bool:
        """Whether ``hosts`` is proven optimal."""
        return self.status == "OPTIMAL"


def min_hosts(capacity: np.ndarray, demand: np.ndarray, time_limit: float = 20.0,
              workers: int = 2, hint: np.ndarray | None = None) -> CpSatResult:
    """The fewest hosts of ``capacity[H, R]`` that hold every row of ``demand[N, R]``.

    ``hint`` (int[N], host index per task) seeds the search with a known packing.
    """
    from ortools.sat.python import cp_model

    capacity = np.asarray(capacity, dtype=np.float64)
    demand = np.asarray(demand, dtype=np.float64)
    cap_int, dem_int = _integer_scale(capacity, demand)
    items, item_of_task, counts = np.unique(dem_int, axis=0, return_inverse=True,
                                            return_counts=True)
    item_of_task = item_of_task.reshape(-1)
    hosts = len(capacity)
    model = cp_model.CpModel()
    used = [model.NewBoolVar(f"y{h}") for h in range(hosts)]
    x = [[model.NewIntVar(0, int(counts[g]), f"x{g}_{h}") for h in range(hosts)]
         for g in range(len(items))]
    for g in range(len(items)):
        model.Add(sum(x[g]) == int(counts[g]))
    for h in range(hosts):
        for r in range(capacity.shape[1]):
            if not items[:, r].any():
                continue
            model.Add(sum(int(items[g, r]) * x[g][h] for g in range(len(items)))
                      <= int(cap_int[h, r]) * used[h])
    _break_symmetry(model, used, cap_int)
    model.Minimize(sum(used))
    if hint is not None:
        _add_hint(model, x, used, item_of_task, np.asarray(hint), len(items), cap_int)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = int(workers)
    start = time.perf_counter()
    status = solver.Solve(model)
    seconds = time.perf_counter() - start
    name = solver.StatusName(status)
    found = int(round(solver.ObjectiveValue())) if name in ("OPTIMAL", "FEASIBLE") else None
    return CpSatResult(found, int(np.ceil(solver.BestObjectiveBound() - 1e-6)), name, seconds)


def _integer_scale(capacity, demand):
    cap_int = np.empty_like(capacity)
    dem_int = np.empty_like(demand)
    for r in range(capacity.shape[1]):
        values = np.concatenate([capacity[:, r], demand[:, r]])
        for scale in (10.0 ** p for p in range(7)):
            if np.allclose(values * scale, np.round(values * scale), rtol=0, atol=1e-6):
                break
        cap_int[:, r] = np.floor(capacity[:, r] * scale + 1e-6)
        dem_int[:, r] = np.ceil(demand[:, r] * scale - 1e-6)
    return cap_int.astype(np.int64), dem_int.astype(np.int64)


def _break_symmetry(model, used, cap_int):
    for members in _types(cap_int).values():
        for a, b in zip(members, members[1:]):
            model.Add(used[a] >= used[b])


def _add_hint(model, x, used, item_of_task, hint, items, cap_int):
    """Hint a known packing, relabelled so each host type fills its lowest indices first
    (the symmetry breaking above would reject it otherwise)."""
    per = np.zeros((items, len(used)), dtype=np.int64)
    for task, host in enumerate(hint.tolist()):
        if host >= 0:
            per[item_of_task[task], host] += 1
    relabelled = np.zeros_like(per)
    for members in _types(cap_int).values():
        busy = [h for h in members if per[:, h].any()]
        for target, source in zip(members, busy):
            relabelled[:, target] = per[:, source]
    for h in range(len(used)):
        model.AddHint(used[h], bool(relabelled[:, h].any()))
        for g in range(items):
            model.AddHint(x[g][h], int(relabelled[g, h]))


def _types(cap_int) -> dict[tuple, list[int]]:
    """Host indices grouped by equal capacity row."""
    by_type: dict[tuple, list[int]] = {}
    for h, row in enumerate(cap_int.tolist()):
        by_type.setdefault(tuple(row), []).append(h)
    return by_type
