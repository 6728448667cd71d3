"""Jobs through their lives on a master driven by hand (fake clock, scripted agent)."""
from titus.protocol import TaskStatusMsg
from titus import states as S
from titus.master.validation import parse_job


def batch_job(size=2, retry=None, runtime=0, **container):
    spec = {"applicationName": "app", "container": {"image": {"name": "busybox"}, **container},
            "batch": {"size": size, "runtimeLimitSec": str(runtime)}}
    if retry:
        spec["batch"]["retryPolicy"] = retry
    return parse_job(spec)


def service_job(desired, **container):
    return parse_job({"applicationName": "svc",
                      "container": {"image": {"name": "nginx"}, **container},
                      "service": {"capacity": {"min": 0, "desired": desired, "max": 100}}})


def tasks_of(master, job_id):
    job, archived = master.get_job(job_id)
    if archived:
        from titus.master.records import TaskRecord

        return [TaskRecord.from_row(r) for r in master.store.archived_tasks(job_id)]
    return sorted(job.tasks.values(), key=lambda t: t.seq)


def run(master, agent):
    master.scheduling.run_round(force=True)
    return agent.start_launched()


def test_batch_job_runs_to_completion_and_is_archived(master, agent):
    job = master.submit_job(batch_job(3))
    launched = run(master, agent)
    assert len(launched) == 3
    assert all(t.state == S.STARTED for t in tasks_of(master, job.id))
    for tid in launched:
        agent.finish(tid, exit_code=0)
    finished, archived = master.get_job(job.id)
    assert archived and finished.state == S.FINISHED and finished.reason_code == "normal"
    assert job.id not in master.jobs
    assert {t.reason_code for t in tasks_of(master, job.id)} == {"normal"}
    # the engine got the resources back
    assert all(master.scheduler.host_usage(h.host_id)["cpus"] == 0 for h in agent.hosts)
    assert master.group_usage["DEFAULT"]["cpus"] == 0


def test_failed_tasks_retry_per_policy_then_job_fails(master, agent, clock):
    job = master.submit_job(batch_job(1, retry={"immediate": {"retries": 2}}))
    for attempt in range(3):
        (tid,) = run(master, agent)
        agent.finish(tid, exit_code=1)
        clock.advance(10)  # past the crash-loop back-off (docs/master.md)
    tasks = tasks_of(master, job.id)
    assert [t.resubmit_number for t in tasks] == [0, 1, 2]
    assert tasks[1].resubmit_of == tasks[0].id and tasks[2].resubmit_of == tasks[1].id
    assert {t.idx for t in tasks} == {0}
    done, archived = master.get_job(job.id)
    assert archived and done.reason_code == "failed"


def test_delayed_retry_waits(master, agent, clock):
    master.submit_job(batch_job(1, retry={"delayed": {"initialDelayMs": "5000",
                                                            "delayMs": "1000", "retries": 1}}))
    (tid,) = run(master, agent)
    agent.finish(tid, exit_code=2)
    assert run(master, agent) == []  # not yet
    clock.advance(5.1)
    assert len(run(master, agent)) == 1


def test_lost_tasks_are_replaced_without_using_retries(master, agent, clock):
    job = master.submit_job(batch_job(2))  # no retries at all
    run(master, agent)
    clock.advance(11)  # silent past the heartbeat timeout
    master.reconciler.reconcile()
    tasks = tasks_of(master, job.id)
    lost = [t for t in tasks if t.reason_code == S.LOST]
    fresh = [t for t in tasks if t.state == S.ACCEPTED]
    assert len(lost) == 2 and len(fresh) == 2
    assert all(t.system_resubmit_number == 1 and t.user_retries_used == 0 for t in fresh)
    assert master.registry.get(agent.id) is None
    # the agent comes back: replacements run there
    agent.running.clear()
    agent.register()
    assert len(run(master, agent)) == 2


def test_runtime_limit_kills_with_runtime_limit_exceeded(master, agent, clock):
    job = master.submit_job(batch_job(1, runtime=60))
    (tid,) = run(master, agent)
    clock.advance(61)
    agent.heartbeat()
    master.reconciler.reconcile()
    assert master.tasks[tid].state == S.KILL_INITIATED
    agent.start_launched()  # takes the kill order, reports Finished
    done, archived = master.get_job(job.id)
    assert archived
    assert tasks_of(master, job.id)[0].reason_code == S.RUNTIME_LIMIT_EXCEEDED


