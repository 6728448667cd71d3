"""The autoscaler's decision step, after Fenzo's ``AutoScaler``.

Each :meth:`Autoscaler.step` looks at the hosts (as :class:`HostView`), the tasks the last
scheduling round could not place, and the time, and for every Active instance group that has a
rule:

- a host is **idle** when nothing runs on it and nothing was placed on it this round; hosts asked
  for but not yet registered count as idle (they will be), so a step never asks twice for them;
- **scale up** when the trial placement of the unplaced tasks needs new hosts (``shortfall``, no
  cooldown wait), when idle hosts are fewer than ``min_idle`` (after the cooldown, up to
  ``min_idle``), or when the group is below its minimum size (``min_size``); never above
  ``max_size`` (hosts still draining count until they are gone);
- **scale down** the idle hosts beyond ``max_idle``, never while the unplaced tasks want the
  group, never below ``min_size``, after the cooldown (counted from the group's last action of
  either direction, as in Fenzo). Hosts are chosen to keep zones balanced: each one is taken
  from the zone with the most idle hosts (ties: the zone with the most hosts, then by name);
- chosen hosts are **drained** through the master's drain (no new task lands; service tasks
  are relocated at the pace their disruption budgets allow, batch tasks finish) and
  **terminated only once empty**, in a later step, so a scale-down never breaks a budget;
- **compaction** (off unless ``compact_below`` > 0, ``titus.autoscale.compact``): when there
  is nothing idle to remove, one lightly used host whose tasks fit elsewhere is drained, to
  be removed once empty;
- an **Inactive** group is drained: all its hosts are disabled and each is terminated once empty;
  a **PhasedOut** group takes no new tasks (its hosts are disabled) and is not scaled.

Every action is returned as a :class:`ScaleAction` (direction ``up``, ``down`` or
``terminate``, and a reason), counted in the Prometheus metrics and kept in a short history.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter as Tally
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Optional, Protocol, Sequence

from titus.autoscale import metrics
from titus.autoscale.compact import choose_compaction
from titus.autoscale.groups import InstanceGroup, InstanceGroupRegistry, Lifecycle, zone_spread
from titus.autoscale.hostview import HostView
from titus.autoscale.providers.base import Provider
from titus.autoscale.rules import RuleBook
from titus.autoscale.shortfall import GroupCapacity, Shortfall, ShortfallEvaluator, UnplacedArrays

UP, DOWN, TERMINATE = "up", "down", "terminate"
log = logging.getLogger("titus.autoscale")


class Cluster(Protocol):
    """What the autoscaler asks of the control plane."""

    def disable_hosts(self, host_ids: Sequence[str]) -> None:
        """Let no new task land on these hosts."""

    def remove_hosts(self, host_ids: Sequence[str]) -> None:
        """Forget these hosts (their machines are being terminated)."""

    def enable_hosts(self, host_ids: Sequence[str]) -> None:
        """Let tasks land on these hosts again."""

    def drain_hosts(self, host_ids: Sequence[str]) -> None:
        """Drain these hosts: no new task, and their tasks moved off as budgets allow."""


class NoCluster:
    """A :class:`Cluster` that does nothing (for a library user who disables hosts itself)."""

    def disable_hosts(self, host_ids: Sequence[str]) -> None:
        """Do nothing."""

    def remove_hosts(self, host_ids: Sequence[str]) -> None:
        """Do nothing."""

    def enable_hosts(self, host_ids: Sequence[str]) -> None:
        """Do nothing."""

    def drain_hosts(self, host_ids: Sequence[str]) -> None:
        """Do nothing."""


@dataclass(frozen=True)
class ScaleAction:
    """One scaling action: ``count`` hosts of ``group`` up, down (disabled) or terminated."""

    group: str
    direction: str
    reason: str
    count: int
    hosts: tuple[str, ...] = ()
    at: float = 0.0

    def to_dict(self) -> dict:
        """Plain data for JSON (events, REST)."""
        data = asdict(self)
        data["hosts"] = list(self.hosts)
        return data


@dataclass
class _GroupState:
    last_up: float = -math.inf
    last_down: float = -math.inf
    draining: dict[str, str] = field(default_factory=dict)  # host id -> reason
    # instances the provider holds that have not joined: instance id -> first seen (clock s)
    requested: dict[str, float] = field(default_factory=dict)
    terminating: dict[str, float] = field(default_factory=dict)  # instance id -> when asked
    provision_failures: int = 0  # provision timeouts in a row (reset when one joins)
    grow_after: float = -math.inf  # no new hosts asked for before this (provision back-off)
    error: str = ""  # the group's last failure, "" when its last step went well
    error_at: float = 0.0
    failures: int = 0  # failed steps in a row
    retry_at: float = -math.inf  # the group is left alone until then (error back-off)


@dataclass(frozen=True)
class GroupStatus:
    """A group's numbers as of the last step (for ``titus instance-groups list``)."""

    group: str
    lifecycle: str
    size: int
    desired: int
    registered: int
    idle: int
    pending: int
    draining: int
    min_size: int
    max_size: int
    requested: int = 0  # instances asked for that have not joined
    terminating: int = 0
    error: str = ""  # the group's last failure ("" when its last step went well)
    retry_at: Optional[float] = None  # when a failing group is tried again (epoch s)
    grow_after: Optional[float] = None  # provision back-off: no new hosts before (epoch s)
    instances: tuple = ()  # InstanceState of every instance and host of the group

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        data = asdict(self)
        data["instances"] = [i.to_dict() if hasattr(i, "to_dict") else i for i in self.instances]
        return data


