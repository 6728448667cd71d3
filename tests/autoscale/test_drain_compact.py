"""The autoscaler drains through the master (a scale-down never breaks a budget), and
compaction frees lightly used hosts (``titus.autoscale.compact``)."""
from __future__ import annotations

import pytest

from titus import states as S
from titus.autoscale.autoscaler import Autoscaler
from titus.autoscale.compact import choose_compaction
from titus.autoscale.hostview import HostView
from titus.autoscale.rules import AutoscaleRule, RuleBook
from titus.autoscale.service import AutoscaleService
from titus.master.validation import parse_job
from titus.protocol import HostInfo
from tests.autoscale.fakes import MemoryProvider, RecordingCluster, group, registry
from tests.master.conftest import ScriptedAgent, clock, make_master, settings  # noqa: F401


def view(host_id, used_cpus, running=1, cpus=4.0, zone="a"):
    return HostView(host_id, "g4", zone, running, cpus=cpus, memory_mb=16000.0,
                    used_cpus=used_cpus, used_memory_mb=used_cpus * 1000)


def test_compaction_picks_the_least_used_host_whose_tasks_fit_elsewhere():
    fleet = [view("h1", 3.5), view("h2", 0.5), view("h3", 0.75), view("h4", 2.0)]
    assert choose_compaction(fleet, set(), 0.25) == "h2"
    assert choose_compaction(fleet, set(), 0.0) is None  # off
    assert choose_compaction(fleet, {"h4"}, 0.25) is None  # one at a time
    assert choose_compaction(fleet, set(), 0.1) is None  # none used that little
    # a light host whose tasks do not fit on the others stays
    full = [view("h1", 4.0), view("h2", 0.5), view("h3", 3.9)]
    assert choose_compaction(full, set(), 0.25) is None
    assert choose_compaction([view("h1", 0.0, running=0)], set(), 0.5) is None  # idle: not ours


def test_the_autoscaler_compacts_only_when_asked_and_after_its_cooldown():
    fleet = [view(f"g4-a-{i}", used, zone="a") for i, used in enumerate((3.0, 0.5, 3.0, 2.0))]
    rules = [AutoscaleRule(group="g4", min_idle=0, max_idle=0, cooldown_sec=30)]
    for below, expected in ((0.0, []), (0.25, ["g4-a-1"])):
        reg = registry(group())
        cluster = RecordingCluster()
        scaler = Autoscaler(reg, RuleBook(reg, rules), MemoryProvider({"g4": 4}), cluster,
                            clock=lambda: 0.0, compact_below=below)
        actions = scaler.step(fleet, now=100)
        assert cluster.drained == expected
        assert [(a.direction, a.reason) for a in actions] == (
            [("down", "compact")] if expected else [])
        assert scaler.step(fleet, now=110) == []  # cooldown, and one at a time
    with pytest.raises(ValueError):
        Autoscaler(reg, RuleBook(reg, rules), MemoryProvider(), cluster, compact_below=float("nan"))


def test_scale_down_of_an_inactive_group_relocates_at_the_budgets_pace(settings, clock,  # noqa: F811
                                                                       tmp_path):
    settings = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'as.db'}"})
    master = make_master(settings, clock)
    try:
        old_agent = ScriptedAgent(master, "old", hosts=1, cpus=4)
        agent = ScriptedAgent(master, "new", hosts=2, cpus=4)
        for a, name in ((old_agent, "old"), (agent, "new")):
            a.hosts = [HostInfo(host_id=h.host_id, cpus=4, memory_mb=8192, attributes={
                **h.attributes, "instance_group": name}) for h in a.hosts]
            a.register()
        agents = (old_agent, agent)
        service = AutoscaleService(master, provider=MemoryProvider({"old": 1, "new": 2}))
        from titus.autoscale.groups import InstanceGroup, InstanceType

        kind = InstanceType(name="m5", cpus=4, memory_mb=8192)
        service.put_group(InstanceGroup(name="old", instance_type=kind, zones=("a", "b"),
                                        lifecycle="Active"))
        service.put_group(InstanceGroup(name="new", instance_type=kind, zones=("a", "b")))
        job = master.submit_job(parse_job({
            "applicationName": "svc", "container": {"image": {"name": "nginx"}},
            "attributes": {"titus.spread": "false"},
            "service": {"capacity": {"min": 0, "desired": 2, "max": 4}},
            "disruptionBudget": {"availabilityPercentageLimit": {
                "percentageOfHealthyContainers": 50}, "rateUnlimited": {}}}))
        old_host = old_agent.hosts[0].host_id
        master.hold_off_hosts([h.host_id for h in agent.hosts])  # land on the old one
        master.scheduling.run_round(force=True)
        old_agent.start_launched()
        master.release_hosts([h.host_id for h in agent.hosts])
        assert {t.host_id for t in master.jobs[job.id].tasks.values()} == {old_host}
        service.put_group(InstanceGroup(name="old", instance_type=kind, zones=("a", "b"),
                                        lifecycle="Inactive"))
        service.set_rule(AutoscaleRule(group="old", min_idle=0, max_idle=0, cooldown_sec=0))
        service.step()  # the old group's host is drained through the master
        assert old_host in master.state.drains
        lowest = 2
        for _ in range(10):
            master.reconciler.reconcile()
            master.scheduling.run_round(force=True)
            for a in agents:
                if master.registry.get(a.id) is not None:  # not yet terminated
                    a.start_launched()
            serving = [t for t in master.jobs[job.id].tasks.values() if t.state == S.STARTED]
            lowest = min(lowest, len(serving))
            service.step()
        assert lowest >= 1  # 50% of 2 kept, every step
        assert service.provider.terminated == [old_host]  # empty, then terminated
        assert old_host not in master.state.drains  # forgotten with the host
        live = [t for t in master.jobs[job.id].tasks.values() if t.state != S.FINISHED]
        assert len(live) == 2 and all(t.host_id != old_host for t in live)
    finally:
        master.store.close()
