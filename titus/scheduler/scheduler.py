"""``Scheduler``: the public scheduling API over the native engine.

The engine (``titus._engine``, C++) owns host state and held tasks; the codec (``titus._codec``,
Cython) interns names and packs objects into arrays. This class validates every call whole
(``titus.scheduler.validation``) before anything changes, then crosses the boundary once per
call. The exact semantics are in ``docs/semantics.md``; ``titus.scheduler.reference`` is a
plain-Python twin held to the same results.
"""
from __future__ import annotations

import math
from itertools import compress

import numpy as np

from titus._codec import Codec, record_placements
from titus import _engine
from titus._engine import REASON_RESOURCE0, Engine
from titus.constraints import ExclusiveHost
from titus.readers import int_value, quantity
from titus.resources import BASE_RESOURCES
from titus.scheduler import gangs
from titus.scheduler import task_order as order
from titus.scheduler import validation as v
from titus.scheduler.model import Host, Result, Task

# Engine codes of the named fitness functions (csrc/fitness.hpp).
FITNESS_CODES = {name: code for name, (code, _) in _engine.FITNESS_KINDS.items()}
# Hosts encoded and added per engine call (Scheduler.add_hosts).
_ADD_PART = 8192


class Scheduler:
    """Places tasks on hosts, Fenzo style, and remembers what it placed.

    - ``fitness``: a name (``cpu_binpack``, ``memory_binpack``, ``network_binpack``,
      ``cpu_mem_binpack``, ``cpu_mem_network_binpack``, a ``*_spread``, or
      ``cpu_mem_fewest_hosts``: hosts in use first, empty ones largest first) or a weighted mix
      ``{"cpu_binpack": 2, "memory_spread": 1}``; utilisation is measured after placing the task.
    - ``good_enough``: stop at the first host (in tie-key order) whose score reaches it.
    - ``group_limits``: ``{"g1": {"cpus": 64}}``; a task that would take its group over a limit
      fails with reason ``group_limit``.
    - ``seed``: orders hosts of equal score (``splitmix64(fnv1a64(id) ^ splitmix64(seed))``,
      lowest first), so the same input and seed give the same placement.
    - ``soft_weight``/``fitness_weight``: score = (ws * mean soft score + wf * fitness) / (ws + wf).
    - ``index``: let the engine use its indexes (results are identical either way; off means a
      full scan of every host per task, for benchmarks).
    - ``task_order``: ``"given"`` places each call's tasks in the caller's order;
      ``"interleave_jobs"`` spreads each job's tasks evenly through the call first (hosts get a
      mix of jobs: fewer hosts on clusters of mixed shapes; see ``titus.scheduler.task_order``).

    Hosts and held tasks persist between calls: a placed task holds its resources until
    ``release``, ``remove_host`` or ``reset``. Resources are never over-committed.

    All or nothing: every call is validated whole first, and a refused call raises and changes
    nothing. Bad input raises ValueError naming the argument, index and field (``hosts[1].id:
    'b\\ud800' is not encodable as UTF-8 (lone surrogate)``); a wrong type raises
    ``InputTypeError`` (a ValueError and a TypeError), an unknown host or task id
    ``UnknownIdError`` (a KeyError and a ValueError). See ``titus.scheduler.validation`` and
    docs/semantics.md.
    """

    def __init__(self, fitness="cpu_mem_binpack", good_enough=None, group_limits=None, seed=0,
                 soft_weight=0.5, fitness_weight=0.35, index=True, task_order="given"):
        self._fitness = v.normalize_fitness(fitness)
        self._good_enough = v.check_good_enough(good_enough)
        self._limits = v.check_group_limits(group_limits)
        self._seed = v.check_seed(seed)
        self._ws, self._wf = v.check_weights(soft_weight, fitness_weight)
        self._task_order = order.check_task_order(task_order)
        index = v.check_flag(index, "index")
        self._codec = Codec()
        self._engine = Engine(
            len(self._codec.resources), self._seed,
            [FITNESS_CODES[name] for name, _ in self._fitness], [w for _, w in self._fitness],
            self._ws, self._wf, math.nan if self._good_enough is None else self._good_enough, bool(index))
        self._host_ids: list = self._codec.host_index.ids  # host index -> id, None once removed
        self._task_slot: dict = {}       # named held task -> engine slot
        self._slot_task: dict = {}       # engine slot -> named held task
        self._quota: dict = {}           # job -> tasks of it one call may evict (preemption)

    # ----------------------------------------------------------------- views
    @property
    def resources(self) -> tuple:
        """Resource names, in the column order of ``schedule_arrays``'s demand:
        ``("cpus", "memory_mb", "disk_mb", "network_mbps", *scalars in the order first seen)``."""
        return tuple(self._codec.resources)

    @property
    def host_ids(self) -> list:
        """Host index -> id (``None`` where a host was removed; indices are never reused)."""
        return list(self._host_ids)

    def __len__(self) -> int:
        """The number of live (not removed) hosts."""
        return len(self._codec.host_index)

    def _index(self, host_id) -> int:
        key = v.text(host_id)  # looked up by str's own == and hash, not a subclass's
        idx = None if key is None else self._codec.host_index.get(key)
        if idx is None:
            raise v.unknown_host(host_id)
        return idx

    def host_usage(self, host_id) -> dict:
        """Resource -> amount held on the host by the tasks it holds."""
        used = self._engine.used(self._index(host_id)).tolist()
        return dict(zip(self._codec.resources, used))

    def host_free(self, host_id) -> dict:
        """Resource -> capacity left on the host (capacity - used)."""
        idx = self._index(host_id)
        cap, used = self._engine.cap(idx).tolist(), self._engine.used(idx).tolist()
        return {r: c - u for r, c, u in zip(self._codec.resources, cap, used)}

    def largest_free(self, resource: str) -> float:
        """The most of ``resource`` (a name in ``resources``) that any live, enabled host has
        free (capacity - used); 0.0 when there is no such host. ValueError for an unknown name."""
        col = v.resource_column(resource, self._codec.resources)
        return self._engine.largest_free(col)

    def is_enabled(self, host_id) -> bool:
        """Whether new tasks may be placed on the host."""
        return self._engine.is_enabled(self._index(host_id))

    def _held_slot(self, task_id):
        """The engine slot of a named held task, or None; the id looked up by ``str``'s own
        ``==`` and ``hash`` (``titus.readers.text``), not a subclass's."""
        key = v.text(task_id)
        return None if key is None else self._task_slot.get(key)

    def task_host(self, task_id):
        """The id of the host holding the task, or None if it is not held."""
        slot = self._held_slot(task_id)
        return None if slot is None else self._host_ids[self._engine.slot_host(slot)]

    def task_priority(self, task_id):
        """The priority the task is held with (as placed or ``add_running``), or None if it is
        not held."""
        slot = self._held_slot(task_id)
        return None if slot is None else int(self._engine.slot_priority(slot))

    def held_tasks(self) -> dict:
        """Task id -> host id for every named task held, in hold order (oldest first: the order
        preemption reprieves in, which ``add_running`` in this order reproduces). Rows of
        ``schedule_arrays`` placed without ``task_ids`` are held too, but have no id."""
        ids, slot_host, slot_seq = self._host_ids, self._engine.slot_host, self._engine.slot_seq
        slots = sorted(self._task_slot.items(), key=lambda ts: slot_seq(ts[1]))
        return {t: ids[slot_host(s)] for t, s in slots}

    @property
    def footprint(self) -> dict:
        """What the scheduler keeps, as counts: ``host_slots`` (every host ever added: indices
        are never reused), ``live_hosts``, ``jobs_seen`` (every job name ever scheduled or held:
        its co-task counts live on) and ``held_tasks`` (named or not). A long-lived scheduler
        grows with its history, not only with what it holds; a service rebuilds it from what it
        holds (``titus.master.engine_adapter.EngineAdapter.compact_if_due``) when these run far
        ahead of ``live_hosts`` and ``held_tasks``."""
        return {"host_slots": len(self._host_ids), "live_hosts": len(self), "jobs_seen": len(self._codec.jobs),
                "held_tasks": int(self._engine.n_held)}

    # ----------------------------------------------------------------- hosts
    def _sync_resources(self, items) -> None:
        """Append scalar names first seen in ``items`` to ``resources`` (and engine columns)."""
        for _ in range(self._codec.note_scalars(items)):
            self._engine.add_resource()

    def add_hosts(self, hosts) -> None:
        """Add hosts, all or none: the batch is validated whole first.

        A host lacking a scalar has capacity 0 for it; its ``hostname`` attribute is its id.
        Raises ValueError naming the host's index and field (a bad quantity, port range,
        resource set or string, a duplicate id in the batch or already added); nothing changes.
        """
        hosts = v.check_hosts(hosts, self._codec.host_index)
        if not hosts:
            return
        self._sync_resources(hosts)
        # Encoded and handed over in parts: the encoded arrays of a huge batch would otherwise
        # add to its memory for a moment. Validated whole above, so no part can be refused.
        self._engine.reserve_hosts(len(self._host_ids) + len(hosts))
        for start in range(0, len(hosts), _ADD_PART):
            part = hosts[start:start + _ADD_PART]
            first = len(self._host_ids)
            self._engine.add_hosts(*self._codec.encode_hosts(part))
            # The ids are known only once the engine holds the hosts.
            self._codec.register_hosts([h.id for h in part], first)  # also extends _host_ids

    def add_host(self, host: Host) -> None:
        """Add one host (as ``add_hosts([host])``)."""
        self.add_hosts([host])

    def remove_host(self, host_id) -> list:
        """Remove a host; the tasks it held are dropped. Returns their ids, sorted.
        UnknownIdError (a KeyError) if the host is not known."""
        idx = self._index(host_id)
        host_id = v.text(host_id)  # the key found: a subclass's == could answer otherwise now
        dropped = []
        for slot in self._engine.remove_host(idx).tolist():
            tid = self._slot_task.pop(slot, None)
            if tid is not None:
                del self._task_slot[tid]
                dropped.append(tid)
        del self._codec.host_index[host_id]  # also sets _host_ids[idx] = None
        return sorted(dropped)

    def remove_hosts(self, host_ids) -> list:
        """Remove hosts, all or none; returns the ids of the tasks they held, sorted.
        UnknownIdError naming the index if an id is not known, ValueError if one is named
        twice; nothing changes then."""
        dropped = []
        for host_id in v.check_host_ids(host_ids, self._codec.host_index):
            dropped += self.remove_host(host_id)
        return sorted(dropped)

    def disable_host(self, host_id) -> None:
        """No new placements on the host (reason ``disabled``); what it holds stays.
        UnknownIdError if the host is not known."""
        self._engine.set_enabled(self._index(host_id), False)

    def enable_host(self, host_id) -> None:
        """Let new placements land on the host again. UnknownIdError if it is not known."""
        self._engine.set_enabled(self._index(host_id), True)

    # ----------------------------------------------------------------- tasks
    def release(self, task_id) -> None:
        """The task ended: its resources, ports and set slots go back to its host (a set whose
        slots are all free loses its label), and its group usage shrinks. UnknownIdError (a
        KeyError) if it is not held; nothing changes then."""
        slot = self._held_slot(task_id)
        if slot is None:
            raise v.unknown_task(task_id)
        self._engine.release(slot)
        del self._task_slot[self._slot_task.pop(slot)]

    def reset(self) -> None:
        """Drop every held task (hosts stay). Takes no input, so it cannot be refused."""
        self._engine.reset()
        self._task_slot.clear()
        self._slot_task.clear()

    def add_running(self, task: Task, host_id, ports=None) -> None:
        """Hold an already-running task on a host (e.g. after a restart).

        Constraints and ``disabled`` are not checked, but a task that would over-commit a
        resource, a port or a resource-set slot is refused with ValueError and nothing changes.
        ``ports`` names the exact ports it holds (``task.ports`` distinct ints in 0..65535);
        otherwise it takes the lowest free ones. Checked in this order, the first problem
        raising: the task and ``ports`` (ValueError naming the field, ``add_running:
        ports[0]: ...``), the host (UnknownIdError), then the fit (ValueError).
        """
        task, ports = v.check_running(task, ports, self._task_slot)
        idx = self._index(host_id)
        # Fit first, against capacity 0 for a scalar no host has: a refused task must not
        # leave a new name behind in ``resources``.
        demand, unknown = self._known_demand(task)
        reason = self._engine.overcommit_reason(idx, demand)
        if reason >= 0:
            raise ValueError(f"add_running: task {task.id!r} does not fit on host {host_id!r}: "
                             f"{self._codec.resources[reason - REASON_RESOURCE0]}")
        for name in unknown:
            if quantity(task.scalars[name]) > v.EPS:
                raise ValueError(f"add_running: task {task.id!r} does not fit on host {host_id!r}: {name}")
        if ports is not None:
            for p in ports:
                if not self._engine.port_free(idx, p):
                    raise ValueError(f"add_running: task {task.id!r}: port {p} is not free on host {host_id!r}")
        elif self._engine.free_ports(idx) < int_value(task.ports):
            raise ValueError(f"add_running: task {task.id!r} does not fit on host {host_id!r}: ports")
        # Looked up, not interned: a refused task leaves the name tables as they were.
        missing = self._engine.missing_set(idx, self._codec.set_requests(dict(task.resource_sets), False))
        if missing >= 0:
            name = sorted(task.resource_sets)[missing]
            raise ValueError(f"add_running: task {task.id!r} does not fit on host {host_id!r}: resource_set:{name}")
        if unknown:
            self._sync_resources([task])
            demand = self._codec.demand_row(task)
        sets = self._codec.set_requests(dict(task.resource_sets))
        row = self._codec.encode_classes([self._codec.class_key(task)])[0][0]
        job, group = int(row["job"]), int(row["group"])
        exclusive = any(isinstance(c, ExclusiveHost) for c in task.hard)
        slot, _, _ = self._engine.hold(idx, demand, job, group, exclusive, int_value(task.ports), ports, sets,
                                       int_value(task.priority))
        self._task_slot[task.id] = slot
        self._slot_task[slot] = task.id

    def _known_demand(self, task: Task):
        """The task's demand over the resources known now, and its scalar names not known yet."""
        resources = self._codec.resources
        row = np.zeros(len(resources), dtype=np.float64)
        for col, name in enumerate(BASE_RESOURCES):
            row[col] = quantity(getattr(task, name))
        col_of = {name: col for col, name in enumerate(resources)}
        unknown = []
        for name, q in task.scalars.items():
            if name in col_of:
                row[col_of[name]] = quantity(q)
            else:
                unknown.append(name)
        return row, unknown

    def set_group_limits(self, limits) -> None:
        """Replace the group limits (``{"g1": {"cpus": 64}}``; None or {} for none) for the
        calls that follow; held tasks keep counting against their group. ValueError naming the
        group and resource (``group_limits['g1']['cpus']: ...``) and no change if one is bad."""
        self._limits = v.check_group_limits(limits)

    def set_eviction_quota(self, job, n) -> None:
        """How many of ``job``'s held tasks one ``preempt=True`` call may evict (``n`` an int in
        0..2**31-1; None takes the quota away). A job with no quota set has no task that may be
        evicted. ValueError naming the argument, and no change, if one is bad."""
        job, n = v.check_eviction_quota(job, n)
        if n is None:
            self._quota.pop(job, None)
        else:
            self._quota[job] = n

    def _quota_arrays(self):
        jobs, counts = [], []
        for job, n in self._quota.items():
            jid = self._codec.jobs.get(job)  # a job never seen holds nothing
            if jid is not None:
                jobs.append(jid)
                counts.append(n)
        return np.array(jobs, dtype=np.int32), np.array(counts, dtype=np.int32)

    _NONE = np.zeros(0, dtype=np.int32)

    def _run(self, demand, task_class, keys, details: bool, want_slots: bool, gang=None, priority=None,
             preempt=False):
        cls, cons, vals, rs = self._codec.encode_classes(keys)
        groups, limits = self._codec.group_limits(self._limits)
        qj, qc = self._quota_arrays() if preempt else (self._NONE, self._NONE)
        return self._engine.schedule(demand, task_class, cls, cons, vals, rs, groups, limits, details, want_slots,
                                     self._NONE if gang is None else gang,
                                     self._NONE if priority is None else priority, bool(preempt), qj, qc)

    def _evicted(self, victims) -> list:
        """(position, victim id or None) of the engine's (row, slot) evictions; the victims'
        names are forgotten (before this call's placements, which may reuse their slots)."""
        out = []
        for row, slot in victims.tolist():
            tid = self._slot_task.pop(slot, None)
            if tid is not None:
                del self._task_slot[tid]
            out.append((row, tid))
        return out

    def _remember(self, slots, ids) -> None:
        for slot, tid in zip(slots, ids):
            self._task_slot[tid] = slot
            self._slot_task[slot] = tid

    def schedule(self, tasks, preempt=False) -> Result:
        """Place tasks one at a time in list order, greedily; each placement is seen by the next.

        For each task: its group limit, then every host's feasibility (first failing check is the
        host's reason: disabled, ExclusiveHost, resources in order, ports, resource sets, hard
        constraints), then score = blend of soft constraints and fitness; the best host wins
        (lowest tie key among equals, or the first reaching ``good_enough``). Placed tasks are
        held. Returns assignments, ports, resource-set choices and a Failure per unplaced task.

        The batch is validated whole first: a bad task raises ValueError naming its index and
        field (``tasks[3].cpus: must be finite and >= 0, got nan``), a task id duplicated in the
        batch or already held too, and nothing is placed or noted.

        Gangs (``Task(gang="g1")``): a gang is tried when its first task comes, with all its
        tasks in list order, and is placed whole or not at all; each task of a gang that could
        not be placed fails with reason ``gang`` naming the task that did not fit and why.
        ``preempt=True``: a task that fits no host may evict held tasks of strictly lower
        priority from one host (at most ``set_eviction_quota`` of a job's tasks per call);
        ``Result.preemptions`` lists them. See docs/semantics.md, "Gangs" and "Preemption".
        """
        tasks = v.check_tasks(tasks, self._task_slot)
        preempt = v.check_flag(preempt, "preempt")
        result = Result()
        if not tasks:
            return result
        self._sync_resources(tasks)  # scalars are noted in the caller's order, whatever the order
        tasks = order.placement_order(tasks, self._task_order)
        rows, gang = gangs.compose(None, gangs.task_gang_keys(tasks))
        if rows is not None:
            tasks = [tasks[i] for i in rows.tolist()]
        prio = [t.priority for t in tasks]
        if set(map(type, prio)) - {int}:  # a subclass: read by value, as the check and the twin read it
            prio = [int_value(p) for p in prio]
        priority = np.array(prio, dtype=np.int32) if any(prio) else None
        demand, task_class, keys = self._codec.encode_tasks(tasks, Task)
        (hosts, slots, fail_rows, fail_counts, port_off, ports, set_choice, culprit, victims) = self._run(
            demand, task_class, keys, True, True, gang if gang.max(initial=-1) >= 0 else None, priority, preempt)
        for row, tid in self._evicted(victims):
            result.preemptions.setdefault(tasks[row].id, []).append(tid)
        record_placements(tasks, hosts, slots, port_off, ports, set_choice, task_class, keys, self._host_ids,
                          self._task_slot, self._slot_task, result.assignments, result.ports,
                          result.resource_sets)
        failures = dict(self._codec.failures(keys, task_class, fail_rows, fail_counts, len(self)))
        culprit = culprit.tolist()
        for row in sorted(failures):
            k = culprit[row]
            failure = failures[row]
            if k >= 0:
                failure = gangs.gang_failure(tasks[row].gang, tasks[k].id, failures[k], len(self))
            result.failures[tasks[row].id] = failure
        return result

    def schedule_arrays(self, demand, task_class, classes, task_ids=None, explain=False, preempt=False):
        """The throughput path: row ``i`` of ``demand`` (float64[N, R], columns in ``resources``
        order) is a task of class ``classes[task_class[i]]`` (a ``TaskClass``: job, group,
        constraints, ports, resource sets). Places exactly as ``schedule`` would, with no Python
        work per row. Returns int32[N]: the host index of each row, or -1 when unplaced.
        Placed rows are held; give ``task_ids`` to be able to ``release`` them one by one.

        With ``explain=True`` it returns ``(placements, failures)``: the same int32[N] and a dict
        from the row index of each unplaced row to the ``Failure`` that ``schedule`` would give
        (decoded from the per-reason host counts the engine computes anyway).

        Gangs: the rows of a class with ``gang=True`` form one gang (tried at its first row, with
        all its rows in row order; placed whole or not at all; failures name reason ``gang``
        and the row that did not fit: its task id, or ``row 7``). ``preempt=True`` (a
        ``TaskClass`` has a ``priority``): a row that fits nowhere may evict held tasks of
        lower priority, as ``schedule`` does; the call then returns ``(placements,
        preemptions)`` -- or ``(placements, failures, preemptions)`` with ``explain=True`` --
        where ``preemptions`` maps the row index of each preempting row (rising) to the ids of
        the tasks it evicted, oldest held first (None for a victim held without an id).

        Validated whole first (vectorised over the rows): a wrong dtype or shape, a NaN,
        infinite or negative demand (``demand[5, 0] (cpus): ...``), a ``task_class`` entry out
        of range, a bad class (``classes[1].ports: ...``) or a bad or duplicate task id
        (``task_ids[7]: ...``) raises ValueError and nothing is placed.
        """
        d, tc, classes, task_ids, keyed = v.check_arrays(demand, task_class, classes, self._codec.resources,
                                                         task_ids, self._task_slot, keyed=True)
        explain = v.check_flag(explain, "explain")
        preempt = v.check_flag(preempt, "preempt")
        keys, is_gang, class_prio = keyed if keyed is not None else self._codec.class_keys(classes)
        rows = order.row_order(tc, classes, self._task_order)
        rows, gang = gangs.compose(rows, gangs.gang_keys(tc, is_gang))
        if rows is not None:
            d, tc = d[rows], tc[rows]
            task_ids = None if task_ids is None else [task_ids[i] for i in rows.tolist()]
        priority = class_prio[tc] if class_prio.any() else None
        hosts, slots, fail_rows, fail_counts, _, _, _, culprit, victims = self._run(
            d, tc, keys, False, task_ids is not None, gang if gang.max(initial=-1) >= 0 else None, priority, preempt)
        evicted = self._evicted(victims)
        if task_ids is not None:
            placed = (hosts >= 0).tolist()
            self._remember(compress(slots.tolist(), placed), compress(task_ids, placed))
        placements = order.in_input_order(hosts, rows)
        back = None if rows is None else rows.tolist()  # placement position -> caller's row
        preemptions: dict = {}
        for row, tid in evicted:
            preemptions.setdefault(row if back is None else back[row], []).append(tid)
        preemptions = dict(sorted(preemptions.items()))
        if not explain:
            return (placements, preemptions) if preempt else placements
        found = dict(self._codec.failures(keys, tc, fail_rows, fail_counts, len(self)))
        culprit = culprit.tolist()
        failures = {}
        for row, failure in found.items():
            k = culprit[row]
            if k >= 0:
                member = task_ids[k] if task_ids is not None else f"row {k if back is None else back[k]}"
                failure = gangs.gang_failure(f"classes[{int(tc[row])}]", member, found[k], len(self))
            failures[row if back is None else back[row]] = failure
        failures = dict(sorted(failures.items()))
        return (placements, failures, preemptions) if preempt else (placements, failures)
