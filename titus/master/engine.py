"""The scheduling engine the master drives, and the conversions to its objects.

The engine is ``titus.Scheduler`` (the compiled core). While a checkout has no compiled
``Scheduler`` yet, the plain-Python twin with the same semantics stands in.
"""
from __future__ import annotations

from titus.agent.protocol import HostInfo
from titus.scheduler.model import Host


def scheduler_class():
    """``titus.Scheduler``, or the reference twin when the compiled one is not available."""
    try:
        from titus import Scheduler  # type: ignore[attr-defined]

        return Scheduler
    except ImportError:
        from titus.scheduler.reference import ReferenceScheduler

        return ReferenceScheduler


def make_scheduler(fitness: str = "cpu_mem_binpack", good_enough=None, seed: int = 0,
                   task_order: str = "given"):
    """A fresh engine. Capacity group limits are applied by the master's queue, not here."""
    return scheduler_class()(fitness=fitness, good_enough=good_enough, seed=seed,
                             task_order=task_order)


def engine_host(info: HostInfo, attributes=None) -> Host:
    """The engine's view of a host an agent registered (only ``attributes``, if given)."""
    attrs = dict(info.attributes) if attributes is None else {
        k: v for k, v in info.attributes.items() if k in attributes}
    return Host(id=info.host_id, cpus=info.cpus, memory_mb=info.memory_mb, disk_mb=info.disk_mb,
                network_mbps=info.network_mbps, ports=[tuple(r) for r in info.ports],
                scalars={"gpu": info.gpu} if info.gpu else {}, attributes=attrs)
