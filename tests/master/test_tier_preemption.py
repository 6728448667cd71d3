"""Tier preemption on a master driven by hand: a Critical task that fits nowhere evicts Flex
tasks within their jobs' disruption budgets (docs/preemption.md)."""
from titus import states as S
from titus.master.capacity import CapacityGroup
from titus.master.model import CapacityGroupSpec
from titus.master.validation import parse_job

from tests.master.test_lifecycle import run, tasks_of


def job(size, group=None, cpu=1, budget=None):
    spec = {"applicationName": "app", "container": {"image": {"name": "busybox"},
                                                    "resources": {"cpu": cpu, "memoryMB": 128}},
            "batch": {"size": size}}
    if group:
        spec["capacityGroup"] = group
    if budget:
        spec["disruptionBudget"] = budget
    return parse_job(spec)


def critical(master, name="crit", preemption=None):
    spec = {"name": name, "tier": "Critical", "resources": {"cpu": 4, "memoryMB": 1024}}
    if preemption is not None:
        spec["preemption"] = preemption
    master.put_capacity_group(CapacityGroup.from_spec(CapacityGroupSpec.model_validate(spec)))


def test_critical_task_preempts_flex_tasks(master, agent):
    flex = master.submit_job(job(8))  # fills both 4-cpu hosts
    assert len(run(master, agent)) == 8
    critical(master)
    crit = master.submit_job(job(1, group="crit", cpu=2))
    launched = run(master, agent)
    assert [t.id for t in tasks_of(master, crit.id)] == launched
    # the scripted agent ends a killed task at once
    ended = [t for t in tasks_of(master, flex.id) if t.state == S.FINISHED]
    assert len(ended) == 2 and {t.reason_code for t in ended} == {S.PREEMPTED}
    assert {t.kill_reason for t in ended} == {S.PREEMPTED}
    assert {t.host_id for t in ended} == {tasks_of(master, crit.id)[0].host_id}
    replacements = [t for t in tasks_of(master, flex.id) if t.state == S.ACCEPTED]
    assert len(replacements) == 2 and all(t.resubmit_of for t in replacements)
    assert all(t.system_resubmit_number == 1 for t in replacements)  # no user retry spent


def test_flex_jobs_budget_caps_the_victims(master, agent):
    frozen = {"availabilityPercentageLimit": {"percentageOfHealthyContainers": 100.0},
              "rateUnlimited": {}}
    flex = master.submit_job(job(8, budget=frozen))
    assert len(run(master, agent)) == 8
    critical(master)
    crit = master.submit_job(job(1, group="crit", cpu=2))
    assert run(master, agent) == []
    assert all(t.state == S.STARTED for t in tasks_of(master, flex.id))
    assert tasks_of(master, crit.id)[0].state == S.ACCEPTED


def test_preemption_can_be_switched_off_per_group(master, agent):
    flex = master.submit_job(job(8))
    assert len(run(master, agent)) == 8
    critical(master, preemption=False)
    master.submit_job(job(1, group="crit", cpu=2))
    assert run(master, agent) == []
    assert all(t.state == S.STARTED for t in tasks_of(master, flex.id))


def test_flex_never_preempts_flex(master, agent):
    first = master.submit_job(job(8))
    assert len(run(master, agent)) == 8
    master.submit_job(job(1, cpu=2))
    assert run(master, agent) == []
    assert all(t.state == S.STARTED for t in tasks_of(master, first.id))


def test_a_critical_gang_preempts_whole_or_not_at_all(master, agent):
    # The Flex job's budget lets 2 of its 8 tasks go; a gang needing 4 evictions takes none.
    budget = {"availabilityPercentageLimit": {"percentageOfHealthyContainers": 75.0},
              "rateUnlimited": {}}
    flex = master.submit_job(job(8, budget=budget))
    assert len(run(master, agent)) == 8
    critical(master)
    spec = job(2, group="crit", cpu=2).wire()
    spec["batch"]["gangScheduling"] = True
    big = master.submit_job(parse_job(spec))
    assert run(master, agent) == []
    assert all(t.state == S.STARTED for t in tasks_of(master, flex.id))
    assert all(t.state == S.ACCEPTED and t.scheduling_failure.startswith(f"gang of job {big.id}")
               for t in tasks_of(master, big.id))
    master.kill_job(big.id)
    run(master, agent)
    spec = job(2, group="crit", cpu=1).wire()
    spec["batch"]["gangScheduling"] = True
    small = master.submit_job(parse_job(spec))
    assert sorted(run(master, agent)) == sorted(t.id for t in tasks_of(master, small.id))
    ended = [t for t in tasks_of(master, flex.id) if t.state == S.FINISHED]
    assert len(ended) == 2 and {t.reason_code for t in ended} == {S.PREEMPTED}


def test_a_victim_already_being_killed_keeps_its_kill_and_is_no_disruption(master, agent):
    # The two newest tasks on each host are being killed by their user when a Critical task
    # comes: the engine may free their room (they are ending), but they are not "preempted".
    budget = {"availabilityPercentageLimit": {"percentageOfHealthyContainers": 25.0},
              "rateUnlimited": {}}
    flex = master.submit_job(job(8, budget=budget))
    assert len(run(master, agent)) == 8
    critical(master)
    by_host: dict = {}
    for t in tasks_of(master, flex.id):
        by_host.setdefault(t.host_id, []).append(t)
    dying = {t.id for ts in by_host.values() for t in ts[-2:]}
    for tid in dying:
        master.kill_task(tid)
    crit = master.submit_job(job(1, group="crit", cpu=2))
    master.scheduling.run_round(force=True)
    assert tasks_of(master, crit.id)[0].state == S.LAUNCHED
    tasks = {t.id: t for t in tasks_of(master, flex.id)}
    assert all(tasks[tid].kill_reason == S.KILLED for tid in dying)
    assert all(d.task_id not in dying for d in master.state.disruptions.get(flex.id, ()))
    preempted = [t for t in tasks.values() if t.kill_reason == S.PREEMPTED]
    assert len(master.state.disruptions.get(flex.id, ())) == len(preempted)


def test_preemption_respects_a_relocation_limit(master, agent):
    # relocationLimit 1: an index preempted once is not preempted again (the engine cannot tell
    # a job's tasks apart, so a job with a task at its limit gives no victim at all).
    flex = master.submit_job(job(8, budget={"relocationLimit": {"limit": 1}, "rateUnlimited": {}}))
    assert len(run(master, agent)) == 8
    critical(master)
    first = master.submit_job(job(1, group="crit", cpu=1))
    assert len(run(master, agent)) == 1
    master.kill_job(first.id)
    run(master, agent)  # the Critical task ends
    run(master, agent)  # the preempted index runs again in the freed room
    assert len([t for t in tasks_of(master, flex.id) if t.state == S.STARTED]) == 8
    master.submit_job(job(1, group="crit", cpu=1))
    run(master, agent)
    moved: dict = {}
    for d in master.state.disruptions.get(flex.id, ()):
        moved[d.idx] = moved.get(d.idx, 0) + 1
    assert moved and max(moved.values()) <= 1, moved
