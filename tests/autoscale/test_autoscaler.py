"""The decision step, scenario by scenario (after Fenzo's AutoScalerTest)."""
from prometheus_client import REGISTRY

from titus.autoscale.autoscaler import Autoscaler, balanced_choice
from titus.autoscale.hostview import HostView
from titus.autoscale.rules import AutoscaleRule, RuleBook
from titus.autoscale.shortfall import Shortfall
from titus.scheduler.model import Task
from tests.autoscale.fakes import MemoryProvider, RecordingCluster, group, hosts, registry


def make(groups, rules, desired=None):
    reg = registry(*groups)
    book = RuleBook(reg, rules)
    provider = MemoryProvider(desired)
    cluster = RecordingCluster()
    return Autoscaler(reg, book, provider, cluster, clock=lambda: 0.0), provider, cluster


def test_scale_up_from_zero_to_min_idle():
    scaler, provider, _ = make([group()], [AutoscaleRule(group="g4", min_idle=3, max_idle=5, cooldown_sec=10)])
    actions = scaler.step([], now=100)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("up", "min_idle", 3)]
    assert provider.desired(group()) == 3
    # The hosts asked for count as idle while they boot: no second request, even after the cooldown.
    assert scaler.step([], now=200) == []
    # Once they register and one gets busy, the next step (after cooldown) tops idle up again.
    joined = hosts("g4", {"a": 1, "b": 1, "c": 1}, running={"g4-a-0": 2})
    actions = scaler.step(joined, now=300)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("up", "min_idle", 1)]


def test_min_idle_scale_up_waits_for_the_cooldown():
    scaler, provider, _ = make([group()], [AutoscaleRule(group="g4", min_idle=2, max_idle=4, cooldown_sec=60)],
                               desired={"g4": 2})
    busy = hosts("g4", {"a": 2}, running={"g4-a-0": 1, "g4-a-1": 1})
    assert scaler.step(busy, now=0)[0].count == 2
    more_busy = busy + [HostView("n1", "g4", "b", 1), HostView("n2", "g4", "c", 1)]
    assert scaler.step(more_busy, now=30) == []        # within the cooldown
    assert scaler.step(more_busy, now=61)[0].count == 2  # after it


def test_scale_down_the_excess_over_max_idle_then_terminate_once_empty():
    scaler, provider, cluster = make([group()], [AutoscaleRule(group="g4", min_idle=1, max_idle=5, cooldown_sec=0)],
                                     desired={"g4": 8})
    fleet = hosts("g4", {"a": 3, "b": 3, "c": 2})
    actions = scaler.step(fleet, now=0)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("down", "max_idle", 3)]
    chosen = set(actions[0].hosts)
    assert set(cluster.disabled) == chosen and provider.terminated == []
    cluster.disabled.clear()
    # Next step: the chosen hosts are still empty, so they are terminated, and only they.
    actions = scaler.step(fleet, now=1)
    assert [(a.direction, a.count) for a in actions] == [("terminate", 3)]
    assert set(provider.terminated) == chosen == set(cluster.removed)
    assert provider.desired(group()) == 5


def test_scale_down_never_below_min_size():
    scaler, provider, _ = make([group(min_size=6)], [AutoscaleRule(group="g4", max_idle=0, cooldown_sec=0)],
                               desired={"g4": 8})
    actions = scaler.step(hosts("g4", {"a": 4, "b": 4}), now=0)
    assert actions[0].count == 2
    assert scaler.step(hosts("g4", {"a": 4, "b": 4}), now=1)[0].direction == "terminate"


def test_rule_min_size_grows_the_group_without_cooldown():
    scaler, provider, _ = make([group()], [AutoscaleRule(group="g4", min_size=4, max_idle=10, cooldown_sec=1e9)])
    actions = scaler.step([], now=0)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("up", "min_size", 4)]