@dataclass(frozen=True)
class InstanceState:
    """One machine of a group as the autoscaler sees it: ``state`` is ``requested`` (asked
    for, its agent has not joined), ``joined`` (a registered host), ``draining`` (disabled,
    terminated once empty) or ``terminating`` (termination asked of the provider)."""

    instance_id: str
    host_id: str
    state: str
    since: Optional[float] = None  # when it entered the state, where known (epoch s)

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return asdict(self)


REQUESTED, JOINED, DRAINING, TERMINATING = "requested", "joined", "draining", "terminating"


class DrainingLedger(Protocol):
    """Where the hosts being drained are kept across restarts (the master's database)."""

    def load_draining(self) -> dict[str, dict[str, str]]: ...
    def add_draining(self, group: str, host_ids, reason: str) -> None: ...
    def remove_draining(self, host_ids) -> None: ...


class Autoscaler:
    """Decides and carries out scaling for the instance groups (see the module docstring)."""

    def __init__(self, groups: InstanceGroupRegistry, rules: RuleBook, provider: Provider,
                 cluster: Optional[Cluster] = None, evaluator: Optional[ShortfallEvaluator] = None,
                 clock: Callable[[], float] = time.time,
                 on_action: Optional[Callable[[ScaleAction], None]] = None, history: int = 200,
                 ledger: Optional[DrainingLedger] = None,
                 on_error: Optional[Callable[[str, str, float], None]] = None,
                 provision_timeout_sec: float = 15 * 60.0,
                 error_backoff_sec: tuple[float, float] = (10.0, 600.0),
                 provision_backoff_sec: tuple[float, float] = (30.0, 1800.0),
                 compact_below: float = 0.0):
        self.groups = groups
        self.rules = rules
        self.provider = provider
        self.cluster = cluster or NoCluster()
        self.evaluator = evaluator or ShortfallEvaluator()
        self._clock = clock
        self._on_action = on_action
        self._on_error = on_error
        if not provision_timeout_sec > 0:
            raise ValueError(f"provision_timeout_sec: must be > 0, got {provision_timeout_sec!r}")
        self.provision_timeout_sec = float(provision_timeout_sec)
        self.error_backoff_sec = _check_backoff("error_backoff_sec", error_backoff_sec)
        self.provision_backoff_sec = _check_backoff("provision_backoff_sec",
                                                    provision_backoff_sec)
        if not (0.0 <= compact_below < 1.0):
            raise ValueError(f"compact_below: must be in [0, 1), got {compact_below!r}")
        self.compact_below = float(compact_below)  # 0: no compaction (titus.autoscale.compact)
        self._state: dict[str, _GroupState] = defaultdict(_GroupState)
        self._status: dict[str, GroupStatus] = {}
        self._held_back: set[str] = set()  # hosts disabled because their group is PhasedOut
        self.history: deque[ScaleAction] = deque(maxlen=history)
        self.last_shortfall: Shortfall = Shortfall()
        # Draining is written down before hosts are disabled, and read back on start: a restart
        # goes on draining (and keeps new tasks off) the hosts already chosen for removal.
        self._ledger = ledger
        if ledger is not None:
            for group, hosts in ledger.load_draining().items():
                self._state[group].draining.update(hosts)

    # ------------------------------------------------------------------ views
    def draining(self, group: str) -> set[str]:
        """Hosts of ``group`` disabled for removal and not yet terminated."""
        return set(self._state[group].draining)

    def all_draining(self) -> set[str]:
        """Hosts of every group disabled for removal and not yet terminated."""
        return set().union(*(s.draining for s in self._state.values()))

    def status(self) -> list[GroupStatus]:
        """Each group's numbers as of the last step."""
        return list(self._status.values())

    def recent_actions(self, group: Optional[str] = None) -> list[ScaleAction]:
        """The latest actions, oldest first (of one group when ``group`` is given)."""
        return [a for a in self.history if group is None or a.group == group]

    # ------------------------------------------------------------------ the step
    def step(self, hosts: Iterable[HostView], unplaced: UnplacedArrays | Sequence | None = None,
             now: Optional[float] = None, shortfall: Optional[Shortfall] = None) -> list[ScaleAction]:
        """Run one decision step; returns the actions taken (already carried out).

        ``unplaced`` are the tasks the last scheduling round could not place (arrays or ``Task``
        objects); ``shortfall`` may be given instead, already evaluated.
        """
        now = self._clock() if now is None else now
        hosts = list(hosts)
        by_group: dict[str, list[HostView]] = defaultdict(list)
        for h in hosts:
            by_group[h.group].append(h)
        actions: list[ScaleAction] = []
        self._forget_vanished({h.id for h in hosts})
        self._hold_lifecycle(hosts)
        # Each group on its own: a group whose provider calls fail is reported for itself,
        # left alone until its back-off ends, and kept out of the trial placement, so the
        # other groups take the work and go on scaling.
        books: dict[str, dict] = {}
        for group in self.groups:
            if not self._due(group.name, now):
                continue
            book = self._isolated(group, now, self._prepare, group, by_group, now, actions)
            if book is not None:
                books[group.name] = book
        if shortfall is None:
            shortfall = self._evaluate(books, unplaced)
        self.last_shortfall = shortfall
        for group in self.groups:
            if (group.name in books and group.lifecycle == Lifecycle.ACTIVE
                    and self.rules.get(group.name) is not None):
                done = self._isolated(group, now, self._decide, group, books[group.name],
                                      shortfall, now)
                if done is None:
                    books.pop(group.name)
                else:
                    actions += done
        for name in books:
            self._recover(name)
        self._record_status(books, by_group)
        return actions

    def _prepare(self, group: InstanceGroup, by_group, now: float, actions: list) -> dict:
        """The group's part before the decision: terminate its empty draining hosts and its
        instances that never joined, drain it if Inactive, settle its bounds; its book."""
        actions += self._terminate_empty(group, by_group, now)
        actions += self._drain_inactive(group, by_group, now)
        book = self._book(group, by_group[group.name])
        actions += self._expire_provisions(group, book, now)
        settle = getattr(self.provider, "settle_bounds", None)
        if settle is not None:
            settle(group)
        return book

    def _note_requested(self, group: InstanceGroup, book: dict, now: float) -> None:
        """Start the provision clock of instances just asked for at ``now``."""
        instances = getattr(self.provider, "instances", None)
        if instances is None:
            return
        state = self._state[group.name]
        joined = {h.instance_id for h in book["members"] if h.instance_id}
        for iid in instances(group):
            if iid not in joined and iid not in state.terminating:
                state.requested.setdefault(iid, now)

    def _due(self, name: str, now: float) -> bool:
        """Whether a failing group's back-off is over (always True for a healthy one)."""
        return now >= self._state[name].retry_at

    def _isolated(self, group: InstanceGroup, now: float, fn, *args):
        """``fn(*args)``, or None after recording its failure for ``group`` alone."""
        try:
            return fn(*args)
        except Exception as exc:  # whatever the provider raised: this group's problem only
            self._fail(group.name, exc, now)
            return None

    def _fail(self, name: str, exc: BaseException, now: float) -> None:
        state = self._state[name]
        state.failures += 1
        base, cap = self.error_backoff_sec
        state.retry_at = now + min(cap, base * 2.0 ** min(state.failures - 1, 40))
        state.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
        state.error_at = now
        metrics.GROUP_ERRORS.labels(name).inc()
        metrics.GROUP_FAILING.labels(name).set(1)
        log.warning("instance group %s: step failed (%s); retrying in %.0fs", name, state.error,
                    state.retry_at - now)
        if self._on_error is not None:
            self._on_error(name, state.error, state.retry_at)

    def _recover(self, name: str) -> None:
        state = self._state[name]
        if state.failures:
            log.info("instance group %s: steps work again", name)
        state.failures, state.error, state.retry_at = 0, "", -math.inf
        metrics.GROUP_FAILING.labels(name).set(0)

    def _expire_provisions(self, group: InstanceGroup, book: dict, now: float) -> list[ScaleAction]:
        """Track the instances that have not joined; terminate those older than the provision
        timeout and hold the group's growth back (doubling back-off) before asking again."""
        instances = getattr(self.provider, "instances", None)
        state = self._state[group.name]
        if instances is None:
            state.terminating = {i: t for i, t in state.terminating.items() if t >= now}
            return []
        held = dict(instances(group))  # instance id -> zone
        joined = {h.instance_id for h in book["members"] if h.instance_id}
        for iid, since in list(state.terminating.items()):
            if iid not in held and iid not in joined and since < now:  # shown for a step
                del state.terminating[iid]
        if any(iid in joined for iid in state.requested):
            state.provision_failures = 0  # instances do join: the group is healthy
        state.requested = {iid: state.requested.get(iid, now) for iid in held
                           if iid not in joined and iid not in state.terminating}
        expired = sorted(iid for iid, since in state.requested.items()
                         if now - since >= self.provision_timeout_sec)
        book["requested"] = len(state.requested)
        if not expired:
            return []
        self.provider.terminate_instances(group, expired)
        for iid in expired:
            del state.requested[iid]
            state.terminating[iid] = now
        state.provision_failures += 1
        base, cap = self.provision_backoff_sec
        state.grow_after = now + min(cap, base * 2.0 ** min(state.provision_failures - 1, 40))
        book["requested"] = len(state.requested)
        book["desired"] = max(0, book["desired"] - len(expired))
        book["pending"] = max(0, book["desired"] - book["registered"])
        book["size"] = max(book["desired"], book["registered"])
        book["live"] = book["size"] - len(state.draining)
        return [self._emit(ScaleAction(group.name, TERMINATE, "provision_timeout", len(expired),
                                       tuple(expired), now))]

    # ------------------------------------------------------------------ pieces
    def _forget_vanished(self, present: set[str]) -> None:
        gone = []
        for state in self._state.values():
            for host_id in [h for h in state.draining if h not in present]:
                del state.draining[host_id]
                gone.append(host_id)
        if gone and self._ledger is not None:
            self._ledger.remove_draining(gone)

    def _terminate_empty(self, group: InstanceGroup, by_group, now) -> list[ScaleAction]:
        """Terminate the group's draining hosts that hold nothing any more."""
        state = self._state[group.name]
        empty = [h for h in by_group[group.name] if h.id in state.draining and h.idle]
        if not empty:
            return []
        ids = [h.id for h in empty]
        self.provider.terminate(group, empty)
        self.cluster.remove_hosts(ids)
        gone = set(ids)
        by_group[group.name] = [h for h in by_group[group.name] if h.id not in gone]
        by_reason: dict[str, list[str]] = defaultdict(list)
        for host in empty:
            by_reason[state.draining.pop(host.id)].append(host.id)
            state.terminating[host.instance_id or host.id] = now
        if self._ledger is not None:
            self._ledger.remove_draining(ids)
        return [self._emit(ScaleAction(group.name, TERMINATE, reason, len(chosen),
                                       tuple(chosen), now))
                for reason, chosen in sorted(by_reason.items())]

    def _drain_inactive(self, group: InstanceGroup, by_group, now) -> list[ScaleAction]:
        """Disable every host of an Inactive group (they are terminated once empty)."""
        if group.lifecycle != Lifecycle.INACTIVE:
            return []
        state = self._state[group.name]
        fresh = sorted(h.id for h in by_group[group.name] if h.id not in state.draining)
        return [self._disable(group, fresh, "inactive", now)] if fresh else []

    def _hold_lifecycle(self, hosts: list[HostView]) -> None:
        """Keep new tasks off PhasedOut groups and draining hosts (a host that re-registers
        comes back enabled, so this is asserted every step); re-enable a group made Active."""
        draining = self.all_draining()
        phased = {g.name for g in self.groups if g.lifecycle == Lifecycle.PHASED_OUT}
        held = {h.id for h in hosts if h.group in phased and h.id not in draining}
        back = sorted(self._held_back - held - draining)
        if back:
            self.cluster.enable_hosts(back)
        present = {h.id for h in hosts}
        keep_off = sorted((held | draining) & present)
        if keep_off:
            self.cluster.disable_hosts(keep_off)
        self._held_back = held

    def _book(self, group: InstanceGroup, members: list[HostView]) -> dict:
        """The group's accounting for this step."""
        state = self._state[group.name]
        registered = len(members)
        desired = self.provider.desired(group) if group.lifecycle != Lifecycle.INACTIVE else registered
        idle = [h for h in members if h.idle and h.id not in state.draining]
        size = max(desired, registered)
        return {
            "members": members,
            "idle": idle,
            "registered": registered,
            "desired": desired,
            "pending": max(0, desired - registered),
            "size": size,
            "live": size - len(state.draining),
            "requested": len(state.requested),
        }

    def _evaluate(self, books, unplaced) -> Shortfall:
        """Trial placement of the unplaced tasks on the groups that have rules."""
        if unplaced is None or len(unplaced) == 0:
            return Shortfall()
        capacities = []
        for group in self.groups:
            rule = self.rules.get(group.name)
            if rule is None or not group.accepts_tasks or group.name not in books:
                continue  # a failing group gets no work: the others take it
            book = books[group.name]
            empty = Tally(h.zone for h in book["idle"] if h.zone in group.zones)
            empty.update(zone_spread(group.zones, book["pending"]))
            high = rule.bounds(group)[1]
            capacities.append(GroupCapacity(group, dict(empty), max(0, high - book["size"])))
        started = time.perf_counter()
        result = self.evaluator.evaluate(capacities, unplaced)
        metrics.SHORTFALL_SECONDS.set(time.perf_counter() - started)
        for c in capacities:
            metrics.SHORTFALL_HOSTS.labels(c.group.name).set(result.new_hosts.get(c.group.name, 0))
        return result

    def _decide(self, group: InstanceGroup, book: dict, shortfall: Shortfall, now: float) -> list[ScaleAction]:
        rule = self.rules.get(group.name)
        state = self._state[group.name]
        low, high = rule.bounds(group)
        # hosts on their way count against asking twice, never as idle hosts to remove
        idle_count = max(0, len(book["idle"]) + book["pending"] - shortfall.used_empty.get(group.name, 0))
        up, reason = 0, ""
        if shortfall.new_hosts.get(group.name, 0) > 0:
            up, reason = shortfall.new_hosts[group.name], "shortfall"
        if idle_count < rule.min_idle and now >= state.last_up + rule.cooldown_sec:
            up += rule.min_idle - idle_count
            reason = reason or "min_idle"
        if book["live"] + up < low:
            up, reason = low - book["live"], reason or "min_size"
        up = min(up, high - book["size"])
        if up > 0 and now < state.grow_after:
            return []  # instances did not join lately: wait before asking for more
        if up > 0:
            book["desired"] = self.provider.grow(group, up)
            self._note_requested(group, book, now)
            book["pending"] = max(0, book["desired"] - book["registered"])
            book["size"] = max(book["desired"], book["registered"])
            state.last_up = now
            return [self._emit(ScaleAction(group.name, UP, reason, up, (), now))]
        if shortfall.needs(group.name):
            return []
        if now < max(state.last_up, state.last_down) + rule.cooldown_sec:
            return []
        idle = _removable(self.provider, group, book["idle"])
        excess, reason = len(book["idle"]) - rule.max_idle, "max_idle"
        if book["size"] - high > excess:
            excess, reason = book["size"] - high, "max_size"
        excess = min(excess, len(idle), book["live"] - low)
        if excess <= 0:
            return self._compact(group, book, low, now)
        chosen = balanced_choice(idle, excess, book["members"])
        state.last_down = now
        return [self._disable(group, chosen, reason, now)]

    def _compact(self, group: InstanceGroup, book: dict, low: int, now: float) -> list[ScaleAction]:
        """Drain one lightly used host so it can be removed once its tasks are relocated
        (``titus.autoscale.compact``; off unless ``compact_below`` > 0)."""
        state = self._state[group.name]
        if self.compact_below <= 0 or book["live"] - 1 < low:
            return []
        chosen = choose_compaction(book["members"], set(state.draining), self.compact_below)
        if chosen is None:
            return []
        state.last_down = now
        return [self._disable(group, [chosen], "compact", now)]

    def _disable(self, group: InstanceGroup, host_ids: list[str], reason: str, now: float) -> ScaleAction:
        if self._ledger is not None:
            self._ledger.add_draining(group.name, host_ids, reason)
        self.cluster.disable_hosts(host_ids)
        drain = getattr(self.cluster, "drain_hosts", None)
        if drain is not None:  # moved off at the budgets' pace, never faster
            drain(host_ids)
        state = self._state[group.name]
        for host_id in host_ids:
            state.draining[host_id] = reason
        return self._emit(ScaleAction(group.name, DOWN, reason, len(host_ids), tuple(host_ids), now))

    def _emit(self, action: ScaleAction) -> ScaleAction:
        self.history.append(action)
        metrics.ACTIONS.labels(action.group, action.direction, action.reason).inc()
        metrics.HOSTS_CHANGED.labels(action.group, action.direction).inc(action.count)
        if self._on_action is not None:
            self._on_action(action)
        return action

    def _record_status(self, books, by_group) -> None:
        previous = self._status
        self._status = {}
        for group in self.groups:
            state = self._state[group.name]
            book = books.get(group.name)
            if book is None:  # failing this step: the last numbers, with the error
                old = previous.get(group.name)
                base = old.to_dict() if old is not None else {
                    "group": group.name, "lifecycle": group.lifecycle.value, "size": 0,
                    "desired": 0, "registered": len(by_group[group.name]), "idle": 0,
                    "pending": 0, "draining": len(state.draining), "min_size": group.min_size,
                    "max_size": group.max_size}
                base.update(error=state.error, retry_at=state.retry_at,
                            instances=tuple(old.instances) if old is not None else ())
                self._status[group.name] = GroupStatus(**base)
                continue
            rule = self.rules.get(group.name)
            low, high = rule.bounds(group) if rule else (group.min_size, group.max_size)
            draining = len(state.draining)
            self._status[group.name] = GroupStatus(
                group.name, group.lifecycle.value, book["size"], book["desired"], book["registered"],
                len(book["idle"]), book["pending"], draining, low, high,
                requested=len(state.requested), terminating=len(state.terminating),
                grow_after=state.grow_after if state.grow_after > -math.inf else None,
                instances=tuple(self._instances(group, book["members"])))
            metrics.IDLE_HOSTS.labels(group.name).set(len(book["idle"]))
            metrics.DRAINING_HOSTS.labels(group.name).set(draining)

    def _instances(self, group: InstanceGroup, members: list[HostView]) -> list[InstanceState]:
        state = self._state[group.name]
        out = [InstanceState(iid, "", REQUESTED, since) for iid, since in sorted(state.requested.items())]
        for h in sorted(members, key=lambda h: h.id):
            out.append(InstanceState(h.instance_id or "", h.id,
                                     DRAINING if h.id in state.draining else JOINED))
        out += [InstanceState(iid, "", TERMINATING, since)
                for iid, since in sorted(state.terminating.items())]
        return out


