"""The local provider's bookkeeping (the end-to-end test runs real agents through it)."""
import pytest

from titus.autoscale.hostview import HostView
from titus.autoscale.providers.local import LocalProvider
from tests.autoscale.fakes import group


def test_bad_runtime_is_refused_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match="runtime"):
        LocalProvider("http://127.0.0.1:9", runtime="vm", workdir=tmp_path)


def test_hosts_it_did_not_start_are_neither_owned_nor_terminated(tmp_path):
    provider = LocalProvider("http://127.0.0.1:9", workdir=tmp_path)
    stranger = HostView("h1", "g4", "a", attributes={"instance_id": "someone-else"})
    assert provider.owned(group(), [stranger]) == set()
    with pytest.raises(ValueError, match="not an agent of group 'g4'"):
        provider.terminate(group(), [stranger])
    assert provider.desired(group()) == 0
    with pytest.raises(ValueError, match="count"):
        provider.grow(group(), -1)


def test_grow_deals_zones_evenly_and_stop_all_ends_the_agents(tmp_path):
    # The agents point at a closed port: they keep retrying until stopped, which is all we need.
    with LocalProvider("http://127.0.0.1:9", workdir=tmp_path, stop_timeout_sec=5) as provider:
        g = group(zones=("a", "b", "c"))
        assert provider.grow(g, 4) == 4
        zones = sorted(provider.agents("g4").values())
        assert zones == ["a", "a", "b", "c"]
        agent_id = next(iter(provider.agents("g4")))
        host = HostView(f"{agent_id}-h00000", "g4", "a", attributes={"instance_id": agent_id})
        assert provider.owned(g, [host]) == {host.id}
        provider.terminate(g, [host])
        assert provider.desired(g) == 3 and agent_id not in provider.agents()
    assert provider.agents() == {}
