"""Compaction: pick a lightly used host whose tasks fit on the group's other hosts, so that
draining it (its tasks relocated at the pace their budgets allow) frees it for scale-down.

Off by default (``compact_below`` 0). With ``TITUS_AUTOSCALE_COMPACT_BELOW=0.25`` a host
whose CPU and memory are both less than 25% used may be drained, one host per group at a time
(none while another host of the group drains), only while the group has no shortfall, is past
its cooldown and stays at or above its minimum size, and only if its used CPU and memory fit
in ``headroom`` (default 80%) of what the group's other hosts have free. The saving is a whole
host; the cost is one relocation per task on it, paced by each job's disruption budget.
Kubernetes' cluster autoscaler does the same with its scale-down utilisation threshold (0.5 by
default there; this is more conservative).
"""
from __future__ import annotations

from typing import Optional, Sequence

from titus.autoscale.hostview import HostView


def choose_compaction(members: Sequence[HostView], draining: set[str], below: float,
                      headroom: float = 0.8) -> Optional[str]:
    """The id of the least used host worth draining, or None (see the module docstring)."""
    if below <= 0 or draining & {h.id for h in members}:
        return None
    live = [h for h in members if h.id not in draining and h.cpus > 0 and h.memory_mb > 0]
    light = sorted((h for h in live if h.running > 0 and h.used_fraction < below),
                   key=lambda h: (h.used_fraction, h.running, h.id))
    for host in light:
        others = [h for h in live if h.id != host.id]
        free_cpus = sum(max(0.0, h.cpus - h.used_cpus) for h in others)
        free_mem = sum(max(0.0, h.memory_mb - h.used_memory_mb) for h in others)
        if host.used_cpus <= headroom * free_cpus and host.used_memory_mb <= headroom * free_mem:
            return host.id
    return None
