"""The autoscaler under faults, against moto's server over HTTP: a group deleted out of band
or failing with injected API errors is reported for itself and retried with back-off while the
others scale; instances that never join are terminated and asked for again; lowering a
group's bounds never terminates a busy host."""
import itertools

import pytest

from titus.autoscale import metrics
from titus.autoscale.autoscaler import Autoscaler
from titus.autoscale.groups import InstanceGroup, InstanceGroupRegistry
from titus.autoscale.hostview import HostView
from titus.autoscale.providers.ec2 import Ec2Provider
from titus.autoscale.rules import AutoscaleRule, RuleBook
from titus.scheduler.model import Task
from tests.faults.aws import AwsFaults

pytestmark = pytest.mark.moto
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b")
_names = itertools.count()


@pytest.fixture(scope="module")
def image_id(moto_url):
    probe = Ec2Provider(region=REGION, endpoint_url=moto_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")
    images = probe.ec2.describe_images(Filters=[{"Name": "name", "Values": ["amzn2-ami-*"]}])
    return images["Images"][0]["ImageId"]


@pytest.fixture
def provider(moto_url, image_id):
    return Ec2Provider(region=REGION, endpoint_url=moto_url, image_id=image_id,
                       prefix=f"f{next(_names)}-", aws_access_key_id="testing",
                       aws_secret_access_key="testing")


def groups_of(provider, *names, **kw):
    made = []
    for name in names:
        group = InstanceGroup(name=name, instance_type=provider.instance_type("m5.xlarge"),
                              zones=ZONES, **{"min_size": 0, "max_size": 10, **kw})
        provider.ensure_group(group)
        made.append(group)
    return InstanceGroupRegistry(made)


def scaler(provider, groups, rules, **kw):
    errors = []
    a = Autoscaler(groups, RuleBook(groups, rules), provider,
                   on_error=lambda g, e, at: errors.append((g, e, at)), **kw)
    return a, errors


def hosts_for(provider, group, joined=None, busy=()):
    """A host per instance of ``group`` (or only those in ``joined``), as agents report them."""
    return [HostView(f"host-{iid}", group.name, zone, running=1 if iid in busy else 0,
                     attributes={"instance_id": iid, "zone": zone})
            for iid, zone in sorted(provider.instances(group).items())
            if joined is None or iid in joined]


def status(a, name):
    return {s.group: s for s in a.status()}[name]


def tasks(n, cpus=4):
    return [Task(f"t{i}", cpus=cpus, memory_mb=1000) for i in range(n)]


def test_a_group_deleted_out_of_band_fails_alone_and_the_others_scale(provider):
    groups = groups_of(provider, "alpha", "beta")
    rules = [AutoscaleRule(group=g, min_idle=0, max_idle=2, cooldown_sec=0)
             for g in ("alpha", "beta")]
    a, errors = scaler(provider, groups, rules, error_backoff_sec=(10, 600))
    provider.asg.delete_auto_scaling_group(AutoScalingGroupName=provider.asg_name("alpha"),
                                           ForceDelete=True)
    before = metrics.GROUP_ERRORS.labels("alpha")._value.get()
    actions = a.step([], unplaced=tasks(3), now=0)  # work both groups fit
    assert [(x.group, x.direction, x.reason, x.count) for x in actions] == [
        ("beta", "up", "shortfall", 3)]
    assert provider.desired(groups.get("beta")) == 3
    alpha = status(a, "alpha")
    assert "does not exist" in alpha.error and alpha.retry_at == 10
    assert [(g, at) for g, _, at in errors] == [("alpha", 10)]
    assert metrics.GROUP_ERRORS.labels("alpha")._value.get() == before + 1
    assert metrics.GROUP_FAILING.labels("alpha")._value.get() == 1
    assert status(a, "beta").error == ""
    # inside its back-off alpha is left alone; then tried again, and the back-off doubles
    a.step(hosts_for(provider, groups.get("beta")), now=5)
    assert len(errors) == 1
    a.step(hosts_for(provider, groups.get("beta")), now=10)
    assert [at for _, _, at in errors] == [10, 30]


def test_an_injected_api_error_is_retried_with_back_off_and_then_recovers(provider):
    groups = groups_of(provider, "alpha", "beta")
    rules = [AutoscaleRule(group="alpha", min_idle=1, max_idle=2, cooldown_sec=0),
             AutoscaleRule(group="beta", min_idle=1, max_idle=2, cooldown_sec=0)]
    a, errors = scaler(provider, groups, rules, error_backoff_sec=(10, 600))
    faults = AwsFaults(provider.asg)
    alpha_asg = provider.asg_name("alpha")
    faults.fail("SetDesiredCapacity", "Throttling",
                when=lambda params: params.get("AutoScalingGroupName") == alpha_asg)
    actions = a.step([], now=0)
    assert [(x.group, x.direction) for x in actions] == [("beta", "up")]
    assert "Throttling" in status(a, "alpha").error
    faults.clear()  # AWS stops throttling: the next try after the back-off succeeds
    actions = a.step(hosts_for(provider, groups.get("beta")), now=10)
    assert [(x.group, x.direction, x.reason) for x in actions] == [("alpha", "up", "min_idle")]
    assert status(a, "alpha").error == "" and status(a, "alpha").retry_at is None
    assert metrics.GROUP_FAILING.labels("alpha")._value.get() == 0


def test_instances_that_never_join_are_terminated_and_asked_for_again(provider):
    groups = groups_of(provider, "batch")
    group = groups.get("batch")
    rules = [AutoscaleRule(group="batch", min_idle=0, max_idle=0, cooldown_sec=0)]
    a, _ = scaler(provider, groups, rules, provision_timeout_sec=900,
                  provision_backoff_sec=(60, 3600))
    full = tasks(2, cpus=4)  # two full-host tasks
    assert [(x.direction, x.count) for x in a.step([], unplaced=full, now=0)] == [("up", 2)]
    first = set(provider.instances(group))
    assert a.step([], unplaced=full, now=899) == []  # booting: not asked twice
    s = status(a, "batch")
    assert s.requested == 2 and {i.state for i in s.instances} == {"requested"}
    actions = a.step([], unplaced=full, now=900)  # nobody ever joined
    assert [(x.direction, x.reason, set(x.hosts)) for x in actions] == [
        ("terminate", "provision_timeout", first)]
    assert provider.desired(group) == 0 and not set(provider.instances(group)) & first
    assert a.step([], unplaced=full, now=950) == []  # back-off before asking again
    assert [(x.direction, x.count) for x in a.step([], unplaced=full, now=960)] == [("up", 2)]
    second = set(provider.instances(group))
    actions = a.step([], unplaced=full, now=1860)
    assert [(x.reason, set(x.hosts)) for x in actions] == [("provision_timeout", second)]
    assert a.step([], unplaced=full, now=1979) == []  # the back-off doubled: 120 s
    assert [x.direction for x in a.step([], unplaced=full, now=1980)] == ["up"]


def test_an_instance_that_has_not_joined_is_never_an_idle_host(provider):
    groups = groups_of(provider, "batch")
    group = groups.get("batch")
    provider.grow(group, 3)
    real = sorted(provider.instances(group))[0]  # one joins, two never do
    rules = [AutoscaleRule(group="batch", min_idle=1, max_idle=1, cooldown_sec=0)]
    a, _ = scaler(provider, groups, rules)
    for now in (0, 60, 120):
        actions = a.step(hosts_for(provider, group, joined={real}), now=now)
        assert not [x for x in actions if x.direction in ("down", "terminate")], actions
    s = status(a, "batch")
    assert (s.registered, s.requested, s.idle) == (1, 2, 1)
    assert sorted(i.state for i in s.instances) == ["joined", "requested", "requested"]


def test_lowering_max_size_drains_only_idle_hosts_then_lowers_the_asg(provider):
    groups = groups_of(provider, "batch")
    group = groups.get("batch")
    provider.grow(group, 4)
    ids = sorted(provider.instances(group))
    busy = set(ids[:2])
    rules = [AutoscaleRule(group="batch", min_idle=0, max_idle=4, cooldown_sec=0)]
    a, _ = scaler(provider, groups, rules)
    assert a.step(hosts_for(provider, group, busy=busy), now=0) == []
    lowered = group.updated(min_size=0, max_size=2)  # what PUT .../instanceGroups/batch does
    provider.ensure_group(lowered)
    groups.put(lowered)
    asg = provider._describe(provider.asg_name(group))
    assert asg["DesiredCapacity"] == 4 and asg["MaxSize"] == 4  # the ASG kills nobody itself
    assert set(provider.instances(group)) == set(ids)
    actions = a.step(hosts_for(provider, group, busy=busy), now=10)
    assert [(x.direction, x.reason) for x in actions] == [("down", "max_size")]
    assert {h.removeprefix("host-") for h in actions[0].hosts} == set(ids[2:])
    actions = a.step(hosts_for(provider, group, busy=busy), now=20)
    assert [(x.direction, x.reason) for x in actions] == [("terminate", "max_size")]
    assert set(provider.instances(group)) == busy  # both busy hosts still run
    asg = provider._describe(provider.asg_name(group))
    assert (asg["DesiredCapacity"], asg["MaxSize"]) == (2, 2)
    s = status(a, "batch")
    assert sorted(i.state for i in s.instances) == ["joined", "joined", "terminating",
                                                    "terminating"]
    # a raised min_size asks for hosts; it never removes any
    raised = lowered.updated(min_size=2, max_size=4)
    provider.ensure_group(raised)
    groups.put(raised)
    actions = a.step(hosts_for(provider, group, busy=busy), now=30)
    assert not [x for x in actions if x.direction in ("down", "terminate")]
    assert set(provider.instances(group)) >= busy