def test_stuck_in_launched_is_ended_and_replaced(master, agent, clock):
    job = master.submit_job(batch_job(1))
    master.scheduling.run_round(force=True)
    (task,) = tasks_of(master, job.id)
    assert task.state == S.LAUNCHED
    clock.advance(31)
    agent.heartbeat()
    master.reconciler.reconcile()
    tasks = tasks_of(master, job.id)
    assert tasks[0].reason_code == S.STUCK_IN_STATE
    assert tasks[1].state == S.ACCEPTED and tasks[1].system_resubmit_number == 1


def test_stuck_in_kill_initiated(master, agent, clock):
    job = master.submit_job(batch_job(1))
    (tid,) = run(master, agent)
    master.kill_job(job.id)
    assert master.tasks[tid].state == S.KILL_INITIATED
    clock.advance(21)
    agent.heartbeat([])  # ignores the kill
    master.reconciler.reconcile()
    done, archived = master.get_job(job.id)
    assert archived and done.reason_code == "killed"
    assert tasks_of(master, job.id)[0].reason_code == S.STUCK_IN_KILLING_STATE


def test_kill_job_kills_waiting_and_running_tasks(master, agent):
    job = master.submit_job(batch_job(20, cpu=1))  # 8 fit on the two 4-cpu hosts
    launched = run(master, agent)
    assert len(launched) == 8
    master.kill_job(job.id)
    states = [t.state for t in tasks_of(master, job.id)]
    assert states.count(S.KILL_INITIATED) == 8 and states.count(S.FINISHED) == 12
    agent.start_launched()
    done, archived = master.get_job(job.id)
    assert archived and done.state == S.FINISHED
    assert {t.reason_code for t in tasks_of(master, job.id)} == {S.KILLED}


def test_service_job_holds_count_scales_up_and_down(master, agent, clock):
    job = master.submit_job(service_job(3))
    run(master, agent)
    live = [t for t in job.tasks.values() if t.state == S.STARTED]
    assert len(live) == 3
    # a task ends: replaced (after the crash-loop back-off)
    agent.finish(live[0].id, exit_code=1)
    clock.advance(master.settings.crash_backoff_base_sec)
    master.reconciler.reconcile()
    assert len(run(master, agent)) == 1
    # scale up
    from titus.master.model import CapacityUpdate

    master.resize_job(job.id, CapacityUpdate(desired=5))
    assert len(run(master, agent)) == 2
    # scale down: youngest first
    started = sorted((t for t in job.tasks.values() if t.state == S.STARTED),
                     key=lambda t: (t.launched_at, t.seq))
    master.resize_job(job.id, CapacityUpdate(desired=2))
    killing = {t.id for t in job.tasks.values() if t.state == S.KILL_INITIATED}
    assert killing == {t.id for t in started[-3:]}
    agent.start_launched()
    master.reconciler.reconcile()
    assert sum(1 for t in job.tasks.values() if t.state == S.STARTED) == 2
    assert {t.reason_code for t in job.tasks.values() if t.id in killing} == {S.SCALED_DOWN}


def test_scale_down_takes_waiting_tasks_before_running_ones(master, agent):
    job = master.submit_job(service_job(10, resources={"cpu": 1}))  # 8 fit
    run(master, agent)
    from titus.master.model import CapacityUpdate

    master.resize_job(job.id, CapacityUpdate(desired=7))
    by_state = {}
    for t in job.tasks.values():
        by_state.setdefault((t.state, t.reason_code), 0)
        by_state[(t.state, t.reason_code)] += 1
    assert by_state[(S.FINISHED, S.SCALED_DOWN)] == 2  # the two waiting ones
    assert by_state[(S.KILL_INITIATED, "")] == 1  # then the youngest running one


def test_kill_task_service_replaced_or_shrunk(master, agent):
    job = master.submit_job(service_job(2))
    a, b = run(master, agent)
    master.kill_task(a)
    master.reconciler.reconcile()
    assert sum(1 for t in job.tasks.values() if t.state == S.ACCEPTED) == 1
    master.kill_task(b, shrink=True)
    assert job.descriptor.service.capacity.desired == 1


