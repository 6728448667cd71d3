"""Gang batch jobs (``batch.gangScheduling``) on a master driven by hand: the first launch is
all or nothing; a retry of a failed member goes on its own."""
from titus import states as S
from titus.master.validation import parse_job

from tests.master.test_lifecycle import run, tasks_of


def gang_job(size, gang=True, retry=None):
    spec = {"applicationName": "app", "container": {"image": {"name": "busybox"},
                                                    "resources": {"cpu": 1, "memoryMB": 128}},
            "batch": {"size": size, "gangScheduling": gang}}
    if retry:
        spec["batch"]["retryPolicy"] = retry
    return parse_job(spec)


def test_gang_job_too_big_starts_nothing_and_says_why(master, agent):
    job = master.submit_job(gang_job(9))  # the agent's two 4-cpu hosts hold 8
    assert run(master, agent) == []
    tasks = tasks_of(master, job.id)
    assert {t.state for t in tasks} == {S.ACCEPTED}
    assert all(t.scheduling_failure.startswith(f"gang of job {job.id}: member ") for t in tasks)
    assert all(master.scheduler.host_usage(h.host_id)["cpus"] == 0 for h in agent.hosts)


def test_without_gang_the_same_job_starts_partly(master, agent):
    master.submit_job(gang_job(9, gang=False))
    assert len(run(master, agent)) == 8


def test_a_retried_member_is_placed_alone(master, agent, clock):
    job = master.submit_job(gang_job(8, retry={"immediate": {"retries": 1}}))
    launched = run(master, agent)
    assert len(launched) == 8
    blocker = master.submit_job(gang_job(1, gang=False))
    agent.finish(launched[0], exit_code=1)  # its slot goes to the blocker or the retry
    clock.advance(10)
    started = run(master, agent)
    assert len(started) == 1  # one slot: the retry or the blocker, alone; no gang waits for 8
    others = [t for t in tasks_of(master, job.id) + tasks_of(master, blocker.id) if t.state == S.ACCEPTED]
    assert all(not t.scheduling_failure.startswith("gang") for t in others)


def test_gang_flag_is_echoed(master):
    job = master.submit_job(gang_job(2))
    assert job.descriptor.wire()["batch"]["gangScheduling"] is True
    plain = master.submit_job(gang_job(2, gang=None))
    assert "gangScheduling" not in plain.descriptor.wire()["batch"]


def test_a_member_killed_while_the_gang_waits_does_not_break_the_gang(master, agent):
    # Its replacement (a resubmit) waits with the others: the gang still starts whole or not at all.
    job = master.submit_job(gang_job(9, retry={"immediate": {"retries": 3}}))
    assert run(master, agent) == []
    master.kill_task(tasks_of(master, job.id)[0].id)
    assert run(master, agent) == []
    waiting = [t for t in tasks_of(master, job.id) if t.state == S.ACCEPTED]
    assert len(waiting) == 9 and any(t.resubmit_of for t in waiting)
    assert all(t.scheduling_failure.startswith(f"gang of job {job.id}: member ") for t in waiting)
    assert all(master.scheduler.host_usage(h.host_id)["cpus"] == 0 for h in agent.hosts)


def test_killing_a_waiting_gang_job_ends_it_with_nothing_held(master, agent):
    job = master.submit_job(gang_job(9))
    assert run(master, agent) == []
    master.kill_job(job.id)
    assert run(master, agent) == []
    assert {t.state for t in tasks_of(master, job.id)} == {S.FINISHED}
    assert all(master.scheduler.host_usage(h.host_id)["cpus"] == 0 for h in agent.hosts)


def test_a_gang_job_must_fit_one_scheduling_round(settings):
    # Bigger, it would wait forever for a round holding all its tasks; a plain job may be bigger.
    import pytest

    from titus.boundary import SpecError

    small = settings.model_copy(update={"max_batch": 5})
    spec = {"applicationName": "app", "container": {"image": {"name": "busybox"},
                                                    "resources": {"cpu": 1, "memoryMB": 128}},
            "batch": {"size": 6, "gangScheduling": True}}
    with pytest.raises(SpecError) as e:
        parse_job(spec, small.job_limits())
    assert [p.field for p in e.value.problems] == ["batch.size"]
    assert parse_job({**spec, "batch": {"size": 5, "gangScheduling": True}}, small.job_limits())
    assert parse_job({**spec, "batch": {"size": 6}}, small.job_limits())


def test_gang_scheduling_on_a_service_job_is_kept_but_has_no_effect(master, agent):
    spec = {"applicationName": "app", "container": {"image": {"name": "busybox"},
                                                    "resources": {"cpu": 1, "memoryMB": 128}},
            "service": {"capacity": {"min": 0, "desired": 9, "max": 9}, "gangScheduling": True}}
    job = master.submit_job(parse_job(spec))
    assert job.descriptor.wire()["service"]["gangScheduling"] is True
    assert not job.gang
    assert len(run(master, agent)) == 8  # two 4-cpu hosts: placed task by task
