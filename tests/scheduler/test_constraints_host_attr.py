"""HostAttrValue: the host's attribute must match one of the values (``hostname`` = host id)."""
from titus.constraints import HostAttrValue
from titus.scheduler.model import Host, Task

from tests.scheduler.helpers import zone_hosts, zone_of


def test_hard_value_picks_the_matching_zone(make_scheduler):
    s = make_scheduler(zone_hosts("abc", per_zone=2))
    r = s.schedule([Task(f"t{i}", cpus=1, hard=[HostAttrValue("zone", "b")]) for i in range(5)])
    assert {zone_of(h) for h in r.assignments.values()} == {"b"}
    assert len(r.assignments) == 5


def test_hard_values_accept_any_listed_value(make_scheduler):
    s = make_scheduler(zone_hosts("abc", cpus=1), fitness="cpu_spread")
    r = s.schedule([Task(f"t{i}", cpus=1, hard=[HostAttrValue("zone", values=["a", "c"])])
                    for i in range(3)])
    assert sorted(zone_of(h) for h in r.assignments.values()) == ["a", "c"]
    assert r.failures["t2"].counts == {"cpus": 2, "constraint:HostAttrValue": 1}


def test_hard_value_with_no_match_fails_with_its_arguments(make_scheduler):
    s = make_scheduler(zone_hosts("ab"))
    r = s.schedule([Task("t", cpus=1, hard=[HostAttrValue("zone", "z")])])
    assert r.failures["t"].counts == {"constraint:HostAttrValue": 2}
    assert r.failures["t"].message == "0/2 hosts: 2 constraint:HostAttrValue(zone=z)"


def test_host_without_the_attribute_does_not_match(make_scheduler):
    s = make_scheduler([Host("bare", cpus=4), Host("tagged", cpus=4, attributes={"rack": "r1"})])
    r = s.schedule([Task("t", cpus=1, hard=[HostAttrValue("rack", "r1")])])
    assert r.assignments == {"t": "tagged"}


def test_hostname_is_the_host_id(make_scheduler):
    s = make_scheduler([Host(f"h{i}", cpus=4) for i in range(5)], fitness="cpu_binpack")
    r = s.schedule([Task("t", cpus=1, hard=[HostAttrValue("hostname", "h3")]),
                    Task("u", cpus=1, hard=[HostAttrValue("hostname", values=["h0", "h4"])])])
    assert r.assignments["t"] == "h3"
    assert r.assignments["u"] in {"h0", "h4"}


def test_soft_value_outweighs_packing(make_scheduler):
    # Packing favours the small host (fit 0.25 vs 0.0625), the soft constraint the big one:
    # (0.5*0 + 0.35*0.25)/0.85 = 0.10 < (0.5*1 + 0.35*0.0625)/0.85 = 0.61.
    hosts = [Host("small", cpus=4, attributes={"zone": "a"}),
             Host("big", cpus=16, attributes={"zone": "b"})]
    s = make_scheduler(hosts, fitness="cpu_binpack")
    r = s.schedule([Task("t", cpus=1, soft=[HostAttrValue("zone", "b")])])
    assert r.assignments == {"t": "big"}


def test_soft_value_still_places_when_nothing_matches(make_scheduler):
    hosts = [Host("small", cpus=4, attributes={"zone": "a"}),
             Host("big", cpus=2, attributes={"zone": "b"})]
    s = make_scheduler(hosts, fitness="cpu_binpack")
    r = s.schedule([Task("t", cpus=3, soft=[HostAttrValue("zone", "b")])])
    assert r.assignments == {"t": "small"}
