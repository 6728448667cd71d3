"""Task and job state machines: forward only, Finished is final, illegal moves refused."""
import logging

import pytest

from titus import states as S


def test_task_happy_path_and_skips():
    path = [S.ACCEPTED, S.LAUNCHED, S.START_INITIATED, S.STARTED, S.KILL_INITIATED, S.FINISHED]
    for a, b in zip(path, path[1:]):
        assert S.can_move_task(a, b)
    assert S.can_move_task(S.LAUNCHED, S.STARTED)  # agent skipped StartInitiated
    assert S.can_move_task(S.ACCEPTED, S.FINISHED)  # killed before placement


@pytest.mark.parametrize("a,b", [(S.STARTED, S.LAUNCHED), (S.FINISHED, S.STARTED),
                                 (S.FINISHED, S.FINISHED), (S.KILL_INITIATED, S.STARTED),
                                 (S.STARTED, S.STARTED), (S.ACCEPTED, "Running")])
def test_illegal_task_moves_are_refused_and_logged(a, b, caplog):
    assert not S.can_move_task(a, b)
    with caplog.at_level(logging.WARNING, logger="titus.master.states"):
        with pytest.raises(S.IllegalTransition):
            S.check_task_move("t1", a, b)
    assert "refused task transition t1" in caplog.text


def test_job_machine():
    assert S.can_move_job(S.ACCEPTED, S.KILL_INITIATED)
    assert S.can_move_job(S.KILL_INITIATED, S.FINISHED)
    assert S.can_move_job(S.ACCEPTED, S.FINISHED)
    assert not S.can_move_job(S.FINISHED, S.ACCEPTED)
    assert not S.can_move_job(S.KILL_INITIATED, S.ACCEPTED)
    with pytest.raises(S.IllegalTransition):
        S.check_job_move("j", S.FINISHED, S.KILL_INITIATED)


def test_finish_reason_from_agent_reports():
    assert S.finish_reason("", 0) == S.NORMAL
    assert S.finish_reason("", 3) == S.FAILED
    assert S.finish_reason("oom", 137) == S.OOM
    assert S.finish_reason("crashed", None) == S.CRASHED
    assert S.finish_reason("weird", None) == S.FAILED
    assert S.finish_reason("", None) == S.NORMAL
