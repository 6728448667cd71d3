"""The invariant checker finds what it is meant to find: journals and views written by hand
with one known fault each, and the same without it."""
from __future__ import annotations

import json

from tests.chaos.cluster import HealthSample
from tests.chaos.invariants import (Evidence, check_accepted_jobs, check_batch, check_epochs,
                                    check_one_host_per_task, check_overcommit, check_services)
from tests.chaos.journal import read_runs
from tests.chaos.workload import JobPlan


def journal(tmp_path, name, *records):
    path = tmp_path / f"journal-{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def start(task, host, mono, cpus=1.0, job="j1", index=0, epoch=None):
    return {"ev": "start", "task": task, "job": job, "index": index, "host": host,
            "cpus": cpus, "mem": 512, "epoch": epoch, "mono": mono, "wall": 1000 + mono}


def end(task, host, mono, reason="normal"):
    return {"ev": "end", "task": task, "host": host, "reason": reason,
            "exit": 0 if reason == "normal" else 1, "mono": mono, "wall": 1000 + mono}


def task(task_id, index, state="Finished", reason="normal"):
    return {"id": task_id, "index": index, "status": {"state": state, "reasonCode": reason}}


def evidence(runs=(), plans=(), jobs=None, tasks=None, store=None, samples=(), epochs=(),
             final=None):
    plans = list(plans)
    return Evidence(plans, jobs or {}, tasks or {},
                    store if store is not None else {p.job_id for p in plans if p.job_id},
                    list(runs), {"h1": (2.0, 4096.0), "h2": (2.0, 4096.0)}, list(epochs),
                    list(samples), final or {})


def test_a_crash_line_ends_the_runs_of_its_agent(tmp_path):
    path = journal(tmp_path, "a0", {"ev": "boot", "mono": 0}, start("t1", "h1", 1),
                   {"ev": "crash", "mono": 2}, {"ev": "boot", "mono": 3}, start("t1", "h1", 4))
    first, second = read_runs([path])
    assert (first.end, first.reason, first.agent) == (2, "crash", "a0")
    assert second.end is None and not first.overlaps(second)


def test_overcommit_is_found_and_a_full_host_is_not(tmp_path):
    full = read_runs([journal(tmp_path, "a0", start("t1", "h1", 1), start("t2", "h1", 2),
                              end("t1", "h1", 3), start("t3", "h1", 3))])
    assert check_overcommit(evidence(full)) == []
    over = read_runs([journal(tmp_path, "a1", start("t1", "h1", 1), start("t2", "h1", 2),
                              start("t3", "h1", 2.5))])
    [violation] = check_overcommit(evidence(over))
    assert violation["check"] == "host_overcommitted"
    assert violation["detail"]["cpus_used"] == 3.0 and violation["detail"]["host"] == "h1"


def test_one_task_on_two_hosts_at_once_is_found(tmp_path):
    runs = read_runs([journal(tmp_path, "a0", start("t1", "h1", 1), end("t1", "h1", 5)),
                      journal(tmp_path, "a1", start("t1", "h2", 4))])
    [violation] = check_one_host_per_task(evidence(runs))
    assert violation["detail"]["hosts"] == ["h1", "h2"]
    after = read_runs([journal(tmp_path, "a2", start("t9", "h1", 1), end("t9", "h1", 2)),
                       journal(tmp_path, "a3", start("t9", "h2", 3))])
    assert check_one_host_per_task(evidence(after)) == []


def test_batch_index_ends_against_the_retry_policy(tmp_path):
    plan = JobPlan("batch", "b", {}, "k", size=2, retries=1, exit_code=1, job_id="j1")
    runs = read_runs([journal(tmp_path, "a0", *[
        rec for tid, i in (("t1", 0), ("t2", 0), ("t3", 1), ("t4", 1))
        for rec in (start(tid, "h1", 1, index=i), end(tid, "h1", 2, "failed"))])])
    job = {"id": "j1", "status": {"state": "Finished", "reasonCode": "failed"}}
    right = [task("t1", 0, reason="failed"), task("t2", 0, reason="failed"),
             task("t3", 1, reason="failed"), task("t4", 1, reason="failed"),
             task("t5", 1, reason="lost")]  # a loss does not count against the policy
    assert check_batch(evidence(runs, [plan], {"j1": job}, {"j1": right})) == []
    one_too_many = right + [task("t6", 1, reason="failed")]
    found = check_batch(evidence(runs, [plan], {"j1": job}, {"j1": one_too_many}))
    assert [v["check"] for v in found] == ["batch_index_ends", "batch_run_count"]
    assert found[0]["detail"]["index"] == 1 and found[1]["detail"]["task_id"] == "t6"


def test_a_job_accepted_twice_or_lost_is_found():
    plan = JobPlan("batch", "b", {}, "k", size=1, job_id="j1")
    ok = evidence(plans=[plan], jobs={"j1": {"status": {"state": "Finished"}}})
    assert check_accepted_jobs(ok) == []
    twice = evidence(plans=[plan], jobs={"j1": {}}, store={"j1", "j2"})
    assert [v["check"] for v in check_accepted_jobs(twice)] == ["job_duplicated"]
    lost = evidence(plans=[plan], jobs={"j1": None}, store=set())
    assert [v["check"] for v in check_accepted_jobs(lost)] == ["job_lost", "job_lost"]


def test_service_orphans_on_agents_are_found(tmp_path):
    plan = JobPlan("service", "s", {}, "k", desired=1, job_id="j1")
    runs = read_runs([journal(tmp_path, "a0", start("t1", "h1", 1), start("t2", "h2", 1))])
    views = {"j1": [task("t1", 0, "Started", ""), task("t2", 1, "Finished", "lost")]}
    [violation] = check_services(evidence(runs, [plan], {"j1": {}}, views))
    assert violation["check"] == "service_agents_disagree"
    assert violation["detail"]["only_on_agents"] == ["t2"]


def test_two_masters_claiming_one_epoch_are_found():
    samples = [HealthSample(1, "http://m1", "leader", 1, "http://m1"),
               HealthSample(2, "http://m2", "leader", 2, "http://m2"),
               HealthSample(3, "http://m1", "leader", 2, "http://m1")]
    epochs = [(1, "x", "http://m1", 10.0), (2, "y", "http://m2", 20.0)]
    final = {"http://m1": {"role": "standby", "epoch": 2, "leader": "http://m2"},
             "http://m2": {"role": "leader", "epoch": 2, "leader": "http://m2"}}
    found = check_epochs(evidence(samples=samples, epochs=epochs, final=final), multi=True)
    assert [v["check"] for v in found] == ["two_leaders_one_epoch", "epoch_holder_mismatch"]
    assert check_epochs(evidence(samples=samples[:2], epochs=epochs, final=final),
                        multi=True) == []
    both = dict(final, **{"http://m1": {"role": "leader", "epoch": 1, "leader": "http://m1"}})
    assert [v["check"] for v in check_epochs(evidence(final=both), multi=True)] == [
        "leaders_at_end"]
