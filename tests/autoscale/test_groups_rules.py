"""Instance groups and autoscale rules: validation names the field."""
import pytest
from pydantic import ValidationError

from titus.autoscale.groups import InstanceGroup, InstanceType, Lifecycle, hosts_for, zone_spread
from titus.autoscale.rules import AutoscaleRule, RuleBook
from tests.autoscale.fakes import group, registry


def test_group_host_attributes_carry_group_type_tier_and_zone():
    g = group(attributes={"stack": "main"})
    assert g.host_attributes("b") == {"stack": "main", "instance_group": "g4", "instance_type": "t4",
                                      "tier": "Flex", "zone": "b"}
    with pytest.raises(ValueError, match="zone 'z'"):
        g.host_attributes("z")


@pytest.mark.parametrize("changes, field", [
    ({"min_size": 5, "max_size": 2}, "min_size"),
    ({"min_size": -1}, "min_size"),
    ({"zones": ()}, "zones"),
    ({"zones": ("a", "a")}, "zones"),
    ({"name": "bad name!"}, "name"),
    ({"lifecycle": "Sleeping"}, "lifecycle"),
    ({"attributes": {"zone": "x"}}, "attributes"),
])
def test_invalid_group_is_refused_naming_the_field(changes, field):
    spec = {"name": "g", "instance_type": {"name": "m5", "cpus": 4, "memory_mb": 16000}, "zones": ["a"]}
    with pytest.raises(ValidationError) as err:
        InstanceGroup.model_validate({**spec, **changes})
    assert field in str(err.value)


def test_instance_type_needs_positive_cpus():
    with pytest.raises(ValidationError, match="cpus"):
        InstanceType(name="x", cpus=0, memory_mb=1)


def test_group_update_validates_and_refuses_rename():
    reg = registry(group())
    assert reg.update("g4", lifecycle="PhasedOut").lifecycle is Lifecycle.PHASED_OUT
    with pytest.raises(ValueError, match="name"):
        reg.update("g4", name="other")
    with pytest.raises(ValidationError, match="max_size"):
        reg.update("g4", max_size=-3)
    with pytest.raises(ValueError, match="already exists"):
        reg.create(group())
    with pytest.raises(KeyError):
        reg.delete("nope")


@pytest.mark.parametrize("fields, field", [
    ({"min_idle": 5, "max_idle": 2}, "min_idle"),
    ({"min_idle": -1}, "min_idle"),
    ({"max_idle": -2}, "max_idle"),
    ({"min_size": -1}, "min_size"),
    ({"max_size": -1}, "max_size"),
    ({"min_size": 4, "max_size": 3}, "min_size"),
    ({"cooldown_sec": -1}, "cooldown_sec"),
    ({"cooldown_sec": float("nan")}, "cooldown_sec"),
])
def test_invalid_rule_is_refused_naming_the_field(fields, field):
    with pytest.raises(ValidationError) as err:
        AutoscaleRule(group="g4", **fields)
    assert field in str(err.value)


def test_rule_for_unknown_group_is_refused():
    book = RuleBook(registry(group()))
    with pytest.raises(ValueError, match="group: instance group 'nope' is not known"):
        book.set(AutoscaleRule(group="nope"))


def test_rule_bounds_are_the_tighter_of_rule_and_group():
    g = group(min_size=1, max_size=10)
    assert AutoscaleRule(group="g4").bounds(g) == (1, 10)
    assert AutoscaleRule(group="g4", min_size=3, max_size=20).bounds(g) == (3, 10)


def test_rule_that_cannot_hold_for_its_group_is_refused():
    book = RuleBook(registry(group(max_size=4)))
    with pytest.raises(ValueError, match="min_size"):
        book.set(AutoscaleRule(group="g4", min_size=6))
    with pytest.raises(ValueError, match="min_idle"):
        book.set(AutoscaleRule(group="g4", min_idle=5, max_idle=5))


def test_helpers_spread_zones_and_bound_hosts():
    assert zone_spread(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
    t = InstanceType(name="m", cpus=4, memory_mb=1000)
    assert hosts_for(t, {"cpus": 32, "memory_mb": 500}) == 8
    with pytest.raises(ValueError, match="gpu"):
        hosts_for(t, {"gpu": 1})
