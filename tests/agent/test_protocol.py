"""The master <-> agent wire contract (titus.protocol): orders, their JSON, validation."""
import dataclasses
import json

import pytest
from pydantic import ValidationError
from pydantic_core import to_json

from titus.protocol import (HealthCheckOrder, HeartbeatReply, KillOrder, LaunchOrder, RemoveOrder,
                            kill_order, remove_order)

# The launch order exactly as masters that build it as a plain dict send it: no task_index,
# and the TITUS_* ids already in env.
LEGACY_LAUNCH = {
    "type": "launch", "task_id": "t-1", "job_id": "j-1", "host_id": "h1",
    "image": "alpine:latest", "entry_point": ["/bin/sh", "-c"], "command": ["echo hi"],
    "env": {"A": "b", "TITUS_JOB_ID": "j-1", "TITUS_TASK_ID": "t-1", "TITUS_TASK_INDEX": "7"},
    "cpus": 1.0, "memory_mb": 512.0, "disk_mb": 10.0, "network_mbps": 128.0, "gpu": 0,
    "ports": [31000], "kill_grace_sec": 30.0,
    "health_check": {"command": ["true"], "interval_sec": 2.0, "timeout_sec": 1.0, "retries": 4},
    "iam_role": "role-a",
}


def launch_order(**fields):
    base = dict(task_id="t-1", job_id="j-1", host_id="h1", image="alpine:latest")
    return LaunchOrder(**{**base, **fields})


def reply_json(orders, reregister=False) -> bytes:
    """A heartbeat reply serialised the way the master does it."""
    return to_json({"orders": orders, "reregister": reregister})


def test_orders_are_slotted_keyword_only_dataclasses():
    for cls in (LaunchOrder, KillOrder, RemoveOrder, HealthCheckOrder):
        assert dataclasses.is_dataclass(cls) and "__slots__" in vars(cls)
    order = launch_order()
    assert not hasattr(order, "__dict__")
    assert (order.type, order.task_index, order.health_check, order.env) == \
        ("launch", 0, None, {})
    with pytest.raises(TypeError):
        LaunchOrder("t-1", "j-1", "h1", "alpine:latest")  # keyword only


def test_launch_order_json_is_a_superset_of_the_legacy_shape():
    order = launch_order(task_index=3, entry_point=["/bin/sh", "-c"], command=["echo hi"],
                         env={"A": "b"}, ports=[31000],
                         health_check=HealthCheckOrder(command=["true"], interval_sec=2.0))
    wire = json.loads(reply_json([order]))["orders"][0]
    assert set(LEGACY_LAUNCH) <= set(wire)
    assert set(wire) - set(LEGACY_LAUNCH) == {"task_index", "attempt", "epoch"}
    assert wire["type"] == "launch" and wire["task_index"] == 3
    assert wire["health_check"] == {"command": ["true"], "interval_sec": 2.0,
                                    "timeout_sec": 5.0, "retries": 3}
    assert wire["env"] == {"A": "b"}  # the order carries the job's env only


def test_orders_round_trip_through_a_heartbeat_reply():
    orders = [launch_order(task_index=2, health_check=HealthCheckOrder(command=["true"])),
              kill_order("t-2", 5), remove_order("t-3")]
    reply = HeartbeatReply.model_validate_json(reply_json(orders, reregister=True))
    assert reply.orders == orders and reply.reregister is True
    assert [type(o) for o in reply.orders] == [LaunchOrder, KillOrder, RemoveOrder]
    assert isinstance(reply.orders[0].health_check, HealthCheckOrder)


def test_helper_constructors():
    assert kill_order("t", 3) == KillOrder(task_id="t", grace_sec=3.0)
    assert isinstance(kill_order("t", 3).grace_sec, float)
    assert json.loads(to_json(kill_order("t", 3))) == {"type": "kill", "task_id": "t",
                                                      "grace_sec": 3.0}
    assert json.loads(to_json(remove_order("t"))) == {"type": "remove", "task_id": "t"}


def test_a_legacy_launch_order_still_parses():
    reply = HeartbeatReply.model_validate_json(json.dumps({"orders": [LEGACY_LAUNCH]}))
    (order,) = reply.orders
    assert isinstance(order, LaunchOrder)
    assert (order.task_id, order.ports, order.iam_role) == ("t-1", [31000], "role-a")
    assert order.health_check == HealthCheckOrder(command=["true"], interval_sec=2.0, timeout_sec=1.0,
                                             retries=4)
    # such a master put the index into env only: it becomes the order's task_index
    assert order.task_index == 7


def test_an_explicit_task_index_wins_over_a_legacy_env_value():
    legacy = {**LEGACY_LAUNCH, "task_index": 2}
    (order,) = HeartbeatReply.model_validate_json(json.dumps({"orders": [legacy]})).orders
    assert order.task_index == 2


def test_unknown_fields_from_a_newer_master_are_ignored():
    newer = {**LEGACY_LAUNCH, "task_index": 1, "priority": "high",
             "health_check": {"command": ["true"], "grace": 3}}
    (order,) = HeartbeatReply.model_validate_json(json.dumps({"orders": [newer]})).orders
    assert order.task_index == 1 and order.health_check == HealthCheckOrder(command=["true"])


@pytest.mark.parametrize("bad", [
    {**LEGACY_LAUNCH, "task_id": 5},  # wrong type
    {k: v for k, v in LEGACY_LAUNCH.items() if k != "task_id"},  # missing task_id
    {**LEGACY_LAUNCH, "env": {"A": 1}},  # env values are strings
    {**LEGACY_LAUNCH, "task_index": "first"},
    {**LEGACY_LAUNCH, "health_check": {"interval_sec": 1}},  # no command
    {"type": "kill"},
    {"type": "kill", "task_id": "t", "grace_sec": "soon"},
    {"type": "resize", "task_id": "t"},  # unknown order type
    {"task_id": "t"},  # no type at all
], ids=["task_id-type", "task_id-missing", "env-value", "task_index", "health-check",
        "kill-no-task", "kill-grace", "unknown-type", "no-type"])
def test_malformed_orders_fail_validation(bad):
    with pytest.raises(ValidationError):
        HeartbeatReply.model_validate_json(json.dumps({"orders": [bad]}))


def test_one_unreadable_order_does_not_take_the_others_down():
    good = [launch_order(task_index=1), kill_order("t-2", 5)]
    wire = json.loads(reply_json(good))
    wire["orders"].insert(1, {"type": "teleport", "task_id": "t-9"})
    wire["orders"].append({"type": "kill", "task_id": ["not", "a", "string"]})
    reply, unread = HeartbeatReply.parse_each(json.dumps(wire).encode())
    assert reply.orders == good
    assert [u.split(":")[0] for u in unread] == ["orders[1]", "orders[3]"]
    with pytest.raises(ValueError):
        HeartbeatReply.parse_each(b"<html>proxy error</html>")


def test_a_heartbeat_of_a_big_simulated_agent_is_taken():
    """A sim agent stands for thousands of hosts: 500,000 running tasks in one heartbeat."""
    from titus.protocol import Heartbeat

    body = json.dumps({"running": [f"01a2297b-76be-7001-9aba-{i:012d}" for i in range(500_000)]})
    assert len(body) < 64 * 1024 * 1024
    assert len(Heartbeat.model_validate_json(body).running) == 500_000