def _check_backoff(name: str, pair) -> tuple[float, float]:
    base, cap = (float(v) for v in pair)
    if not (base > 0 and cap >= base and math.isfinite(cap)):
        raise ValueError(f"{name}: expected (base > 0, max >= base) seconds, got {pair!r}")
    return base, cap


def _removable(provider: Provider, group: InstanceGroup, idle: list[HostView]) -> list[HostView]:
    """The idle hosts the provider can terminate (hosts started by others are never chosen)."""
    owned = getattr(provider, "owned", None)
    if owned is None or not idle:
        return idle
    mine = owned(group, idle)
    return [h for h in idle if h.id in mine]


def balanced_choice(idle: Sequence[HostView], count: int, members: Sequence[HostView]) -> list[str]:
    """Pick ``count`` idle hosts, each from the zone with the most idle hosts left.

    Ties go to the zone with the most hosts of the group left, then to the zone name; within a
    zone hosts are taken in id order. Fenzo's balanced scale-down.
    """
    by_zone: dict[str, list[str]] = defaultdict(list)
    for h in sorted(idle, key=lambda h: h.id):
        by_zone[h.zone].append(h.id)
    total = Tally(h.zone for h in members)
    chosen: list[str] = []
    while len(chosen) < count and any(by_zone.values()):
        zone = min((z for z in by_zone if by_zone[z]), key=lambda z: (-len(by_zone[z]), -total[z], z))
        chosen.append(by_zone[zone].pop(0))
        total[zone] -= 1
    return chosen
