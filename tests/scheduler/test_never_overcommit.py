"""Whatever the order of calls, no host is ever over-committed.

A hypothesis state machine drives a scheduler (the engine, and separately the twin) through
random schedule / schedule_arrays / release / add_running / host calls. It keeps its own
ledger of what each host holds, built only from what the calls returned, and checks after
every step: per host and resource, the sum of held demand <= capacity + 1e-9; ports unique and
inside the host's ranges; no resource set over its slots or carrying two labels; the
scheduler's own usage figures equal the ledger's. At each placement it also checks the rules a
chosen host must meet (enabled, exclusive hosts kept, hard HostAttrValue / UniqueHostAttr).
"""
from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from titus.constraints import ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import TaskClass

from tests.conftest import engine_class, reference_class
from tests.scheduler import strategies as gen

# A failing run may shrink for minutes before it reports the minimal case.
pytestmark = pytest.mark.timeout(900)

EPS = 1e-9
BASE = ("cpus", "memory_mb", "disk_mb", "network_mbps")


def demand_of(task) -> dict:
    d = {r: float(getattr(task, r)) for r in BASE}
    d.update({k: float(v) for k, v in task.scalars.items()})
    return d


class NeverOvercommit(RuleBasedStateMachine):
    """The state machine; ``scheduler_factory`` is set by the concrete subclasses below."""

    scheduler_factory = None

    def __init__(self):
        super().__init__()
        self.s = None
        self.hosts = {}        # live host id -> Host
        self.enabled = {}      # live host id -> bool
        self.held = {}         # key -> dict(host, demand, ports, sets, job, hard)
        self.ids = (f"t{i}" for i in itertools.count())
        self.host_round = itertools.count()
        self.anon = itertools.count()

    # ------------------------------------------------------------------ setup
    @rule(options=gen.scheduler_options(), cluster=gen.hosts())
    @precondition(lambda self: self.s is None)
    def start(self, options, cluster):
        self.s = type(self).scheduler_factory()(**options)
        self.s.add_hosts(cluster)
        for h in cluster:
            self.hosts[h.id], self.enabled[h.id] = h, True

    # ------------------------------------------------------------------ calls
    @rule(data=st.data())
    @precondition(lambda self: self.s is not None)
    def schedule(self, data):
        ids = [next(self.ids) for _ in range(data.draw(st.integers(1, 8)))]
        tasks = data.draw(gen.some_tasks(ids))
        result = self.s.schedule(tasks)
        assert set(result.assignments) | set(result.failures) == set(ids)
        assert not set(result.assignments) & set(result.failures)
        for t in tasks:
            if t.id in result.assignments:
                self._placed(t.id, result.assignments[t.id], demand_of(t), t.job, t.hard,
                             result.ports.get(t.id, []), result.resource_sets.get(t.id, {}), t.ports,
                             t.resource_sets)
            else:
                assert sum(result.failures[t.id].counts.values()) == len(self.hosts)

    @rule(data=st.data(), named=st.booleans())
    @precondition(lambda self: self.s is not None)
    def schedule_arrays(self, data, named):
        resources = list(self.s.resources)
        n = data.draw(st.integers(1, 8))
        classes = [TaskClass(**data.draw(gen.task_shapes()))]
        rows = [data.draw(gen.demands()) for _ in range(n)]
        demand = np.array([[d[r] if r in BASE else d["scalars"].get(r, 0) for r in resources] for d in rows],
                          dtype=np.float64)
        ids = [next(self.ids) for _ in range(n)] if named else None
        out = self.s.schedule_arrays(demand, np.zeros(n, dtype=np.int32), classes, task_ids=ids)
        host_ids = list(self.s.host_ids)
        for i, idx in enumerate(out.tolist()):
            if idx < 0:
                continue
            key = ids[i] if named else ("anon", next(self.anon))
            row = {r: float(demand[i, j]) for j, r in enumerate(resources)}
            # Arrays do not report ports or sets: count them, without knowing which.
            self._placed(key, host_ids[idx], row, classes[0].job, classes[0].hard, None, None, classes[0].ports,
                         classes[0].resource_sets)

    @rule(data=st.data())
    @precondition(lambda self: any(isinstance(k, str) for k in self.held))
    def release(self, data):
        key = data.draw(st.sampled_from(sorted(k for k in self.held if isinstance(k, str))))
        self.s.release(key)
        del self.held[key]

    @rule(data=st.data())
    @precondition(lambda self: self.hosts)
    def add_running(self, data):
        task = data.draw(gen.tasks([next(self.ids)]))[0]
        host = data.draw(st.sampled_from(sorted(self.hosts)))
        try:
            self.s.add_running(task, host)
        except ValueError:
            return  # refused: it would have over-committed; the invariants check nothing changed
        # add_running does not say which ports or sets it took: count them, unnamed.
        self.held[task.id] = dict(host=host, demand=demand_of(task), ports=[None] * task.ports, sets=None,
                                  set_asks=dict(task.resource_sets), job=task.job, hard=list(task.hard))

    @rule(data=st.data())
    @precondition(lambda self: self.s is not None)
    def add_hosts(self, data):
        new = data.draw(gen.hosts(id_prefix=f"n{next(self.host_round)}-", max_size=3))
        self.s.add_hosts(new)
        for h in new:
            self.hosts[h.id], self.enabled[h.id] = h, True

    @rule(data=st.data())
    @precondition(lambda self: self.hosts)
    def remove_host(self, data):
        host = data.draw(st.sampled_from(sorted(self.hosts)))
        dropped = self.s.remove_host(host)
        named_here = sorted(k for k, t in self.held.items() if t["host"] == host and isinstance(k, str))
        assert sorted(dropped) == named_here
        self.held = {k: t for k, t in self.held.items() if t["host"] != host}
        del self.hosts[host], self.enabled[host]

    @rule(data=st.data(), enable=st.booleans())
    @precondition(lambda self: self.hosts)
    def toggle_host(self, data, enable):
        host = data.draw(st.sampled_from(sorted(self.hosts)))
        (self.s.enable_host if enable else self.s.disable_host)(host)
        self.enabled[host] = enable

    # ------------------------------------------------------------------ ledger
    def _placed(self, key, host, demand, job, hard, ports, sets, port_count, set_asks=None):
        """Check a placement against the ledger, then record it (ports/sets None when unknown)."""
        assert host in self.hosts, f"placed on unknown or removed host {host!r}"
        assert self.enabled[host], f"placed on disabled host {host!r}"
        others = [t for t in self.held.values() if t["host"] == host]
        assert not any(any(isinstance(c, ExclusiveHost) for c in t["hard"]) for t in others), \
            f"placed next to an exclusive task on {host!r}"
        if any(isinstance(c, ExclusiveHost) for c in hard):
            assert not others, f"exclusive task placed on busy host {host!r}"
        attrs = {**self.hosts[host].attributes, "hostname": host}
        for c in hard:
            if isinstance(c, HostAttrValue):
                assert attrs.get(c.attr) in {str(v) for v in c.values}
            if isinstance(c, UniqueHostAttr) and job is not None:
                assert c.attr in attrs
                co_values = {self._attr(t["host"], c.attr) for t in self.held.values() if t["job"] == job}
                assert attrs[c.attr] not in co_values, f"co-task already on {c.attr}={attrs[c.attr]}"
        if ports is not None:
            assert len(ports) == port_count
        self.held[key] = dict(host=host, demand=demand, ports=ports if ports is not None else [None] * port_count,
                              sets=sets, set_asks=dict(set_asks) if set_asks else None, job=job, hard=list(hard))

    def _attr(self, host, attr):
        if host not in self.hosts:
            return None
        return {**self.hosts[host].attributes, "hostname": host}.get(attr)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def no_host_is_over_committed(self):
        if self.s is None:
            return
        per_host = defaultdict(list)
        for t in self.held.values():
            per_host[t["host"]].append(t)
        for host_id, held in per_host.items():
            h = self.hosts[host_id]
            capacity = {r: float(getattr(h, r)) for r in BASE}
            capacity.update({k: float(v) for k, v in h.scalars.items()})
            used = Counter()
            for t in held:
                for r, q in t["demand"].items():
                    used[r] += q
            for r, q in used.items():
                assert q <= capacity.get(r, 0.0) + EPS, f"{host_id} over-committed on {r}: {q}"
            usage = self.s.host_usage(host_id)
            for r, q in used.items():
                assert abs(float(usage[r]) - q) < 1e-6, f"{host_id}: usage of {r} {usage[r]} != {q}"
            self._check_ports(host_id, h, held)
            self._check_sets(host_id, h, held)

    def _check_ports(self, host_id, h, held):
        known = [p for t in held for p in t["ports"] if p is not None]
        total = sum(len(t["ports"]) for t in held)
        assert len(known) == len(set(known)), f"{host_id}: a port given twice"
        assert all(any(lo <= p <= hi for lo, hi in h.ports) for p in known), f"{host_id}: port outside ranges"
        size = len({p for lo, hi in h.ports for p in range(lo, hi + 1)})
        assert total <= size, f"{host_id}: {total} ports held, {size} exist"

    def _check_sets(self, host_id, h, held):
        for name, (n_sets, slots) in h.resource_sets.items():
            users = [t for t in held if (t["sets"] and name in t["sets"]) or (t["set_asks"] and name in t["set_asks"])]
            assert len(users) <= n_sets * slots, f"{host_id}: set {name} over its slots"
            by_index = defaultdict(list)
            for t in users:
                if t["sets"] and name in t["sets"]:
                    by_index[t["sets"][name]].append(t)
            for index, on_set in by_index.items():
                assert 0 <= index < n_sets
                assert len(on_set) <= slots, f"{host_id}: set {name}[{index}] over its slots"
                assert len({t["set_asks"][name] for t in on_set}) == 1, f"{host_id}: set {name}[{index}] mixes labels"
            labels_in_use = {t["set_asks"][name] if t["set_asks"] else None for t in users}
            assert len(labels_in_use - {None}) <= n_sets, f"{host_id}: more labels than sets of {name}"

    @invariant()
    def held_tasks_match_the_ledger(self):
        if self.s is None:
            return
        held = self.s.held_tasks()
        named = {k: t["host"] for k, t in self.held.items() if isinstance(k, str)}
        assert dict(held) == named


def machine_for(factory):
    """A concrete state machine running against the class ``factory()`` returns."""
    return type(f"NeverOvercommit_{factory.__name__}", (NeverOvercommit,), {"scheduler_factory": staticmethod(factory)})


SETTINGS = settings(max_examples=60, stateful_step_count=25, deadline=None)

TestNeverOvercommitEngine = machine_for(engine_class).TestCase
TestNeverOvercommitEngine.settings = SETTINGS
TestNeverOvercommitTwin = machine_for(reference_class).TestCase
TestNeverOvercommitTwin.settings = SETTINGS
