"""The budget, eviction and drain routes over HTTP: shapes, scopes, hostile input, retries,
the CLI commands, and default spread through the engine."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from titus.master.app import create_app
from titus.master.auth import digest
from titus.master.config import MasterSettings
from titus.master.engine_adapter import spread_constraints
from titus.protocol import TaskStatusMsg
from tests.master.conftest import ScriptedAgent

TOKENS = {"alice": ["user"], "bob": ["user"], "root": ["admin"], "reader": ["read"]}


def job(desired=3, **extra) -> dict:
    return {"applicationName": "svc", "container": {"image": {"name": "nginx"}},
            "service": {"capacity": {"min": 0, "desired": desired, "max": 10}}, **extra}


@pytest.fixture
def world(tmp_path):
    lines = ["tokens:"]
    for name, scopes in TOKENS.items():
        lines += [f"  - name: {name}", f"    sha256: {digest(name + '-t')}",
                  f"    scopes: [{', '.join(scopes)}]"]
    (tmp_path / "tokens.yaml").write_text("\n".join(lines) + "\n")
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}",
                              token_file=str(tmp_path / "tokens.yaml"), submit_rate_per_sec=0)
    with TestClient(create_app(settings, start_loop=False)) as http:
        master = http.app.state.master
        agent = ScriptedAgent(master, "a1", hosts=3, cpus=4, zones=("a", "b", "c"))
        agent.register()
        headers = {n: {"Authorization": f"Bearer {n}-t"} for n in TOKENS}
        yield http, master, agent, headers


def run(master, agent, rounds=2):
    for _ in range(rounds):
        master.scheduling.run_round(force=True)
        agent.start_launched()
        master.reconciler.reconcile()


def submit(http, headers, body) -> str:
    r = http.post("/api/v3/jobs", json=body, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_a_job_echoes_its_budget_and_gets_the_default(world):
    http, _, _, h = world
    job_id = submit(http, h["alice"], job())
    got = http.get(f"/api/v3/jobs/{job_id}", headers=h["reader"]).json()
    assert got["jobDescriptor"]["disruptionBudget"]["availabilityPercentageLimit"] == {
        "percentageOfHealthyContainers": 95.0}
    budget = {"unhealthyTasksLimit": {"limitOfUnhealthyContainers": "2"},
              "ratePerInterval": {"intervalMs": "60000", "limitPerInterval": 1}}
    job_id = submit(http, h["alice"], job(disruptionBudget=budget))
    got = http.get(f"/api/v3/jobs/{job_id}", headers=h["reader"]).json()
    assert got["jobDescriptor"]["disruptionBudget"] == {
        "unhealthyTasksLimit": {"limitOfUnhealthyContainers": 2},
        "ratePerInterval": {"intervalMs": "60000", "limitPerInterval": 1}}


@pytest.mark.parametrize("budget,field", [
    ({"availabilityPercentageLimit": {"percentageOfHealthyContainers": 1e300}},
     "disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers"),
    ({"selfManaged": {}, "timeWindows": [{"timeZone": "\ud800"}]}, None),
    ({"selfManaged": {"relocationTimeMs": "1" * 30}}, None),
    ({"selfManaged": {}, "ratePerInterval": {"intervalMs": -5, "limitPerInterval": 1}},
     "disruptionBudget.ratePerInterval.intervalMs"),
])
def test_hostile_budgets_over_http_are_400(world, budget, field):
    http, _, _, h = world
    r = http.post("/api/v3/jobs", content=json.dumps(job(disruptionBudget=budget)),
                  headers={**h["alice"], "content-type": "application/json"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] and body["problems"]
    if field:
        assert field in [p["field"] for p in body["problems"]]


def test_raw_nan_and_infinity_in_a_budget_are_400(world):
    http, _, _, h = world
    for text in ("NaN", "1e999", "-Infinity"):
        raw = ('{"applicationName": "a", "container": {"image": {"name": "x"}}, "service": '
               '{"capacity": {"min": 0, "desired": 1, "max": 1}}, "disruptionBudget": '
               '{"availabilityPercentageLimit": {"percentageOfHealthyContainers": %s}}}' % text)
        r = http.post("/api/v3/jobs", content=raw, headers={
            **h["alice"], "content-type": "application/json"})
        assert r.status_code == 400, (text, r.text)


def test_quota_and_eviction_routes(world):
    http, master, agent, h = world
    job_id = submit(http, h["alice"], job(3, disruptionBudget={
        "availabilityPercentageLimit": {"percentageOfHealthyContainers": 60},
        "rateUnlimited": {}}))
    run(master, agent)
    q = http.get(f"/api/v3/eviction/quotas/jobs/{job_id}", headers=h["reader"])
    assert q.status_code == 200
    assert q.json()["reference"] == {"jobId": job_id} and q.json()["quota"] == 1
    tasks = http.get("/api/v3/tasks", params={"jobId": job_id}, headers=h["reader"]).json()
    first, second = tasks["items"][0]["id"], tasks["items"][1]["id"]
    assert http.delete(f"/api/v3/eviction/tasks/{first}", headers=h["bob"]).status_code == 403
    assert http.delete(f"/api/v3/eviction/tasks/{first}", headers=h["reader"]).status_code == 403
    assert http.delete(f"/api/v3/eviction/tasks/{first}").status_code == 401
    r = http.delete(f"/api/v3/eviction/tasks/{first}", headers=h["alice"])
    assert r.status_code == 200 and r.json()["allowed"] is True, r.text
    for _ in range(2):  # retried: the same task is not killed again
        again = http.delete(f"/api/v3/eviction/tasks/{first}", headers=h["alice"])
        assert again.status_code == 200
        assert again.json() == {"allowed": False, "reasonCode": "alreadyEvicted",
                                "reason": "the task is already evicted"}
    refused = http.delete(f"/api/v3/eviction/tasks/{second}", headers=h["root"])
    assert refused.status_code == 200 and refused.json()["allowed"] is False
    assert "availabilityPercentageLimit" in refused.json()["reason"]
    agent.heartbeat()  # takes the orders queued for it
    kills = [o for o in agent.orders if o.type == "kill"]
    assert [o.task_id for o in kills] == [first]
    for path in ("/api/v3/eviction/tasks/nope", "/api/v3/eviction/tasks/%00",
                 "/api/v3/eviction/tasks/" + "x" * 5000):
        r = http.delete(path, headers=h["root"])
        assert r.status_code == 404, (path, r.status_code)
    assert http.get("/api/v3/eviction/quotas/jobs/nope", headers=h["reader"]).status_code == 404


def test_drain_routes_scopes_and_hostile_deadlines(world):
    http, master, agent, h = world
    host = agent.hosts[0].host_id
    url = f"/api/v3/hosts/{host}/drain"
    assert http.put(url, headers=h["alice"]).status_code == 403
    assert http.put(url).status_code == 401
    for bad in ("NaN", "inf", "-1", "1e999", "abc", "99999999999"):
        r = http.put(url, params={"deadlineSec": bad}, headers=h["root"])
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["problems"][0]["field"].endswith("deadlineSec")
    assert not master.state.drains  # nothing drained by the refused calls
    r = http.put(url, params={"deadlineSec": "60"}, headers=h["root"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["draining"] and body["deadline"] == pytest.approx(body["since"] + 60, abs=5)
    again = http.put(url, headers=h["root"]).json()  # a retry keeps when it began
    assert again["since"] == body["since"] and again["deadline"] == body["deadline"]
    hosts = http.get("/api/v3/hosts", headers=h["reader"]).json()["items"]
    assert [x["drain"] is not None for x in hosts].count(True) == 1
    assert http.get(url, headers=h["reader"]).json()["draining"]
    assert http.put("/api/v3/hosts/nowhere/drain", headers=h["root"]).status_code == 404
    assert http.delete("/api/v3/hosts/nowhere/drain", headers=h["root"]).status_code == 404
    assert http.get("/api/v3/hosts/nowhere/drain", headers=h["root"]).status_code == 404
    r = http.delete(url, headers=h["root"])
    assert r.status_code == 200 and r.json()["draining"] is False
    assert http.delete(url, headers=h["root"]).status_code == 200  # twice: no change


def test_cli_drain_undrain_hosts_and_evict(world, monkeypatch):
    from titus.cli import main

    http, master, agent, h = world
    job_id = submit(http, h["alice"], job(2, disruptionBudget={"selfManaged": {}}))
    run(master, agent)

    class Local:  # the CLI's HTTP client, sent to the in-process app
        def __init__(self, *a, **k):
            pass

        def request(self, method, path, params=None, **_):
            r = http.request(method, path, params=params, headers=h["root"])
            assert r.status_code < 400, r.text
            return r.json()

    monkeypatch.setattr("titus.cli.hosts.Client", Local)
    monkeypatch.setattr("titus.cli.tasks.Client", Local)
    runner = CliRunner()
    host = agent.hosts[1].host_id
    out = runner.invoke(main, ["hosts", "drain", host, "--deadline", "30"])
    assert out.exit_code == 0 and "draining" in out.output, out.output
    out = runner.invoke(main, ["hosts", "drain", host, "--deadline", "nan"])
    # refused by the CLI, naming NaN (it reached the master, which said "less than 2592000")
    assert out.exit_code == 2 and "not a finite number" in out.output, out.output
    out = runner.invoke(main, ["hosts", "--json"])
    assert out.exit_code == 0 and '"drain"' in out.output
    out = runner.invoke(main, ["hosts"])
    assert out.exit_code == 0 and "draining" in out.output
    out = runner.invoke(main, ["hosts", "undrain", host])
    assert out.exit_code == 0 and "not draining" in out.output
    task_id = next(iter(master.jobs[job_id].tasks))
    out = runner.invoke(main, ["task", "evict", task_id])
    assert out.exit_code == 0 and "evicted" in out.output, out.output
    out = runner.invoke(main, ["task", "evict", task_id])
    assert out.exit_code == 1 and "not evicted" in out.output
    out = runner.invoke(main, ["task", "evict", task_id, "--json"])  # it exited 0
    assert out.exit_code == 1 and json.loads(out.output)["allowed"] is False


def test_cli_drain_of_several_hosts_with_an_unknown_one_drains_none(world, monkeypatch):
    # "titus hosts drain A nope B" drained A without a word, then stopped at nope
    import click

    from titus.cli import main
    from titus.cli.client import describe_error

    http, master, agent, h = world

    class Local:  # the CLI's HTTP client, sent to the in-process app
        def __init__(self, *a, **k):
            pass

        def request(self, method, path, params=None, **_):
            r = http.request(method, path, params=params, headers=h["root"])
            if r.status_code >= 400:
                raise click.ClickException(describe_error(r))
            return r.json()

    monkeypatch.setattr("titus.cli.hosts.Client", Local)
    first, second = agent.hosts[0].host_id, agent.hosts[1].host_id
    runner = CliRunner()
    for command in ("drain", "undrain"):
        out = runner.invoke(main, ["hosts", command, first, "no-such-host", second])
        assert out.exit_code == 1 and "no-such-host" in out.output, out.output
        assert not master.queries.drain(first)["draining"]
        assert not master.queries.drain(second)["draining"]
    out = runner.invoke(main, ["hosts", "drain", first, second])
    assert out.exit_code == 0 and out.output.count("draining") == 2, out.output
    out = runner.invoke(main, ["hosts", "undrain", first, "no-such-host"])
    assert out.exit_code == 1 and master.queries.drain(first)["draining"]


def test_service_jobs_spread_and_opt_out_packs(world):
    http, master, agent, h = world
    spread = submit(http, h["alice"], job(3))
    packed = submit(http, h["alice"], job(3, attributes={"titus.spread": "false"}))
    batch = submit(http, h["alice"], {"applicationName": "b", "container": {
        "image": {"name": "x"}, "resources": {"cpu": 0.5}}, "batch": {"size": 2}})
    run(master, agent)
    hosts_of = {j: {t.host_id for t in master.jobs[j].tasks.values()}
                for j in (spread, packed, batch)}
    assert len(hosts_of[spread]) == 3
    assert len(hosts_of[packed]) == 1
    assert len(hosts_of[batch]) == 1  # batch keeps bin-packing
    assert [type(c).__name__ for c in spread_constraints(3, 2)] == ["BalancedHostAttr"] * 2
    # the health of a relocation's replacement decides when the old task goes (see
    # test_eviction); here only the statuses reach the master
    agent.heartbeat([TaskStatusMsg(task_id=t, state="Started", health="healthy")
                     for t in agent.running])
