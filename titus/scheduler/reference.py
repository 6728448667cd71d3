"""The reference twin: the scheduling semantics in plain Python.

``ReferenceScheduler`` has the public API of ``titus.Scheduler`` and implements
``docs/semantics.md`` as directly as possible, one task and one host at a time, with the same
floating-point operations in the same order. It exists to be obviously right, not fast: the
differential tests run it beside the native engine and demand identical results.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from titus._engine import CONSTRAINT_REASON_PREFIX, FIXED_REASONS, PORTS_REASON, SET_REASON_PREFIX
from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr, plain_constraint, value_text
from titus.readers import int_value, quantity
from titus.resources import BASE_RESOURCES
from titus.scheduler import gangs
from titus.scheduler import task_order as order
from titus.scheduler import validation as v
from titus.scheduler.failures import constraint_labels, group_limit_failure, make_failure
from titus.scheduler.model import Host, Result, Task, TaskClass
from titus.scheduler.tiekey import tiekey

EPS = v.EPS
# Reason names as the engine reports them (csrc/layout.hpp).
_, _DISABLED, _EXCLUSIVE = FIXED_REASONS


def _plain(constraints) -> tuple:
    """A task's constraints read as the engine's class key reads them (``plain_constraint``)."""
    return tuple(plain_constraint(c) for c in constraints)


def merge_ranges(ranges) -> list[tuple[int, int]]:
    """Sorted, non-overlapping inclusive port ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted((int_value(a), int_value(b)) for a, b in ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


@dataclass
class _Host:
    idx: int
    id: str
    cap: dict
    used: dict
    ports: list
    sets: dict  # name -> list of [label | None, used, slots]
    attrs: dict
    key: int
    enabled: bool = True
    tasks: set = field(default_factory=set)  # held-task keys
    exclusive: int = 0

    def free_ports(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ports) - len(self.used_ports)

    def __post_init__(self):
        self.used_ports: set[int] = set()


@dataclass
class _Held:
    key: object
    host: int
    demand: dict
    job: str | None
    group: str | None
    exclusive: bool
    ports: list
    sets: dict
    labels: dict = field(default_factory=dict)  # set name -> label asked
    priority: int = 0
    seq: int = 0  # hold order: lower is older


@dataclass
class _Ask:
    """A task as the placement loop sees it (from a Task or an array row)."""

    id: str | None
    demand: dict
    job: str | None
    group: str | None
    hard: tuple
    soft: tuple
    ports: int
    sets: dict
    priority: int = 0


class ReferenceScheduler:
    """Plain-Python scheduler with the same API and semantics as ``titus.Scheduler``.

    All or nothing, like the engine: every call is validated whole first (the same checks in
    ``titus.scheduler.validation``, so the same errors and messages) and a refused call
    changes nothing.
    """

    def __init__(self, fitness="cpu_mem_binpack", good_enough=None, group_limits=None, seed=0,
                 soft_weight=0.5, fitness_weight=0.35, index=True, task_order="given"):
        self._fitness = v.normalize_fitness(fitness)
        self._good_enough = v.check_good_enough(good_enough)
        self._limits = v.check_group_limits(group_limits)
        self._seed = v.check_seed(seed)
        self._ws, self._wf = v.check_weights(soft_weight, fitness_weight)
        self._task_order = order.check_task_order(task_order)
        v.check_flag(index, "index")  # the twin has no index, but takes what the engine takes
        self._resources: list[str] = list(BASE_RESOURCES)
        self._hosts: list[_Host | None] = []
        self._by_id: dict[str, int] = {}
        self._held: dict[object, _Held] = {}
        self._group_used: dict[str, dict[str, float]] = {}
        self._job_hosts: dict[str, dict[int, int]] = {}  # job -> host index -> co-tasks held
        self._anon = 0
        self._seq = 0    # holds so far (the hold order preemption reads)
        self._seq0 = 0   # the first seq of the current call
        self._quota: dict[str, int] = {}

    # ----------------------------------------------------------------- views
    @property
    def resources(self) -> tuple:
        """Resource names, in the column order of ``schedule_arrays``'s demand."""
        return tuple(self._resources)

    @property
    def host_ids(self) -> list:
        """Host index -> id (None where a host was removed)."""
        return [h.id if h else None for h in self._hosts]

    def __len__(self) -> int:
        return len(self._by_id)

    def _host(self, host_id) -> _Host:
        key = v.text(host_id)  # looked up by str's own == and hash, not a subclass's
        if key is None or key not in self._by_id:
            raise v.unknown_host(host_id)
        return self._hosts[self._by_id[key]]

    def host_usage(self, host_id) -> dict:
        """Resource -> amount held on the host."""
        h = self._host(host_id)
        return {r: h.used.get(r, 0.0) for r in self._resources}

    def host_free(self, host_id) -> dict:
        """Resource -> capacity left on the host."""
        h = self._host(host_id)
        return {r: h.cap.get(r, 0.0) - h.used.get(r, 0.0) for r in self._resources}

    def is_enabled(self, host_id) -> bool:
        """Whether new tasks may be placed on the host."""
        return self._host(host_id).enabled

    def _held_task(self, task_id):
        """The named held task, or None; the id looked up by ``str``'s own ``==`` and ``hash``."""
        key = v.text(task_id)
        return None if key is None else self._held.get(key)

    def task_host(self, task_id):
        """The host id holding the task, or None."""
        held = self._held_task(task_id)
        return self._hosts[held.host].id if held else None

    def task_priority(self, task_id):
        """The priority the task is held with, or None (see ``titus.Scheduler.task_priority``)."""
        held = self._held_task(task_id)
        return held.priority if held else None

    def held_tasks(self) -> dict:
        """Task id -> host id for every named task held, in hold order (oldest first)."""
        named = sorted(((k, t) for k, t in self._held.items() if isinstance(k, str)), key=lambda kt: kt[1].seq)
        return {k: self._hosts[t.host].id for k, t in named}

    @property
    def footprint(self) -> dict:
        """What the scheduler keeps, as counts (see ``titus.Scheduler.footprint``)."""
        return {"host_slots": len(self._hosts), "live_hosts": len(self), "jobs_seen": len(self._job_hosts),
                "held_tasks": len(self._held)}

    # ----------------------------------------------------------------- hosts
    def _note_scalars(self, scalars):
        for name in scalars:
            if name not in self._resources:
                self._resources.append(name)

    def add_hosts(self, hosts) -> None:
        """Add hosts, all or none: the batch is validated whole first (ValueError naming the
        host's index and field), then every host is built, then all are added."""
        hosts = v.check_hosts(hosts, self._by_id)
        first = len(self._hosts)
        fresh = [self._new_host(first + i, h) for i, h in enumerate(hosts)]
        for h, host in zip(hosts, fresh):
            self._note_scalars(h.scalars)
            self._hosts.append(host)
            self._by_id[host.id] = host.idx

    def _new_host(self, idx: int, h: Host) -> _Host:
        cap = {r: quantity(getattr(h, r)) for r in BASE_RESOURCES}
        cap.update({k: quantity(q) for k, q in h.scalars.items()})
        attrs = {k: value_text(val) for k, val in h.attributes.items()}
        attrs["hostname"] = h.id
        sets = {n: [[None, 0, int_value(sl)] for _ in range(int_value(ns))] for n, (ns, sl) in h.resource_sets.items()}
        return _Host(idx, h.id, cap, {}, merge_ranges(h.ports), sets, attrs, tiekey(h.id, self._seed))

    def add_host(self, host: Host) -> None:
        """Add one host."""
        self.add_hosts([host])

    def remove_host(self, host_id) -> list:
        """Remove a host; the tasks it held are dropped. Returns their ids (sorted).
        UnknownIdError if the host is not known."""
        h = self._host(host_id)
        dropped = [k for k in list(h.tasks)]
        for k in dropped:
            self._unhold(k)
        self._hosts[h.idx] = None
        del self._by_id[h.id]
        return sorted(k for k in dropped if isinstance(k, str))

    def remove_hosts(self, host_ids) -> list:
        """Remove hosts, all or none (every id checked first); returns the dropped task ids."""
        dropped = []
        for host_id in v.check_host_ids(host_ids, self._by_id):
            dropped += self.remove_host(host_id)
        return sorted(dropped)

    def disable_host(self, host_id) -> None:
        """No new placements on the host; what it holds stays. UnknownIdError if unknown."""
        self._host(host_id).enabled = False

    def enable_host(self, host_id) -> None:
        """Let new placements land on the host again. UnknownIdError if unknown."""
        self._host(host_id).enabled = True

    # ----------------------------------------------------------------- tasks
    def release(self, task_id) -> None:
        """The task ended: its resources go back to its host (UnknownIdError if not held)."""
        key = v.text(task_id)  # looked up by str's own == and hash, not a subclass's
        if key is None or key not in self._held:  # rows without ids stay
            raise v.unknown_task(task_id)
        self._unhold(key)

    def reset(self) -> None:
        """Drop every held task."""
        for k in list(self._held):
            self._unhold(k)
        for g in self._group_used.values():  # nothing held: exactly zero
            for r in g:
                g[r] = 0.0

    def set_group_limits(self, limits) -> None:
        """Replace the group limits for the calls that follow (ValueError naming the group and
        resource, and no change, if one is bad)."""
        self._limits = v.check_group_limits(limits)

    def set_eviction_quota(self, job, n) -> None:
        """How many of ``job``'s held tasks one ``preempt=True`` call may evict (None: none)."""
        job, n = v.check_eviction_quota(job, n)
        if n is None:
            self._quota.pop(job, None)
        else:
            self._quota[job] = n

    def add_running(self, task: Task, host_id, ports=None) -> None:
        """Hold an already-running task on a host, refusing any over-commit (checks in the
        engine's order: task and ports, host, then the fit)."""
        task, ports = v.check_running(task, ports, self._held)
        h = self._host(host_id)
        ask = self._ask_from_task(task)
        # A scalar no host has yet counts as capacity 0; it is noted only once the task is held.
        new_names = [name for name in task.scalars if name not in self._resources]
        for r in [*self._resources, *new_names]:
            if v.over(h.used.get(r, 0.0), ask.demand.get(r, 0.0), h.cap.get(r, 0.0)):
                raise ValueError(f"add_running: task {task.id!r} does not fit on host {host_id!r}: {r}")
        if ports is not None:
            for p in ports:
                if p in h.used_ports or not any(lo <= p <= hi for lo, hi in h.ports):
                    raise ValueError(f"add_running: task {task.id!r}: port {p} is not free on host {host_id!r}")
        elif h.free_ports() < ask.ports:
            raise ValueError(f"add_running: task {task.id!r} does not fit on host {host_id!r}: ports")
        for name in sorted(ask.sets):
            if self._pick_set(h, name, ask.sets[name]) is None:
                raise ValueError(
                    f"add_running: task {task.id!r} does not fit on host {host_id!r}: resource_set:{name}")
        exclusive = any(isinstance(c, ExclusiveHost) for c in ask.hard)
        self._note_scalars(task.scalars)
        self._hold(task.id, h, ask, exclusive, ports)

    def schedule(self, tasks, preempt=False) -> Result:
        """Place tasks in order, greedily (see docs/semantics.md), gangs whole or not at all,
        with preemption when asked. The batch is validated whole first: ValueError naming the
        task's index and field, and nothing placed."""
        tasks = v.check_tasks(tasks, self._held)
        preempt = v.check_flag(preempt, "preempt")
        for t in tasks:
            self._note_scalars(t.scalars)
        result = Result()
        tasks = order.placement_order(tasks, self._task_order)
        rows, gang = gangs.compose(None, gangs.task_gang_keys(tasks))
        if rows is not None:
            tasks = [tasks[i] for i in rows.tolist()]
        items = [(self._ask_from_task(t), t.id) for t in tasks]
        hosts, failures, culprit, victims = self._loop(items, gang.tolist(), preempt)
        for pos, key in victims:
            result.preemptions.setdefault(tasks[pos].id, []).append(key if isinstance(key, str) else None)
        for pos, t in enumerate(tasks):
            h = hosts[pos]
            if h is None:
                k = culprit[pos]
                result.failures[t.id] = (failures[pos] if k < 0 else
                                         gangs.gang_failure(t.gang, tasks[k].id, failures[k], len(self)))
                continue
            held = self._held[t.id]
            result.assignments[t.id] = h.id
            if held.ports:
                result.ports[t.id] = list(held.ports)
            if held.sets:
                result.resource_sets[t.id] = dict(held.sets)
        return result

    def schedule_arrays(self, demand, task_class, classes, task_ids=None, explain=False, preempt=False):
        """Rows of ``demand`` (columns in ``resources`` order) placed like ``schedule`` would.
        The arrays, classes and ids are validated whole first (ValueError, nothing placed).
        With ``explain=True``: ``(placements, {row: Failure})`` for the unplaced rows; with
        ``preempt=True`` the preemptions ``{row: [victim ids]}`` come last."""
        d, tc, classes, task_ids = v.check_arrays(demand, task_class, classes, self._resources,
                                                  task_ids, self._held)
        explain = v.check_flag(explain, "explain")
        preempt = v.check_flag(preempt, "preempt")
        out = np.full(d.shape[0], -1, dtype=np.int32)
        rows = order.row_order(tc, classes, self._task_order)
        rows, gang = gangs.compose(rows, gangs.class_gang_keys(tc, classes))
        order_rows = list(range(d.shape[0])) if rows is None else rows.tolist()
        items = []
        for i in order_rows:
            c: TaskClass = classes[tc[i]]
            ask = _Ask(None, {r: float(d[i, j]) for j, r in enumerate(self._resources)}, c.job, c.group,
                       _plain(c.hard), _plain(c.soft), int_value(c.ports), dict(c.resource_sets), int_value(c.priority))
            if task_ids is not None:
                key = task_ids[i]
            else:
                self._anon += 1
                key = ("anon", self._anon)
            items.append((ask, key))
        hosts, found, culprit, victims = self._loop(items, gang.tolist(), preempt)
        failures = {}
        for pos, i in enumerate(order_rows):
            if hosts[pos] is not None:
                out[i] = hosts[pos].idx
                continue
            k = culprit[pos]
            if k < 0:
                failures[i] = found[pos]
            else:
                member = task_ids[order_rows[k]] if task_ids is not None else f"row {order_rows[k]}"
                failures[i] = gangs.gang_failure(f"classes[{int(tc[i])}]", member, found[k], len(self))
        preemptions: dict = {}
        for pos, key in victims:
            preemptions.setdefault(order_rows[pos], []).append(key if isinstance(key, str) else None)
        preemptions = dict(sorted(preemptions.items()))
        failures = dict(sorted(failures.items()))
        if explain:
            return (out, failures, preemptions) if preempt else (out, failures)
        return (out, preemptions) if preempt else out

    def largest_free(self, resource: str) -> float:
        """The most of ``resource`` any live, enabled host has free; 0.0 with none."""
        v.resource_column(resource, self._resources)
        return max([0.0, *(h.cap.get(resource, 0.0) - h.used.get(resource, 0.0)
                           for h in self._live_hosts() if h.enabled)])

    # ----------------------------------------------------------------- internals
    def _ask_from_task(self, t: Task) -> _Ask:
        demand = {r: quantity(getattr(t, r)) for r in BASE_RESOURCES}
        demand.update({k: quantity(q) for k, q in t.scalars.items()})
        return _Ask(t.id, demand, t.job, t.group, _plain(t.hard), _plain(t.soft), int_value(t.ports),
                    dict(t.resource_sets), int_value(t.priority))

    def _live_hosts(self):
        return [h for h in self._hosts if h is not None]

    def _loop(self, items, gang, preempt: bool):
        """Place ``items`` [(ask, key)] in order; a run of equal gang ids >= 0 is one gang.
        Returns per position: host or None, Failure or None, the culprit position of a failed
        gang's member (-1 otherwise), and the evictions [(position, victim key)]."""
        n = len(items)
        hosts: list = [None] * n
        failures: list = [None] * n
        culprit = [-1] * n
        victims: list = []
        self._seq0 = self._seq
        quota = dict(self._quota) if preempt else None
        i = 0
        while i < n:
            g = gang[i]
            if g < 0:
                hosts[i], failures[i] = self._place(items[i][0], items[i][1], quota, victims, i)
                i += 1
                continue
            end = i + 1
            while end < n and gang[end] == g:
                end += 1
            log: list = []
            quota0 = None if quota is None else dict(quota)
            n_victims = len(victims)
            k = i
            while k < end:
                hosts[k], failures[k] = self._place(items[k][0], items[k][1], quota, victims, k, log)
                if hosts[k] is None:
                    break
                k += 1
            if k < end:  # member k failed: undo the gang's steps, newest first
                self._undo(log)
                if quota is not None:
                    quota.clear()
                    quota.update(quota0)
                del victims[n_victims:]
                for j in range(i, end):
                    hosts[j] = None
                    culprit[j] = k
            i = end
        return hosts, failures, culprit, victims

    def _place(self, ask: _Ask, key, quota=None, victims=None, pos=0, log=None):
        """One task through the pipeline; with ``quota`` (a dict job -> evictions left) a task
        that fits nowhere may preempt. Returns (host, None) or (None, Failure)."""
        hosts = self._live_hosts()
        if ask.group is not None and ask.group in self._limits:
            used = self._group_used.get(ask.group, {})
            for r, lim in self._limits[ask.group].items():
                if v.over(used.get(r, 0.0), ask.demand.get(r, 0.0), lim):
                    return None, group_limit_failure(ask.group, len(hosts))
        counts = self._attr_counts(ask)
        best = best_score = None
        good = None
        reasons: dict[str, int] = {}
        for h in hosts:
            reason = self._reject(ask, h, counts)
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
                continue
            score = self._score(ask, h, counts)
            if best is None or score > best_score or (score == best_score and h.key < best.key):
                best, best_score = h, score
            if self._good_enough is not None and score >= self._good_enough:
                if good is None or h.key < good.key:
                    good = h
        chosen = good if good is not None else best
        if chosen is None and quota is not None:
            chosen, evict = self._preempt_choose(ask, counts, quota)
            for held in evict:
                self._evict(held.key, log)
                quota[held.job] -= 1
                victims.append((pos, held.key))
        if chosen is None:
            return None, make_failure(reasons, len(hosts), constraint_labels(ask.hard))
        exclusive = any(isinstance(c, ExclusiveHost) for c in ask.hard)
        if log is not None:
            log.append(("hold", key, chosen.idx, dict(chosen.used), ask.group, self._group_copy(ask.group)))
        self._hold(key, chosen, ask, exclusive, None)
        return chosen, None

    # ----------------------------------------------------------------- preemption
    def _preempt_choose(self, ask: _Ask, counts, quota):
        """The host the task may take by evicting held tasks of lower priority, and the victims
        (oldest first): Kubernetes' order (docs/semantics.md, "Preemption"). (None, []) if none."""
        by_host: dict[int, list] = {}
        for held in self._held.values():
            if (held.priority >= ask.priority or held.seq >= self._seq0 or held.job is None
                    or quota.get(held.job, 0) <= 0):
                continue
            by_host.setdefault(held.host, []).append(held)
        best = None
        for idx in sorted(by_host):
            h = self._hosts[idx]
            eligible = sorted(by_host[idx], key=lambda t: (-t.priority, t.seq))  # most important first
            chosen = sorted(eligible, key=lambda t: t.seq)
            if not self._fits_without(ask, h, chosen, counts)[0]:
                continue
            for e in eligible:  # spare each one, most important first, while the task still fits
                trial = [t for t in chosen if t is not e]
                if self._fits_without(ask, h, trial, counts)[0]:
                    chosen = trial
            per_job: dict = {}
            for t in chosen:
                per_job[t.job] = per_job.get(t.job, 0) + 1
            if not chosen or any(n > quota[j] for j, n in per_job.items()):
                continue
            score = self._fits_without(ask, h, chosen, counts)[1]
            cost = (max(t.priority for t in chosen), sum(t.priority + 2**31 for t in chosen), len(chosen),
                    -score, h.key)
            if best is None or cost < best[0]:
                best = (cost, h, chosen)
        return (None, []) if best is None else (best[1], best[2])

    def _fits_without(self, ask: _Ask, h: _Host, victims, counts):
        """Whether the task passes feasibility on h once ``victims`` (oldest first) are gone, and
        its score there: (ok, score)."""
        if not h.enabled:
            return False, 0.0
        excl = h.exclusive - sum(t.exclusive for t in victims)
        n = len(h.tasks) - len(victims)
        free_ports = h.free_ports() + sum(len(t.ports) for t in victims)
        used = {r: h.used.get(r, 0.0) for r in self._resources}
        for t in victims:
            for r in self._resources:
                used[r] -= t.demand.get(r, 0.0)
        if n == 0:
            used = {r: 0.0 for r in used}
        if excl > 0 or (n > 0 and any(isinstance(c, ExclusiveHost) for c in ask.hard)):
            return False, 0.0
        for r in self._resources:
            if v.over(used[r], ask.demand.get(r, 0.0), h.cap.get(r, 0.0)):
                return False, 0.0
        if free_ports < ask.ports:
            return False, 0.0
        for name in sorted(ask.sets):
            sets = h.sets.get(name)
            if not sets:
                return False, 0.0
            su = [s[1] for s in sets]
            for t in victims:
                if name in t.sets:
                    su[t.sets[name]] -= 1
            label = ask.sets[name]
            if not (any(su[i] > 0 and sets[i][0] == label and su[i] < sets[i][2] for i in range(len(sets)))
                    or any(x == 0 for x in su)):
                return False, 0.0
        for c in ask.hard:
            if not self._satisfied(c, h, counts, n):
                return False, 0.0
        return True, self._score(ask, h, counts, used, n)

    # ----------------------------------------------------------------- gangs
    def _group_copy(self, group):
        return None if group is None else dict(self._group_used.get(group, {}))

    def _evict(self, key, log) -> None:
        held = self._held[key]
        if log is not None:
            h = self._hosts[held.host]
            log.append(("evict", held, held.host, dict(h.used), held.group, self._group_copy(held.group)))
        self._unhold(key)

    def _undo(self, log) -> None:
        """Undo a gang's holds and evictions, newest first, restoring usage rows exactly."""
        for kind, what, idx, used, group, group_used in reversed(log):
            h = self._hosts[idx]
            if kind == "hold":
                self._unhold(what)
            else:
                self._rehold(what)
            h.used.clear()
            h.used.update(used)
            if group is not None:
                self._group_used[group] = dict(group_used)
        log.clear()

    def _rehold(self, t: _Held) -> None:
        h = self._hosts[t.host]
        for r, q in t.demand.items():
            h.used[r] = h.used.get(r, 0.0) + q
        h.used_ports.update(t.ports)
        for name, i in t.sets.items():
            s = h.sets[name][i]
            s[0], s[1] = t.labels[name], s[1] + 1
        if t.job is not None:
            jh = self._job_hosts.setdefault(t.job, {})
            jh[t.host] = jh.get(t.host, 0) + 1
        h.tasks.add(t.key)
        h.exclusive += t.exclusive
        self._held[t.key] = t

    def _attr_counts(self, ask: _Ask) -> dict:
        """attr -> {value: co-tasks on hosts with that value}, for the attrs the task's constraints name."""
        attrs = {c.attr for c in (*ask.hard, *ask.soft) if isinstance(c, (UniqueHostAttr, BalancedHostAttr))}
        per_host = self._job_hosts.get(ask.job, {}) if ask.job is not None else {}
        out = {}
        for a in attrs:
            cnt: dict[str, int] = {}
            for idx, n in per_host.items():
                h = self._hosts[idx]
                if n and a in h.attrs:
                    cnt[h.attrs[a]] = cnt.get(h.attrs[a], 0) + n
            out[a] = cnt
        return out

    def _reject(self, ask: _Ask, h: _Host, counts) -> str | None:
        if not h.enabled:
            return _DISABLED
        if h.exclusive or (h.tasks and any(isinstance(c, ExclusiveHost) for c in ask.hard)):
            return _EXCLUSIVE
        for r in self._resources:
            if v.over(h.used.get(r, 0.0), ask.demand.get(r, 0.0), h.cap.get(r, 0.0)):
                return r
        if h.free_ports() < ask.ports:
            return PORTS_REASON
        for name in sorted(ask.sets):
            if self._pick_set(h, name, ask.sets[name]) is None:
                return SET_REASON_PREFIX + name
        for c in ask.hard:
            if not self._satisfied(c, h, counts):
                return CONSTRAINT_REASON_PREFIX + type(c).__name__
        return None

    def _satisfied(self, c, h: _Host, counts, n_tasks=None) -> bool:
        if isinstance(c, HostAttrValue):
            return c.attr in h.attrs and h.attrs[c.attr] in {value_text(x) for x in c.values}
        if isinstance(c, UniqueHostAttr):
            return c.attr in h.attrs and counts[c.attr].get(h.attrs[c.attr], 0) == 0
        if isinstance(c, ExclusiveHost):
            return not h.tasks if n_tasks is None else n_tasks == 0
        if isinstance(c, BalancedHostAttr):
            if c.attr not in h.attrs:
                return False
            cnt = counts[c.attr]
            n, k = sum(cnt.values()), int_value(c.expected_values)
            return cnt.get(h.attrs[c.attr], 0) + 1 <= (n + k) // k
        raise TypeError(c)

    def _soft_score(self, c, h: _Host, counts, n_tasks=None) -> float:
        if isinstance(c, BalancedHostAttr):
            if c.attr not in h.attrs:
                return 0.0
            cnt = counts[c.attr]
            nonzero = [n for n in cnt.values() if n > 0]
            m = min(nonzero) if len(nonzero) >= int_value(c.expected_values) else 0
            return 1.0 / (1.0 + float(max(0, cnt.get(h.attrs[c.attr], 0) - m)))
        return 1.0 if self._satisfied(c, h, counts, n_tasks) else 0.0

    def _util(self, ask: _Ask, h: _Host, r: str, used=None) -> float:
        cap = h.cap.get(r, 0.0)
        used = h.used if used is None else used
        return (used.get(r, 0.0) + ask.demand.get(r, 0.0)) / cap if cap > 0 else 0.0

    def _fit_one(self, name: str, ask: _Ask, h: _Host, used=None) -> float:
        u = h.used if used is None else used
        if name == v.FEWEST_HOSTS:
            if u.get("cpus", 0.0) > v.IN_USE_EPS or u.get("memory_mb", 0.0) > v.IN_USE_EPS:
                return 0.5 + 0.5 * ((self._util(ask, h, "cpus", u) + self._util(ask, h, "memory_mb", u)) / 2.0)
            size = h.cap.get("cpus", 0.0) * h.cap.get("memory_mb", 0.0)
            return 0.5 * (size / (1.0 + size))
        spread = name.endswith("_spread")
        rs = v.BINPACKERS[name.replace("_spread", "_binpack")]
        if len(rs) == 1:
            f = self._util(ask, h, rs[0], u)
        elif len(rs) == 2:
            f = (self._util(ask, h, rs[0], u) + self._util(ask, h, rs[1], u)) / 2.0
        else:
            f = (self._util(ask, h, rs[0], u) + self._util(ask, h, rs[1], u) + self._util(ask, h, rs[2], u)) / 3.0
        return 1.0 - f if spread else f

    def _score(self, ask: _Ask, h: _Host, counts, used=None, n_tasks=None) -> float:
        """The score of a feasible host; ``used``/``n_tasks`` stand in for the host's own when
        preemption weighs it with victims gone."""
        num = den = 0.0
        for name, w in self._fitness:
            num += w * self._fit_one(name, ask, h, used)
            den += w
        fit = num / den
        if ask.soft:
            total = 0.0
            for c in ask.soft:
                total += self._soft_score(c, h, counts, n_tasks)
            soft = total / len(ask.soft)
        else:
            soft = 1.0
        return (self._ws * soft + self._wf * fit) / (self._ws + self._wf)

    @staticmethod
    def _pick_set(h: _Host, name: str, label: str):
        sets = h.sets.get(name)
        if not sets:
            return None
        for i, (lab, used, slots) in enumerate(sets):
            if lab == label and used < slots:
                return i
        for i, (lab, _, _) in enumerate(sets):
            if lab is None:
                return i
        return None

    def _hold(self, key, h: _Host, ask: _Ask, exclusive: bool, ports) -> None:
        for r, q in ask.demand.items():
            h.used[r] = h.used.get(r, 0.0) + q
        if ports is None:
            ports = []
            need = ask.ports
            for lo, hi in h.ports:
                p = lo
                while need and p <= hi:
                    if p not in h.used_ports:
                        ports.append(p)
                        need -= 1
                    p += 1
                if not need:
                    break
        h.used_ports.update(ports)
        sets = {}
        for name in sorted(ask.sets):
            i = self._pick_set(h, name, ask.sets[name])
            s = h.sets[name][i]
            s[0], s[1] = ask.sets[name], s[1] + 1
            sets[name] = i
        if ask.group is not None:
            g = self._group_used.setdefault(ask.group, {})
            for r, q in ask.demand.items():
                g[r] = g.get(r, 0.0) + q
        if ask.job is not None:
            jh = self._job_hosts.setdefault(ask.job, {})
            jh[h.idx] = jh.get(h.idx, 0) + 1
        h.tasks.add(key)
        h.exclusive += exclusive
        self._held[key] = _Held(key, h.idx, dict(ask.demand), ask.job, ask.group, exclusive, list(ports), sets,
                                dict(ask.sets), ask.priority, self._seq)
        self._seq += 1

    def _unhold(self, key) -> None:
        t = self._held.pop(key)
        h = self._hosts[t.host]
        for r, q in t.demand.items():
            h.used[r] = h.used.get(r, 0.0) - q
        h.used_ports.difference_update(t.ports)
        for name, i in t.sets.items():
            s = h.sets[name][i]
            s[1] -= 1
            if s[1] == 0:
                s[0] = None
        if t.group is not None:
            g = self._group_used[t.group]
            for r, q in t.demand.items():
                g[r] = g.get(r, 0.0) - q
        if t.job is not None:
            self._job_hosts[t.job][t.host] -= 1
        h.tasks.discard(key)
        if not h.tasks:  # an empty host holds exactly nothing: no rounding residue
            for r in h.used:
                h.used[r] = 0.0
        h.exclusive -= t.exclusive
