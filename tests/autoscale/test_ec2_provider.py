"""The EC2 provider against moto's server over real HTTP (no patching of boto3)."""
import itertools

import pytest

from titus.autoscale.autoscaler import Autoscaler
from titus.autoscale.groups import InstanceGroup, InstanceGroupRegistry
from titus.autoscale.hostview import HostView
from titus.autoscale.providers.ec2 import Ec2Provider, _network_mbps
from titus.autoscale.rules import AutoscaleRule, RuleBook
from titus.scheduler.model import Task

pytestmark = pytest.mark.moto
REGION = "us-east-1"
_names = itertools.count()


@pytest.fixture(scope="module")
def image_id(moto_url):
    probe = Ec2Provider(region=REGION, endpoint_url=moto_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")
    return probe.ec2.describe_images(Filters=[{"Name": "name", "Values": ["amzn2-ami-*"]}])["Images"][0]["ImageId"]


@pytest.fixture
def provider(moto_url, image_id):
    return Ec2Provider(region=REGION, endpoint_url=moto_url, image_id=image_id, prefix=f"t{next(_names)}-",
                       aws_access_key_id="testing", aws_secret_access_key="testing")


def make_group(provider, **kw):
    spec = dict(name="batch", instance_type=provider.instance_type("m5.xlarge"),
                zones=("us-east-1a", "us-east-1b"), min_size=0, max_size=20)
    group = InstanceGroup(**{**spec, **kw})
    provider.ensure_group(group)
    return group


def views(provider, group, busy=()):
    """Hosts as their agents would report them: one per instance, instance_id attribute."""
    return [HostView(f"host-{iid}", group.name, zone, running=1 if iid in busy else 0,
                     attributes={"instance_id": iid, "zone": zone})
            for iid, zone in sorted(provider.instances(group).items())]


def test_instance_type_resources_come_from_describe_instance_types(provider):
    t = provider.instance_type("m5.xlarge")
    assert (t.cpus, t.memory_mb) == (4, 16384)
    assert t.network_mbps == 10000
    with pytest.raises(ValueError, match="instance_type"):
        provider.instance_type("z9.nonsense")


def test_network_performance_text():
    assert _network_mbps("Up to 10 Gigabit") == 10000 and _network_mbps("Moderate") == 500


def test_desired_capacity_follows_the_autoscaler_and_chosen_hosts_are_terminated(provider):
    group = make_group(provider)
    groups = InstanceGroupRegistry([group])
    rules = RuleBook(groups, [AutoscaleRule(group="batch", min_idle=0, max_idle=1, cooldown_sec=0)])
    scaler = Autoscaler(groups, rules, provider)
    assert provider.desired(group) == 0

    # 12 four-cpu tasks on 4-vcpu hosts: the ASG grows to 12.
    tasks = [Task(f"t{i}", cpus=4, memory_mb=1000) for i in range(12)]
    actions = scaler.step([], unplaced=tasks, now=0)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("up", "shortfall", 12)]
    assert provider.desired(group) == 12
    assert len(provider.instances(group)) == 12

    # Work done on all but 3 hosts... then everything finishes except on 2 hosts.
    ids = sorted(provider.instances(group))
    busy = set(ids[:2])
    actions = scaler.step(views(provider, group, busy), now=10)
    assert [(a.direction, a.reason, a.count) for a in actions] == [("down", "max_idle", 9)]
    chosen = set(actions[0].hosts)
    assert not chosen & {f"host-{i}" for i in busy}
    assert provider.desired(group) == 12  # disabled, not yet terminated

    actions = scaler.step(views(provider, group, busy), now=20)
    assert [(a.direction, a.count) for a in actions] == [("terminate", 9)]
    left = set(provider.instances(group))
    assert left == set(ids) - {h.removeprefix("host-") for h in chosen}
    assert busy <= left
    assert provider.desired(group) == 3


def test_terminate_refuses_hosts_outside_the_group(provider):
    group = make_group(provider, name="other", min_size=1)
    with pytest.raises(ValueError, match="not in"):
        provider.terminate(group, [HostView("h", "other", "us-east-1a", attributes={"instance_id": "i-0000"})])
    with pytest.raises(ValueError, match="instance_id"):
        provider.terminate(group, [HostView("h", "other", "us-east-1a")])


def test_ensure_group_updates_bounds_and_needs_an_image(provider, moto_url):
    group = make_group(provider, name="bounds", max_size=5)
    provider.ensure_group(group.updated(max_size=7))
    found = provider.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[provider.asg_name(group)])
    assert found["AutoScalingGroups"][0]["MaxSize"] == 7
    bare = Ec2Provider(region=REGION, endpoint_url=moto_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    with pytest.raises(ValueError, match="image_id"):
        bare.ensure_group(InstanceGroup.model_validate({**group.model_dump(), "name": "fresh"}))


def test_master_with_the_ec2_provider_creates_the_asg_and_describes_the_type(
        moto_url, image_id, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from titus.master.app import create_app
    from titus.master.config import MasterSettings
    from tests.master.conftest import make_master

    for key, value in {"TITUS_AUTOSCALE_PROVIDER": "ec2", "TITUS_AUTOSCALE_EC2_REGION": REGION,
                       "TITUS_AUTOSCALE_EC2_ENDPOINT_URL": moto_url, "TITUS_AUTOSCALE_EC2_IMAGE_ID": image_id,
                       "TITUS_AUTOSCALE_EC2_PREFIX": "master-", "TITUS_AUTOSCALE_INTERVAL_SEC": "60",
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    master = make_master(MasterSettings(store_url=f"sqlite:///{tmp_path / 'ec2.db'}"), clock=lambda: 0.0)
    try:
        with TestClient(create_app(master=master, start_loop=False)) as client:
            r = client.post("/api/v3/instanceGroups", json={
                "name": "web", "instance_type": "m5.2xlarge", "zones": ["us-east-1a"], "max_size": 4})
            assert r.status_code == 201, r.text
            assert (r.json()["instance_type"]["cpus"], r.json()["instance_type"]["memory_mb"]) == (8, 32768)
            r = client.post("/api/v3/instanceGroups", json={
                "name": "odd", "instance_type": "q9.nonsense", "zones": ["us-east-1a"]})
            assert r.status_code == 400 and r.json()["problems"][0]["field"] == "instance_type"
            provider = client.app.state.autoscale.provider
            asg = provider.asg.describe_auto_scaling_groups(AutoScalingGroupNames=["master-web"])
            assert asg["AutoScalingGroups"][0]["MaxSize"] == 4
    finally:
        master.store.close()
