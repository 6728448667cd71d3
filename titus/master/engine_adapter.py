"""The master's side of the scheduling engine: hosts in, tasks in, placements out.

The engine (``titus.Scheduler``) owns host state between calls; this adapter keeps what the
master needs beside it — which hosts are in the engine, which are held off (draining, or in a
PhasedOut instance group), and the engine's view of a task (demand and constraints, cached per
job). Only the :class:`~titus.master.ledger.Ledger` changes what the engine holds, after the
store has the change; the scheduling loop asks it to place.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Iterable, Optional

from titus import states
from titus.boundary import unicode_ok
from titus.constraints import BalancedHostAttr, HostAttrValue
from titus.master.config import MasterSettings
from titus.master.model_constraints import to_engine
from titus.master.placement import Placement, place
from titus.master.records import TaskRecord
from titus.master.state import ClusterState
from titus.protocol import HostInfo
from titus.scheduler.factory import make_scheduler
from titus.scheduler.model import Host, Task
from titus.scheduler.validation import check_hosts


log = logging.getLogger(__name__)

# The engine keeps a host slot for every host ever added and a name for every job ever seen
# (Scheduler.footprint): it is rebuilt from what it holds once these pass twice what is live,
# plus a floor so that a small cluster is not rebuilt for a handful of names.
COMPACT_HOST_FLOOR = 4096
COMPACT_JOB_FLOOR = 65536


class HostRejected(ValueError):
    """A host the engine cannot take (a bad quantity or port range, an empty id, ...).

    ``field`` names it in the registration (``hosts[2]``, or ``hosts`` for the batch)."""

    def __init__(self, message: str, field: str = "hosts"):
        super().__init__(message)
        self.field = field


SPREAD_ATTRIBUTE = "titus.spread"


def spread_constraints(hosts: int, zones: int) -> list:
    """The soft constraints of a spread job: co-tasks balanced over hosts and over zones
    (the engine's ``BalancedHostAttr`` scores a host lower the more co-tasks it holds than
    the others; soft constraints outweigh bin-packing by default)."""
    return [BalancedHostAttr("hostname", max(1, hosts)), BalancedHostAttr("zone", max(1, zones))]


def engine_host(info: HostInfo, attributes=None) -> Host:
    """The engine's view of a host an agent registered (only ``attributes``, if given)."""
    attrs = dict(info.attributes) if attributes is None else {
        k: v for k, v in info.attributes.items() if k in attributes}
    return Host(id=info.host_id, cpus=info.cpus, memory_mb=info.memory_mb, disk_mb=info.disk_mb,
                network_mbps=info.network_mbps, ports=[tuple(r) for r in info.ports],
                scalars={"gpu": info.gpu} if info.gpu else {}, attributes=attrs)