def test_unhealthy_service_task_is_replaced(master, agent, clock):
    job = master.submit_job(service_job(1))
    (tid,) = run(master, agent)
    agent.heartbeat([TaskStatusMsg(task_id=tid, state="Started", health="unhealthy",
                                   host_id=agent.running[tid])])
    clock.advance(16)
    agent.heartbeat()
    master.reconciler.reconcile()
    assert master.tasks[tid].state == S.KILL_INITIATED and master.tasks[tid].kill_reason == "unhealthy"
    agent.start_launched()  # the agent kills it
    assert master.tasks[tid].reason_code == S.UNHEALTHY
    master.reconciler.reconcile()
    assert [t.state for t in job.tasks.values() if t.id != tid] == [S.ACCEPTED]


def test_pending_task_keeps_the_engines_reason(master, agent):
    job = master.submit_job(batch_job(1, resources={"cpu": 64}, ))
    master.scheduling.run_round(force=True)
    (task,) = tasks_of(master, job.id)
    assert task.state == S.ACCEPTED
    assert "cpus" in task.scheduling_failure and "0/2 hosts" in task.scheduling_failure


def test_pending_message_comes_from_the_one_engine_call_with_the_ask_and_the_largest_free(master, agent):
    job = master.submit_job(batch_job(2, resources={"cpu": 64}))
    scheduler = master.engine.scheduler
    calls = []
    real = scheduler.schedule_arrays

    def counted(*args, **kwargs):
        calls.append(kwargs.get("explain"))
        return real(*args, **kwargs)

    scheduler.schedule_arrays = counted
    scheduler.schedule = None  # no second call to explain
    master.scheduling.run_round(force=True)
    assert calls == [True]
    free = scheduler.largest_free("cpus")
    for task in tasks_of(master, job.id):
        assert task.state == S.ACCEPTED
        assert task.scheduling_failure.startswith("0/2 hosts: 2 cpus")
        assert task.scheduling_failure.endswith(f"; asks 64 cpus; largest free {free:.6g}")


def test_illegal_reports_are_dropped(master, agent):
    job = master.submit_job(batch_job(1))
    (tid,) = run(master, agent)
    host = agent.running[tid]
    agent.finish(tid, exit_code=0)
    # a late duplicate Started after Finished changes nothing
    agent.heartbeat([TaskStatusMsg(task_id=tid, state="Started", host_id=host)])
    assert tasks_of(master, job.id)[0].state == S.FINISHED


def test_unknown_running_tasks_get_killed(master, agent):
    agent.running["ghost"] = agent.hosts[0].host_id
    orders = agent.heartbeat()
    assert [(o.type, o.task_id) for o in orders] == [("kill", "ghost")]


def test_zone_balance_constraint_spreads(master, agent):
    job = master.submit_job(batch_job(4, resources={"cpu": 0.5},
                                      hardConstraints={"constraints": {"zoneBalance": "true"}}))
    run(master, agent)
    zones = [master.registry.agents[agent.id].hosts[t.host_id].attributes["zone"]
             for t in job.tasks.values()]
    assert sorted(zones) == ["a", "a", "b", "b"]


def test_capacity_group_limit_holds_tasks_back(master, agent):
    from titus.master.capacity import CapacityGroup

    master.put_capacity_group(CapacityGroup("small", "Flex", {}, limit={"cpus": 2.0}))
    job = master.submit_job(parse_job({"applicationName": "a", "capacityGroup": "small",
                                       "container": {"image": {"name": "x"}},
                                       "batch": {"size": 4}}))
    assert len(run(master, agent)) == 2
    waiting = [t for t in job.tasks.values() if t.state == S.ACCEPTED]
    assert len(waiting) == 2 and all("limit" in t.scheduling_failure for t in waiting)


def test_waiting_without_any_host_says_so(master):
    job = master.submit_job(batch_job(1))
    master.scheduling.run_round(force=True)
    (task,) = tasks_of(master, job.id)
    assert task.scheduling_failure == "0/0 hosts: no host is registered"


def test_machine_id_and_machine_type_constraints(master, agent):
    target = agent.hosts[1]
    job = master.submit_job(batch_job(2, resources={"cpu": 0.5}, hardConstraints={"constraints": {
        "machineId": target.attributes["instance_id"], "machineType": "m5.xlarge"}}))
    run(master, agent)
    assert {t.host_id for t in job.tasks.values()} == {target.host_id}
    lost = master.submit_job(batch_job(1, hardConstraints={"constraints": {"machineId": "i-none"}}))
    master.scheduling.run_round(force=True)
    (task,) = tasks_of(master, lost.id)
    assert task.state == S.ACCEPTED
    assert task.scheduling_failure == ("0/2 hosts: 2 constraint:HostAttrValue"
                                       "(hostname=<no host with instance_id=i-none>)")