def test_scale_up_never_above_max_size():
    scaler, provider, _ = make([group(max_size=5)], [AutoscaleRule(group="g4", min_idle=0, max_idle=0)],
                               desired={"g4": 3})
    busy = hosts("g4", {"a": 3}, running={f"g4-a-{i}": 1 for i in range(3)})
    tasks = [Task(f"t{i}", cpus=4, memory_mb=10) for i in range(10)]
    actions = scaler.step(busy, unplaced=tasks, now=0)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("up", "shortfall", 2)]
    assert provider.desired(group()) == 5
    assert scaler.last_shortfall.capped == 8


def test_shortfall_scale_up_does_not_wait_for_the_cooldown():
    scaler, provider, _ = make([group()], [AutoscaleRule(group="g4", min_idle=1, max_idle=2, cooldown_sec=600)])
    assert scaler.step([], now=0)[0].reason == "min_idle"
    busy = [HostView("h1", "g4", "a", running=1)]
    tasks = [Task(f"t{i}", cpus=2, memory_mb=10) for i in range(4)]
    actions = scaler.step(busy, unplaced=tasks, now=5)
    assert [(a.direction, a.reason) for a in actions] == [("up", "shortfall")]
    assert actions[0].count == 2


def test_thirty_two_one_cpu_tasks_on_four_cpu_hosts_with_two_idle_ask_for_six():
    scaler, provider, _ = make([group()], [AutoscaleRule(group="g4", min_idle=0, max_idle=0, cooldown_sec=0)],
                               desired={"g4": 2})
    idle = hosts("g4", {"a": 1, "b": 1})
    tasks = [Task(f"t{i}", cpus=1, memory_mb=100) for i in range(32)]
    actions = scaler.step(idle, unplaced=tasks, now=0)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("up", "shortfall", 6)]
    # The idle hosts are wanted by the shortfall: they are not scaled down although max_idle is 0.
    assert all(a.direction == "up" for a in actions)


def test_no_scale_down_while_the_group_has_a_shortfall():
    scaler, provider, _ = make([group(max_size=4)], [AutoscaleRule(group="g4", max_idle=0, cooldown_sec=0)],
                               desired={"g4": 4})
    fleet = hosts("g4", {"a": 4}, running={"g4-a-0": 1})
    wanted = Shortfall(new_hosts={}, used_empty={"g4": 0}, tasks={"g4": 5}, capped=5)
    assert scaler.step(fleet, shortfall=wanted, now=0) == []
    assert scaler.step(fleet, now=1)[0].count == 3


def test_scale_down_waits_for_the_cooldown_after_any_action():
    scaler, provider, _ = make([group()], [AutoscaleRule(group="g4", min_idle=1, max_idle=1, cooldown_sec=100)])
    scaler.step([], now=0)  # scale up to min_idle
    fleet = hosts("g4", {"a": 3})
    assert scaler.step(fleet, now=50) == []
    assert scaler.step(fleet, now=101)[0].direction == "down"


def test_zone_balanced_scale_down_takes_from_the_zone_with_most_idle_first():
    idle = hosts("g", {"a": 4, "b": 1, "c": 2})
    # a:4 -> a:3 -> a:2 ties c:2, and a wins the tie by name
    assert balanced_choice(idle, 3, idle) == ["g-a-0", "g-a-1", "g-a-2"]
    # with a busy host in c, c has more hosts in all and wins the tie
    members = idle + [HostView("busy", "g", "c", running=1)]
    assert balanced_choice(idle, 3, members) == ["g-a-0", "g-a-1", "g-c-0"]
    scaler, provider, cluster = make([group()], [AutoscaleRule(group="g4", max_idle=3, cooldown_sec=0)],
                                     desired={"g4": 9})
    fleet = hosts("g4", {"a": 5, "b": 2, "c": 2})
    chosen = scaler.step(fleet, now=0)[0].hosts
    left = [h.zone for h in fleet if h.id not in chosen]
    assert sorted(left) == ["a", "b", "c"]