class EngineAdapter:
    """The engine and the master's bookkeeping of what it holds."""

    def __init__(self, settings: MasterSettings, state: ClusterState):
        self.settings = settings
        self.state = state
        # capacity group limits are applied by the master's queue, not by the engine
        self.scheduler = self._fresh_scheduler()
        self.hosts: set[str] = set()  # host ids in the engine
        # Hosts kept disabled even across a re-registration, which would otherwise bring a
        # host back enabled.
        self.held_off: set[str] = set()
        self.hosts_version = 0  # bumped whenever hosts come or go (constraint caches follow)
        self._refused: Optional[dict] = None  # footprint when a rebuild was last refused

    # ------------------------------------------------------------------ tasks
    def task_for(self, task: TaskRecord, zones: Optional[int] = None) -> Task:
        """The engine's view of a task (constraints cached per job, zone count and host set)."""
        job = self.state.jobs[task.job_id]
        zones = self.state.zone_count() if zones is None else zones
        key = (zones, self.hosts_version)
        cached = job.engine_cache.get(key)
        if cached is None:
            c = job.descriptor.container
            soft = to_engine(c.softConstraints.constraints, zones)
            if self.spreads(job):
                soft += spread_constraints(len(self.hosts), zones)
            cached = (self._by_hostname(to_engine(c.hardConstraints.constraints, zones)),
                      self._by_hostname(soft), self.state.demand(job))
            job.engine_cache = {key: cached}
        hard, soft, d = cached
        return Task(task.id, cpus=d["cpus"], memory_mb=d["memory_mb"], disk_mb=d["disk_mb"],
                    network_mbps=d["network_mbps"], scalars={"gpu": d["gpu"]} if d["gpu"] else {},
                    job=job.id, group=job.group, hard=hard, soft=soft, priority=self.priority_of(job))

    def priority_of(self, job) -> int:
        """The engine priority of a job's tasks: 1 for a Critical-tier group that preempts
        (docs/preemption.md), else 0. Only Flex jobs are ever given an eviction quota, so only
        their tasks can be victims."""
        return 1 if self.state.capacity.preempts(job.group) else 0

    def spreads(self, job) -> bool:
        """Whether the job's tasks spread over hosts and zones: a service job unless its
        attribute ``titus.spread`` is ``false`` (the master's ``default_spread`` sets what
        no attribute means; a batch job spreads only if it asks with ``true``)."""
        asked = job.descriptor.attributes.get(SPREAD_ATTRIBUTE)
        if asked is not None and asked.strip().lower() in ("true", "false"):
            return asked.strip().lower() == "true"
        return self.settings.default_spread and not job.batch

    def _by_hostname(self, constraints: list) -> list:
        """Constraints on host attributes the engine is not given, as constraints on host ids.

        (An attribute with one value per host, such as ``instance_id``, is cheaper for the
        engine as the set of hosts carrying the wanted values.)
        """
        kept = self.settings.engine_attributes
        out = []
        for c in constraints:
            if isinstance(c, HostAttrValue) and c.attr != "hostname" and c.attr not in kept:
                wanted = set(c.values)
                hosts = sorted(h.host_id for _, h in self.state.registry.hosts()
                               if h.attributes.get(c.attr) in wanted)
                # no host has it: a readable stand-in no host is called, so it still fails
                c = HostAttrValue("hostname", values=hosts or [
                    f"<no host with {c.attr}={','.join(map(str, c.values))}>"])
            out.append(c)
        return out

    def place(self, records: list[TaskRecord], zones: int, quotas=None) -> Placement:
        """Offer waiting tasks (in order) to the engine in one batch; it holds what it places.
        ``quotas`` ({Flex job id: tasks it may lose}) lets Critical tasks preempt."""
        return place(self, records, zones, quotas)

    def hold(self, task: TaskRecord) -> None:
        """Hold a running task on its host again (after a restart); ValueError/KeyError if it
        no longer fits there."""
        self.scheduler.add_running(self.task_for(task), task.host_id,
                                   ports=task.port_list or None)

    def release(self, task_id: str) -> None:
        """Give a task's resources back to its host (unknown ids are ignored)."""
        try:
            self.scheduler.release(task_id)
        except KeyError:
            pass

    # ------------------------------------------------------------------ upkeep
    def compact_due(self) -> bool:
        """Whether the engine's tables have grown well past what it holds: more than twice the
        live hosts (plus ``COMPACT_HOST_FLOOR``) host slots, or more than twice the held tasks
        (plus ``COMPACT_JOB_FLOOR``) job names. Hosts churned by autoscaling and jobs that ended
        would otherwise grow the master's memory with its history (some 300-500 bytes each)."""
        f = self.scheduler.footprint
        if self._refused is not None and (f["host_slots"] < self._refused["host_slots"] + COMPACT_HOST_FLOOR
                                          and f["jobs_seen"] < self._refused["jobs_seen"] + COMPACT_JOB_FLOOR):
            return False  # refused at about this size: not tried again every round
        return (f["host_slots"] > 2 * f["live_hosts"] + COMPACT_HOST_FLOOR
                or f["jobs_seen"] > 2 * f["held_tasks"] + COMPACT_JOB_FLOOR)

    def compact_if_due(self) -> bool:
        """``compact()`` when ``compact_due()``; whether it rebuilt. A refused rebuild is tried
        again only once the tables have grown by another floor's worth."""
        if not self.compact_due():
            return False
        done = self.compact()
        self._refused = None if done else self.scheduler.footprint
        return done

    def compact(self) -> bool:
        """Rebuild the engine from what it holds now: a fresh scheduler with the same hosts (held
        off ones disabled) holding the same tasks on the same hosts and ports, in the old
        engine's hold order and with the priorities they were held with (preemption reads
        both), then swapped in. Call it between rounds, under the state's lock. All or nothing:
        if the master's records and the engine disagree on what is held, or a task cannot be
        held again, the old engine stays (logged) and False is returned.

        A task being killed that the engine no longer holds (a preemption victim whose kill is
        not yet confirmed: the engine evicted it) is no disagreement; the rebuilt engine does
        not hold it either."""
        old = self.scheduler
        infos = {info.host_id: info for _, info in self.state.registry.hosts() if info.host_id in self.hosts}
        held = old.held_tasks()  # task id -> host id, oldest hold first
        tasks = self.state.tasks
        agree = (len(infos) == len(self.hosts) and old.footprint["held_tasks"] == len(held)
                 and all((t := tasks.get(tid)) is not None and t.in_engine and t.host_id == h
                         for tid, h in held.items())
                 and all(t.state == states.KILL_INITIATED for t in tasks.values()
                         if t.in_engine and t.id not in held))
        if not agree:
            log.warning("engine not compacted: its hosts or held tasks differ from the master's records")
            return False
        fresh = self._fresh_scheduler()
        keep = set(self.settings.engine_attributes)
        try:
            fresh.add_hosts([engine_host(infos[h], keep) for h in sorted(infos)])
            for h in sorted(self.hosts):  # held off (draining, phased out) or otherwise
                if not old.is_enabled(h):
                    fresh.disable_host(h)
            for tid in held:
                task = tasks[tid]
                fresh.add_running(replace(self.task_for(task), priority=old.task_priority(tid)),
                                  task.host_id, ports=task.port_list or None)
        except (ValueError, KeyError) as exc:
            log.warning("engine not compacted: %s", exc)
            return False
        before = old.footprint
        self.scheduler = fresh
        log.info("engine compacted: %s -> %s", before, fresh.footprint)
        return True

    def _fresh_scheduler(self):
        return make_scheduler("native", fitness=self.settings.fitness, good_enough=self.settings.good_enough,
                              task_order=self.settings.task_order)

    # ------------------------------------------------------------------ hosts
    def add_hosts(self, infos: Iterable) -> None:
        """Hosts (``HostInfo``) join the engine; held-off ones stay disabled."""
        infos = list(infos)
        if not infos:
            return
        keep = set(self.settings.engine_attributes)
        self.scheduler.add_hosts([engine_host(info, keep) for info in infos])
        for info in infos:
            self.hosts.add(info.host_id)
            if info.host_id in self.held_off:
                self.scheduler.disable_host(info.host_id)
        self.hosts_version += 1

    def check_hosts(self, infos: Iterable) -> None:
        """:class:`HostRejected` naming the host and the field unless the engine would take
        these hosts (``HostInfo``), as a batch; nothing changes either way."""
        infos = list(infos)
        keep = set(self.settings.engine_attributes)
        hosts = []
        for i, info in enumerate(infos):
            for what, text in [("id", info.host_id), *(
                    ("attribute", t) for kv in info.attributes.items() for t in kv)]:
                if not unicode_ok(text):  # a lone surrogate: no store, no JSON reply can hold it
                    raise HostRejected(f"host {info.host_id!r}: {what} {text!r} is not valid "
                                       "Unicode text (a lone surrogate)", f"hosts[{i}]")
            try:
                host = engine_host(info, keep)
                check_hosts([host], ())
            except (ValueError, TypeError) as exc:  # the message names hosts[0]: this one
                reason = str(exc).removeprefix("hosts[0].").removeprefix("hosts[0]: ")
                raise HostRejected(f"host {info.host_id!r}: {reason}", f"hosts[{i}]") from None
            hosts.append(host)
        try:
            check_hosts(hosts, ())  # the batch: ids unique
        except (ValueError, TypeError) as exc:
            raise HostRejected(str(exc)) from None

    def remove_host(self, host_id: str) -> list[str]:
        """A host leaves the engine; returns the ids of the tasks it held."""
        self.hosts_version += 1
        if host_id not in self.hosts:
            return []
        self.hosts.discard(host_id)
        return list(self.scheduler.remove_host(host_id))

    def hold_off(self, host_ids: Iterable[str]) -> None:
        """No new task lands on these hosts, also after they register again."""
        for host_id in host_ids:
            self.held_off.add(host_id)
            if host_id in self.hosts:
                self.scheduler.disable_host(host_id)

    def let_in(self, host_ids: Iterable[str]) -> None:
        """Tasks may land on these hosts again."""
        for host_id in host_ids:
            self.held_off.discard(host_id)
            if host_id in self.hosts:
                self.scheduler.enable_host(host_id)

    def forget_holds(self, host_ids: Iterable[str]) -> None:
        """Stop holding these hosts off without enabling them (they were terminated)."""
        self.held_off.difference_update(host_ids)

    def host_usage(self, host_id: str) -> dict:
        """What the engine holds on a host ({} if it is not in the engine)."""
        if host_id not in self.hosts:
            return {}
        try:
            return dict(self.scheduler.host_usage(host_id))
        except (KeyError, AttributeError):
            return {}
