"""The faults a trial injects, each a function of the cluster and the trial's RNG.

Every fault undoes itself (a killed process is started again, a paused one continued), so
the platform has to come back on its own; what it did meanwhile is for the invariants.
"""
from __future__ import annotations

import random
import signal
import time
from typing import Callable

from tests.chaos.cluster import ChaosCluster
from tests.chaos.pgcluster import PgCluster

KINDS = ("leader_kill", "leader_pause", "pg_restart", "agent_kill", "agent_pause")


def leader_kill(cluster: ChaosCluster, pg: PgCluster, rng: random.Random) -> dict:
    """kill -9 of the leader, then the same master started again (as a new standby)."""
    leader, body = cluster.wait_leader(10)
    killed_at = time.monotonic()
    leader.kill_master(signal.SIGKILL)
    record = {"target": leader.url, "epoch_before": body["epoch"]}
    if len(cluster.masters) > 1:
        new, new_body = cluster.wait_leader(60, other_than=leader.url)
        record.update(failover_sec=round(time.monotonic() - killed_at, 3),
                      new_leader=new.url, epoch_after=new_body["epoch"])
        leader.start_master(wait=True)
    else:  # one master: it is the only one that can come back
        leader.start_master(wait=True)
        cluster.wait_leader(60)
        record["failover_sec"] = round(time.monotonic() - killed_at, 3)
    return record


def leader_pause(cluster: ChaosCluster, pg: PgCluster, rng: random.Random) -> dict:
    """SIGSTOP of the leader for longer than its lease, then SIGCONT."""
    leader, body = cluster.wait_leader(10)
    pause = cluster.lease_sec + rng.uniform(1.0, 3.0)
    stopped_at = time.monotonic()
    leader.master.send_signal(signal.SIGSTOP)
    record = {"target": leader.url, "epoch_before": body["epoch"], "pause_sec": round(pause, 2)}
    try:
        if len(cluster.masters) > 1:
            new, new_body = cluster.wait_leader(pause + 60, other_than=leader.url)
            record.update(failover_sec=round(time.monotonic() - stopped_at, 3),
                          new_leader=new.url, epoch_after=new_body["epoch"])
        time.sleep(max(0.0, stopped_at + pause - time.monotonic()))
    finally:
        leader.master.send_signal(signal.SIGCONT)
    return record


def pg_restart(cluster: ChaosCluster, pg: PgCluster, rng: random.Random) -> dict:
    """PostgreSQL restarted, ``fast`` (clean) or ``immediate`` (crash recovery)."""
    mode = rng.choice(("fast", "immediate"))
    return {"mode": mode, "down_sec": round(pg.restart(mode), 3)}


def agent_kill(cluster: ChaosCluster, pg: PgCluster, rng: random.Random) -> dict:
    """kill -9 of an agent (its sim tasks die with it), started again after 0-1 s."""
    name = rng.choice(sorted(cluster.agents))
    cluster.kill_agent(name)
    down = rng.uniform(0.0, 1.0)
    time.sleep(down)
    cluster.start_agent(name)
    return {"target": name, "down_sec": round(down, 2)}


def agent_pause(cluster: ChaosCluster, pg: PgCluster, rng: random.Random) -> dict:
    """SIGSTOP of an agent beyond the heartbeat timeout (its tasks are lost and replaced
    while it still holds them), then SIGCONT."""
    name = rng.choice(sorted(cluster.agents))
    pause = cluster.heartbeat_timeout_sec + rng.uniform(1.0, 2.5)
    cluster.signal_agent(name, signal.SIGSTOP)
    try:
        time.sleep(pause)
    finally:
        cluster.signal_agent(name, signal.SIGCONT)
    return {"target": name, "pause_sec": round(pause, 2)}


FAULTS: dict[str, Callable[[ChaosCluster, PgCluster, random.Random], dict]] = {
    "leader_kill": leader_kill, "leader_pause": leader_pause, "pg_restart": pg_restart,
    "agent_kill": agent_kill, "agent_pause": agent_pause,
}


def inject(kind: str, cluster: ChaosCluster, pg: PgCluster, rng: random.Random) -> dict:
    """Run fault ``kind``; returns what was done, with monotonic start and end."""
    began = time.monotonic()
    record = FAULTS[kind](cluster, pg, rng)
    record.update(kind=kind, began=began, ended=time.monotonic())
    return record

