"""Instance groups in the master: REST management, agents' groups, the step on real state."""
import pytest
from fastapi.testclient import TestClient

from titus.protocol import HostInfo, RegisterRequest
from titus.master.app import create_app
from tests.autoscale.fakes import MemoryProvider
from tests.master.conftest import make_master, settings, clock  # noqa: F401  (fixtures)

GROUP = {"name": "batch", "instance_type": {"name": "m5.xlarge", "cpus": 4, "memory_mb": 16384},
         "zones": ["a", "b"], "min_size": 0, "max_size": 10}
JOB = {
    "applicationName": "crunch", "owner": {"teamEmail": "me@me.com"},
    "container": {"image": {"name": "alpine", "tag": "latest"}, "entryPoint": ["/bin/true"],
                  "resources": {"cpu": 1, "memoryMB": 512}},
    "batch": {"size": 12, "runtimeLimitSec": "3600", "retryPolicy": {"immediate": {"retries": 0}}},
}


@pytest.fixture
def master(settings, clock, tmp_path):  # noqa: F811
    s = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'ig.db'}"})
    m = make_master(s, clock)
    yield m
    m.store.close()


@pytest.fixture
def client(master, monkeypatch):
    monkeypatch.delenv("TITUS_AUTOSCALE_PROVIDER", raising=False)
    with TestClient(create_app(master=master, start_loop=False)) as c:
        yield c


def register(master, agent_id, zone, group="batch"):
    master.register_agent(RegisterRequest(agent_id=agent_id, hosts=[HostInfo(
        host_id=f"{agent_id}-h0", cpus=4, memory_mb=16384,
        attributes={"zone": zone, "instance_group": group, "instance_id": agent_id})]))


def test_groups_and_rules_are_managed_through_rest_and_stored(client, master):
    r = client.post("/api/v3/instanceGroups", json=GROUP)
    assert r.status_code == 201, r.text
    assert r.json()["instance_type"]["cpus"] == 4 and r.json()["rule"] is None
    assert client.post("/api/v3/instanceGroups", json=GROUP).status_code == 409
    r = client.put("/api/v3/instanceGroups/batch/rule", json={"min_idle": 1, "max_idle": 2, "cooldown_sec": 5})
    assert r.status_code == 200 and r.json()["rule"]["max_idle"] == 2
    r = client.put("/api/v3/instanceGroups/batch", json={"lifecycle": "PhasedOut"})
    assert r.json()["lifecycle"] == "PhasedOut"
    # A new service on the same store sees what was stored.
    from titus.autoscale.service import AutoscaleService
    again = AutoscaleService(master)
    assert again.groups.get("batch").lifecycle.value == "PhasedOut"
    assert again.rules.get("batch").min_idle == 1
    assert client.delete("/api/v3/instanceGroups/batch").status_code == 200
    assert client.get("/api/v3/instanceGroups/batch").status_code == 404
    assert AutoscaleService(master).rules.get("batch") is None


@pytest.mark.parametrize("path, body, field", [
    ("/api/v3/instanceGroups/batch/rule", {"min_idle": 3, "max_idle": 1}, "min_idle"),
    ("/api/v3/instanceGroups/batch/rule", {"min_idle": -1}, "min_idle"),
    ("/api/v3/instanceGroups/batch/rule", {"max_size": -1}, "max_size"),
    ("/api/v3/instanceGroups/nope/rule", {"min_idle": 0}, "group"),
])
def test_invalid_rules_are_refused_naming_the_field(client, path, body, field):
    client.post("/api/v3/instanceGroups", json=GROUP)
    r = client.put(path, json=body)
    assert r.status_code == 400, r.text
    assert [p["field"] for p in r.json()["problems"]] == [field]


def test_invalid_group_is_refused_naming_the_field(client):
    r = client.post("/api/v3/instanceGroups", json={**GROUP, "min_size": 5, "max_size": 2})
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "min_size"
    r = client.post("/api/v3/instanceGroups", json={**GROUP, "zones": []})
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "zones"


def test_step_scales_up_for_waiting_tasks_and_down_without_killing(client, master):
    client.post("/api/v3/instanceGroups", json=GROUP)
    client.put("/api/v3/instanceGroups/batch/rule", json={"min_idle": 0, "max_idle": 0, "cooldown_sec": 0})
    service = client.app.state.autoscale
    provider = service.provider = service.autoscaler.provider = MemoryProvider()
    assert client.post("/api/v3/jobs", json=JOB).status_code == 202
    # No host at all: the 12 one-cpu tasks ask for 3 four-cpu hosts.
    actions = service.step()
    assert [(a.direction, a.reason, a.count) for a in actions] == [("up", "shortfall", 3)]
    # The hosts boot and register; nothing more is asked for while they do.
    assert service.step() == []
    for i, zone in enumerate(["a", "b", "a", "b"]):
        register(master, f"ag{i}", zone)
    master.scheduling.run_round(force=True)
    busy = {t.host_id for t in master.tasks.values() if t.host_id}
    assert len(busy) == 3
    # One idle host beyond max_idle 0: it is disabled, then terminated; busy hosts are kept.
    actions = service.step()
    assert [(a.direction, a.reason) for a in actions] == [("down", "max_idle")]
    (chosen,) = actions[0].hosts
    assert chosen not in busy and not master.scheduler.is_enabled(chosen)
    actions = service.step()
    assert [(a.direction, a.hosts) for a in actions] == [("terminate", (chosen,))]
    assert provider.terminated == [chosen]
    assert chosen.removesuffix("-h0") not in master.registry.agents
    view = client.get("/api/v3/instanceGroups/batch").json()
    assert view["status"]["registered"] == 3 and view["status"]["idle"] == 0
    assert [a["direction"] for a in view["actions"]] == ["up", "down", "terminate"]
    # Each action is also counted in /metrics.
    metrics = client.get("/metrics").text
    assert 'titus_autoscale_actions_total{direction="up",group="batch",reason="shortfall"}' in metrics