def test_busy_and_just_placed_hosts_are_not_idle_and_never_terminated():
    scaler, provider, cluster = make([group()], [AutoscaleRule(group="g4", max_idle=0, cooldown_sec=0)],
                                     desired={"g4": 3})
    fleet = [HostView("busy", "g4", "a", running=2), HostView("fresh", "g4", "b", placed_this_round=True),
             HostView("idle", "g4", "c")]
    actions = scaler.step(fleet, now=0)
    assert actions[0].hosts == ("idle",)
    # A task landed on the chosen host before it was disabled: it is kept until the task ends.
    fleet[2] = HostView("idle", "g4", "c", running=1)
    assert scaler.step(fleet, now=1) == [] and provider.terminated == []
    fleet[2] = HostView("idle", "g4", "c", running=0)
    assert scaler.step(fleet, now=2)[0].direction == "terminate"
    assert provider.terminated == ["idle"]


def test_inactive_group_is_drained_and_each_host_terminated_once_empty():
    scaler, provider, cluster = make([group(lifecycle="Inactive", min_size=1)],
                                     [AutoscaleRule(group="g4", min_idle=1, max_idle=2)], desired={"g4": 2})
    fleet = [HostView("h1", "g4", "a", running=1), HostView("h2", "g4", "b")]
    actions = scaler.step(fleet, now=0)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("down", "inactive", 2)]
    assert set(cluster.disabled) == {"h1", "h2"}
    assert [a.hosts for a in scaler.step(fleet, now=1)] == [("h2",)]
    assert provider.terminated == ["h2"]


def test_phased_out_group_takes_no_tasks_and_is_not_scaled_until_active_again():
    scaler, provider, cluster = make([group(lifecycle="PhasedOut")], [AutoscaleRule(group="g4", min_idle=3, max_idle=3)])
    fleet = hosts("g4", {"a": 9})
    assert scaler.step(fleet, unplaced=[Task("t", cpus=1)], now=0) == []
    assert sorted(cluster.disabled) == sorted(h.id for h in fleet)
    scaler.groups.update("g4", lifecycle="Active")
    scaler.step(fleet, now=1)
    assert sorted(cluster.enabled) == sorted(h.id for h in fleet)


def test_actions_and_idle_hosts_are_in_the_metrics():
    g = group(name="metrics-g")
    scaler, provider, _ = make([g], [AutoscaleRule(group="metrics-g", min_idle=2, max_idle=2)])
    labels = {"group": "metrics-g", "direction": "up", "reason": "min_idle"}
    before = REGISTRY.get_sample_value("titus_autoscale_actions_total", labels) or 0
    scaler.step([HostView("x", "metrics-g", "a")], now=0)
    assert REGISTRY.get_sample_value("titus_autoscale_actions_total", labels) == before + 1
    assert REGISTRY.get_sample_value("titus_autoscale_idle_hosts", {"group": "metrics-g"}) == 1
    assert scaler.recent_actions("metrics-g")[-1].reason == "min_idle"
    status = {s.group: s for s in scaler.status()}["metrics-g"]
    assert (status.idle, status.pending, status.desired) == (1, 0, 1)


def test_two_groups_only_the_short_one_scales():
    small, big = group("small", cpus=4, memory_mb=16000), group("big", cpus=8, memory_mb=800)
    scaler, provider, _ = make([small, big], [AutoscaleRule(group="small"), AutoscaleRule(group="big")])
    tasks = [Task(f"t{i}", cpus=1, memory_mb=4000) for i in range(8)]  # too much memory for "big"
    actions = scaler.step([], unplaced=tasks, now=0)
    assert [(a.group, a.count) for a in actions] == [("small", 2)]


def test_hosts_the_provider_did_not_start_are_never_chosen():
    scaler, provider, cluster = make([group()], [AutoscaleRule(group="g4", max_idle=0, cooldown_sec=0)],
                                     desired={"g4": 4})
    provider.owned = lambda g, idle: {h.id for h in idle if not h.id.startswith("g4-a")}
    actions = scaler.step(hosts("g4", {"a": 2, "b": 2}), now=0)
    assert sorted(actions[0].hosts) == ["g4-b-0", "g4-b-1"]
