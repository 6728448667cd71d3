"""Agent settings, host descriptions, runtime choice and the ``titus agent`` command line."""
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from titus.agent.config import AgentConfig, make_runtime
from titus.agent.sim import SimRuntime
from titus.cli import main


def test_sim_hosts_spread_over_zones_with_distinct_instance_ids():
    config = AgentConfig(agent_id="a", hosts=6, zones=["z1", "z2", "z3"], cpus=8,
                         memory_mb=1024, attributes={"rack": "r7"})
    hosts = config.build_hosts()
    assert [h.attributes["zone"] for h in hosts] == ["z1", "z2", "z3"] * 2
    assert len({h.attributes["instance_id"] for h in hosts}) == 6
    assert all(h.cpus == 8 and h.memory_mb == 1024 for h in hosts)
    assert all(h.attributes["rack"] == "r7" and h.attributes["instance_type"] for h in hosts)


@pytest.mark.parametrize("field,value", [("runtime", "kvm"), ("zones", [" "]),
                                         ("master_url", "ftp://x"), ("hosts", 0)])
def test_bad_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ValidationError) as error:
        AgentConfig(**{field: value})
    assert field in str(error.value)


def test_docker_stands_for_exactly_one_host():
    with pytest.raises(ValueError, match="hosts"):
        AgentConfig(runtime="docker", hosts=3).build_hosts()


def test_sim_runtime_is_made_without_touching_docker():
    assert isinstance(make_runtime(AgentConfig(runtime="sim")), SimRuntime)


def test_cli_rejects_bad_attribute_and_runtime():
    runner = CliRunner()
    result = runner.invoke(main, ["agent", "--attribute", "novalue"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = runner.invoke(main, ["agent", "--runtime", "kvm"])
    assert result.exit_code == 2 and "kvm" in result.output
    result = runner.invoke(main, ["agent", "--master", "ftp://nowhere"])
    assert result.exit_code == 2 and "master_url" in result.output
