"""The agent against a master whose store is unavailable (HTTP 503): reports are kept and sent
again, and the registration stands."""
import httpx
import pytest

from tests.agent.fake_master import FakeMaster
from tests.agent.test_agent_loop import launch, wait_until
from titus.agent.agent import Agent
from titus.agent.config import AgentConfig
from titus.agent.sim import SimRuntime


class BusyMaster(FakeMaster):
    """A fake master that answers 503, as the real one does while its store refuses writes."""

    def __init__(self):
        super().__init__()
        self.busy = False
        self.refused = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.busy:
            self.refused += 1
            return httpx.Response(503, headers={"Retry-After": "1"}, json={
                "error": "the store is unavailable; nothing was changed, retry later",
                "problems": [{"field": "(store)", "message": "the store is read-only"}]})
        return super().__call__(request)


@pytest.fixture
def setup(tmp_path):
    master = BusyMaster()
    config = AgentConfig(master_url="http://master.test", agent_id="a1", hosts=1,
                         heartbeat_interval_sec=0.05, max_backoff_sec=0.1)
    agent = Agent(config, SimRuntime(), client=master.client())
    yield master, agent
    agent.stop()


def test_a_refused_report_is_sent_again_without_a_new_registration(setup):
    master, agent = setup
    agent.start()
    wait_until(lambda: master.registrations)
    master.queue(launch("t1", duration=0.3))
    wait_until(lambda: "Started" in master.states_of("t1"))
    master.busy = True
    wait_until(lambda: agent.stats["master_busy"] >= 3 and agent.pending_count() >= 1)
    assert "Finished" not in master.states_of("t1")
    master.busy = False
    wait_until(lambda: "Finished" in master.states_of("t1"))
    assert master.states_of("t1").count("Finished") == 1
    assert len(master.registrations) == 1 and agent.pending_count() == 0


def test_a_refused_registration_is_tried_again(setup):
    master, agent = setup
    master.busy = True
    agent.start()
    wait_until(lambda: master.refused >= 3)
    assert not master.registrations and not agent.registered.is_set()
    master.busy = False
    wait_until(lambda: agent.registered.is_set())
    assert len(master.registrations) == 1
