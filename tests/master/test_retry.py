"""Retry policies and the rules for what consumes a user's retries."""
from titus import states as S
from titus.master.model import RetryPolicy
from titus.master.retry import RetryRule, decide


def rule(data):
    return RetryRule.from_policy(RetryPolicy.model_validate(data))


def test_policy_delays():
    assert rule({"immediate": {"retries": 2}}).delay_sec(1) == 0
    d = rule({"delayed": {"initialDelayMs": "500", "delayMs": "2000", "retries": 3}})
    assert (d.delay_sec(1), d.delay_sec(2), d.delay_sec(3)) == (0.5, 2.0, 2.0)
    e = rule({"exponentialBackOff": {"initialDelayMs": 100, "maxDelayIntervalMs": 1000,
                                     "retries": 9}})
    assert [e.delay_sec(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert rule({}).retries == 0 and RetryRule.from_policy(None).kind == "none"


def batch(reason, used=0, system=0, retries=2, active=True, **kw):
    return decide(batch=True, rule=RetryRule("immediate", retries), reason=reason,
                  user_retries_used=used, system_retries_used=system, job_active=active, **kw)


def test_batch_failures_consume_retries_until_spent():
    assert batch(S.FAILED, used=0).resubmit
    assert batch(S.FAILED, used=1).resubmit
    assert not batch(S.FAILED, used=2).resubmit
    assert not batch(S.NORMAL).resubmit
    assert batch(S.OOM).resubmit and not batch(S.OOM).system


def test_losses_and_system_errors_do_not_consume_user_retries():
    for reason in (S.LOST, S.TRANSIENT_SYSTEM_ERROR, S.STUCK_IN_STATE, S.CRASHED):
        d = batch(reason, used=2)  # user retries all spent
        assert d.resubmit and d.system and d.delay_sec == 0
    assert not batch(S.LOST, system=100).resubmit  # bounded


def test_runtime_limit_scaled_down_and_killed_job():
    assert not batch(S.RUNTIME_LIMIT_EXCEEDED).resubmit
    assert batch(S.RUNTIME_LIMIT_EXCEEDED, retry_on_runtime_limit=True).resubmit
    assert not batch(S.SCALED_DOWN).resubmit
    assert not batch(S.FAILED, active=False).resubmit


def test_service_replaces_every_end_but_scale_down():
    r = RetryRule("delayed", 1, 100, 1000)
    svc = dict(batch=False, rule=r, system_retries_used=0, job_active=True)
    assert decide(reason=S.NORMAL, user_retries_used=0, **svc).delay_sec == 0
    assert decide(reason=S.FAILED, user_retries_used=5, **svc).resubmit
    assert not decide(reason=S.SCALED_DOWN, user_retries_used=0, **svc).resubmit