def test_phased_out_group_hosts_take_no_new_tasks(client, master):
    client.post("/api/v3/instanceGroups", json={**GROUP, "lifecycle": "PhasedOut"})
    client.put("/api/v3/instanceGroups/batch/rule", json={"max_idle": 5})
    service = client.app.state.autoscale
    service.provider = service.autoscaler.provider = MemoryProvider({"batch": 1})
    register(master, "old", "a")
    service.step()
    client.post("/api/v3/jobs", json=JOB)
    assert master.scheduling.run_round(force=True) == 0
    client.put("/api/v3/instanceGroups/batch", json={"lifecycle": "Active"})
    service.step()
    assert master.scheduling.run_round(force=True) == 4


def test_actions_are_published_on_the_observe_stream(client, master):
    import asyncio

    client.post("/api/v3/instanceGroups", json=GROUP)
    client.put("/api/v3/instanceGroups/batch/rule", json={"min_idle": 2, "max_idle": 2})
    service = client.app.state.autoscale
    service.provider = service.autoscaler.provider = MemoryProvider()

    async def observe_one_step():
        sub = master.events.subscribe()
        await asyncio.get_running_loop().run_in_executor(None, service.step)
        return await asyncio.wait_for(sub.queue.get(), 5)

    kind, payload = asyncio.run(observe_one_step())
    assert kind == "autoscaleAction"
    assert (payload["group"], payload["direction"], payload["reason"], payload["count"]) == \
        ("batch", "up", "min_idle", 2)


def test_draining_hosts_survive_a_master_restart(client, master, clock):  # noqa: F811
    from titus.autoscale.service import AutoscaleService

    client.post("/api/v3/instanceGroups", json=GROUP)
    client.put("/api/v3/instanceGroups/batch/rule", json={"min_idle": 0, "max_idle": 0, "cooldown_sec": 0})
    service = client.app.state.autoscale
    service.provider = service.autoscaler.provider = MemoryProvider({"batch": 2})
    register(master, "ag0", "a")
    register(master, "ag1", "b")
    actions = service.step()
    assert [(a.direction, a.reason) for a in actions] == [("down", "max_idle")]
    chosen = set(actions[0].hosts)
    # The master restarts before the hosts are empty-checked and terminated; the agents
    # register again (their hosts come back enabled).
    again = make_master(master.settings, clock)
    try:
        provider = MemoryProvider({"batch": 2})
        restarted = AutoscaleService(again, provider=provider)
        assert restarted.autoscaler.draining("batch") == chosen
        register(again, "ag0", "a")
        register(again, "ag1", "b")
        # off from the first registration on, before any autoscaler step
        assert not any(again.scheduler.is_enabled(h) for h in chosen)
        actions = restarted.step()
        # it goes on draining the same hosts: they are terminated, none chosen anew
        assert [(a.direction, a.reason, set(a.hosts)) for a in actions] == [("terminate", "max_idle", chosen)]
        assert set(provider.terminated) == chosen
        assert restarted.autoscaler.draining("batch") == set()
        assert AutoscaleService(again).autoscaler.draining("batch") == set()
    finally:
        again.store.close()


def test_a_failing_group_shows_its_error_and_instances_in_the_rest_view(client, master):
    client.post("/api/v3/instanceGroups", json=GROUP)
    client.put("/api/v3/instanceGroups/batch/rule", json={"min_idle": 1, "max_idle": 1,
                                                           "cooldown_sec": 0})
    service = client.app.state.autoscale

    class Broken(MemoryProvider):
        def desired(self, group):
            raise KeyError("Auto Scaling group 'titus-batch' does not exist")

    service.provider = service.autoscaler.provider = Broken()
    assert service.step() == []  # reported, not raised
    status = client.get("/api/v3/instanceGroups/batch").json()["status"]
    assert "does not exist" in status["error"] and status["retry_at"] > 0
    service.provider = service.autoscaler.provider = MemoryProvider()
    register(master, "ag0", "a")
    service.autoscaler._state["batch"].retry_at = 0  # its back-off is over
    service.step()
    status = client.get("/api/v3/instanceGroups/batch").json()["status"]
    assert status["error"] == ""
    assert [(i["host_id"], i["state"]) for i in status["instances"]] == [("ag0-h0", "joined")]
