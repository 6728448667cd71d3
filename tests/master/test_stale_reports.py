"""A job kill racing its tasks' own progress: the agent's late reports are expected, ignored
quietly (DEBUG), and change nothing; a report out of any order still warns."""
import logging

from titus import states as S
from titus.protocol import TaskStatusMsg

from tests.master.test_lifecycle import batch_job


def test_reports_the_master_has_moved_past_do_not_warn(master, agent, caplog):
    job = master.submit_job(batch_job(2))
    master.scheduling.run_round(force=True)
    orders = agent.heartbeat()                       # launch orders taken, nothing reported yet
    launched = [o for o in orders if o.type == "launch"]
    assert len(launched) == 2
    master.kill_job(job.id)                          # the kill: KillInitiated
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="titus"):
        # the containers come up after all, then one ends on its own before the kill lands
        agent.heartbeat([TaskStatusMsg(task_id=o.task_id, state="StartInitiated",
                                       host_id=o.host_id) for o in launched]
                        + [TaskStatusMsg(task_id=o.task_id, state="Started", host_id=o.host_id)
                           for o in launched])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "stale report" in caplog.text
    assert all(master.tasks[o.task_id].state == S.KILL_INITIATED for o in launched)
    o = launched[0]
    agent.heartbeat([TaskStatusMsg(task_id=o.task_id, state="Finished", reason="killed",
                                   host_id=o.host_id)])
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="titus"):   # a duplicate end: also quiet
        agent.heartbeat([TaskStatusMsg(task_id=o.task_id, state="Finished", exit_code=0,
                                       host_id=o.host_id)])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_only_a_state_behind_the_current_one_counts_as_stale():
    assert S.is_behind(S.STARTED, S.KILL_INITIATED)
    assert S.is_behind(S.STARTED, S.STARTED)
    assert not S.is_behind(S.FINISHED, S.STARTED)
    assert not S.is_behind("Bogus", S.STARTED)
