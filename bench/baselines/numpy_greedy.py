"""The baseline a Python user would write: numpy, one task at a time, all hosts at once.

For each task: a vectorised feasibility mask over every host, a vectorised score of every host
with the same fitness, soft-constraint blend and weights as the engine, infeasible hosts masked
to -inf, and ``argmax``. Hosts are kept in tie-key order so that ``argmax`` (first maximum) breaks ties
exactly as docs/semantics.md says; every float is computed with the same operations in the same
order as the reference twin, so the placements are identical (tests/test_bench_baselines.py).

Supports the four resources, the four constraint kinds (hard and soft) and named fitness mixes;
not ports, scalars, resource sets, group limits or ``good_enough`` (the benchmark workloads use
none of them).
"""
from __future__ import annotations

import time

import numpy as np

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler import validation
from titus.scheduler.tiekey import tiekey

EPS = validation.EPS


class NumpyGreedy:
    """Greedy placement with vectorised numpy over hosts (see the module docstring).

    ``capacity`` float64[H, R] in ``resources`` order; ``attributes`` maps an attribute name to
    a sequence of H values (None where a host lacks it); ``hostname`` is added from ``host_ids``.
    """

    def __init__(self, capacity, host_ids, attributes, resources, fitness="cpu_mem_binpack",
                 seed=0, soft_weight=0.5, fitness_weight=0.35):
        capacity = np.asarray(capacity, dtype=np.float64)
        self._fitness = validation.normalize_fitness(fitness)
        self._ws, self._wf = validation.check_weights(soft_weight, fitness_weight)
        self._resources = tuple(resources)
        keys = np.array([tiekey(h, seed) for h in host_ids], dtype=np.uint64)
        self._order = np.argsort(keys, kind="stable")  # position -> original host index
        # resource-major [R, H]: each resource's column is contiguous for the vector ops
        self._cap = np.ascontiguousarray(capacity[self._order].T)
        self._cap_eps = self._cap + EPS
        self._has_cap = self._cap > 0
        self._all_cap = bool(self._has_cap.all())
        self._safe_cap = np.where(self._has_cap, self._cap, 1.0)
        self._used = np.zeros_like(self._cap)
        self._tasks_on = np.zeros(len(host_ids), dtype=np.int64)
        self._exclusive_on = np.zeros(len(host_ids), dtype=bool)
        attrs = {name: list(values) for name, values in attributes.items()}
        attrs["hostname"] = list(host_ids)
        self._codes, self._values = {}, {}
        for name, values in attrs.items():
            ordered = [values[i] for i in self._order]
            distinct = sorted({str(x) for x in ordered if x is not None})
            index = {x: k for k, x in enumerate(distinct)}
            self._values[name] = distinct
            self._codes[name] = np.array(
                [index[str(x)] if x is not None else -1 for x in ordered], dtype=np.int64)
        self._job_counts: dict[str, dict[str, np.ndarray]] = {}  # job -> attr -> per value
        self._placed: list[tuple[str | None, int]] = []  # (job, position) of every placement
        self._static: dict[tuple, np.ndarray] = {}

    @property
    def hosts_used(self) -> int:
        """Hosts holding at least one task."""
        return int(np.count_nonzero(self._tasks_on))

    def schedule_arrays(self, demand, task_class, classes, time_budget=None, progress=None):
        """Place rows in order; returns (int32[N] host index or -1, rows done).

        With ``time_budget`` seconds, stops after the row that crosses it (the rows done are a
        prefix, so their placements equal any exact scheduler's on the same prefix).
        ``progress`` is called with the number of rows done every 256 rows.
        """
        demand = np.asarray(demand, dtype=np.float64)
        task_class = np.asarray(task_class)
        out = np.full(len(demand), -1, dtype=np.int32)
        plans = [self._plan(c) for c in classes]
        start = time.perf_counter()
        done = 0
        for i in range(len(demand)):
            position = self._place(demand[i], plans[task_class[i]])
            if position >= 0:
                out[i] = self._order[position]
            done = i + 1
            if done % 256 == 0:
                if progress is not None:
                    progress(done)
                if time_budget is not None and time.perf_counter() - start > time_budget:
                    break
        return out, done

    # ------------------------------------------------------------------ internals
    def _plan(self, cls):
        """What a task class needs per task: its static mask and its dynamic checks."""
        static = np.ones(self._cap.shape[1], dtype=bool)
        for c in cls.hard:
            if isinstance(c, HostAttrValue):
                static &= self._attr_mask(c)
        attrs = {c.attr for c in (*cls.hard, *cls.soft)
                 if isinstance(c, (UniqueHostAttr, BalancedHostAttr))}
        for attr in attrs:
            if attr not in self._codes:
                self._codes[attr] = np.full(self._cap.shape[1], -1, dtype=np.int64)
                self._values[attr] = []
            if cls.job is not None:
                self._counts(cls.job, attr)
        return cls, static

    def _attr_mask(self, c: HostAttrValue) -> np.ndarray:
        key = (c.attr, tuple(str(x) for x in c.values))
        if key not in self._static:
            codes = self._codes.get(c.attr)
            if codes is None:
                self._static[key] = np.zeros(self._cap.shape[1], dtype=bool)
            else:
                wanted = [k for k, x in enumerate(self._values[c.attr]) if x in key[1]]
                self._static[key] = np.isin(codes, wanted)
        return self._static[key]

    def _counts(self, job: str, attr: str) -> np.ndarray:
        """Co-tasks of ``job`` per value of ``attr`` (built from past placements when new)."""
        per_attr = self._job_counts.setdefault(job, {})
        counts = per_attr.get(attr)
        if counts is None:
            counts = np.zeros(len(self._values[attr]) + 1, dtype=np.int64)  # last: no value
            codes = self._codes[attr]
            for j, position in self._placed:
                if j == job and codes[position] >= 0:
                    counts[codes[position]] += 1
            per_attr[attr] = counts
        return counts

    def _place(self, d: np.ndarray, plan) -> int:
        cls, static = plan
        mask = static & ~self._exclusive_on
        for j in range(len(d)):  # resources in order: used + demand must not exceed capacity
            mask &= self._used[j] + d[j] <= self._cap_eps[j]
        hard_exclusive = False
        for c in cls.hard:
            if isinstance(c, HostAttrValue):
                continue
            if isinstance(c, ExclusiveHost):
                hard_exclusive = True
            mask &= self._satisfied(c, cls.job)
        if hard_exclusive:
            mask &= self._tasks_on == 0
        if not mask.any():
            return -1
        score = np.where(mask, self._score(d, cls), -np.inf)
        position = int(np.argmax(score))  # first maximum = lowest tie key
        self._hold(d, cls.job, position, hard_exclusive)
        return position

    def _satisfied(self, c, job) -> np.ndarray:
        """bool[H]: does each host satisfy constraint ``c`` for a task of ``job``?"""
        if isinstance(c, HostAttrValue):
            return self._attr_mask(c)
        if isinstance(c, ExclusiveHost):
            return self._tasks_on == 0
        codes = self._codes[c.attr]
        counts = self._counts(job, c.attr) if job is not None else np.zeros(
            len(self._values[c.attr]) + 1, dtype=np.int64)
        here = counts[codes]  # code -1 reads the "no value" slot, always 0
        if isinstance(c, UniqueHostAttr):
            return (codes >= 0) & (here == 0)
        n, k = int(counts.sum()), int(c.expected_values)
        return (codes >= 0) & (here + 1 <= (n + k) // k)

    def _soft(self, c, job) -> np.ndarray:
        if isinstance(c, BalancedHostAttr):
            codes = self._codes[c.attr]
            counts = (self._counts(job, c.attr)[:-1] if job is not None
                      else np.zeros(len(self._values[c.attr]), dtype=np.int64))
            nonzero = counts[counts > 0]
            m = int(nonzero.min()) if len(nonzero) >= int(c.expected_values) else 0
            per_value = 1.0 / (1.0 + np.maximum(0, counts - m).astype(np.float64))
            per_value = np.append(per_value, 0.0)  # code -1: the host lacks the attribute
            return per_value[codes]
        return np.where(self._satisfied(c, job), 1.0, 0.0)

    def _util(self, d, r: str) -> np.ndarray:
        j = self._resources.index(r)
        u = (self._used[j] + d[j]) / self._safe_cap[j]
        return u if self._all_cap else np.where(self._has_cap[j], u, 0.0)

    def _fit_one(self, name: str, d) -> np.ndarray:
        if name == validation.FEWEST_HOSTS:
            c, m = self._resources.index("cpus"), self._resources.index("memory_mb")
            in_use = (self._used[c] > validation.IN_USE_EPS) | (self._used[m] > validation.IN_USE_EPS)
            size = self._cap[c] * self._cap[m]
            packed = 0.5 + 0.5 * ((self._util(d, "cpus") + self._util(d, "memory_mb")) / 2.0)
            return np.where(in_use, packed, 0.5 * (size / (1.0 + size)))
        rs = validation.BINPACKERS[name.replace("_spread", "_binpack")]
        if len(rs) == 1:
            f = self._util(d, rs[0])
        elif len(rs) == 2:
            f = (self._util(d, rs[0]) + self._util(d, rs[1])) / 2.0
        else:
            f = (self._util(d, rs[0]) + self._util(d, rs[1]) + self._util(d, rs[2])) / 3.0
        return 1.0 - f if name.endswith("_spread") else f

    def _score(self, d, cls) -> np.ndarray:
        num, den = 0.0, 0.0
        for name, w in self._fitness:
            num = num + w * self._fit_one(name, d)
            den += w
        fit = num / den
        if cls.soft:
            total = 0.0
            for c in cls.soft:
                total = total + self._soft(c, cls.job)
            soft = total / len(cls.soft)
        else:
            soft = 1.0
        return (self._ws * soft + self._wf * fit) / (self._ws + self._wf)

    def _hold(self, d, job, position: int, exclusive: bool) -> None:
        self._used[:, position] += d
        self._tasks_on[position] += 1
        if exclusive:
            self._exclusive_on[position] = True
        if job is not None:
            for attr, counts in self._job_counts.get(job, {}).items():
                code = self._codes[attr][position]
                if code >= 0:
                    counts[code] += 1
        self._placed.append((job, position))
