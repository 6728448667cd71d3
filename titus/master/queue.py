"""The pending queue: which waiting tasks go to the engine next, and in what order.

Tasks wait per capacity group in arrival order. A batch is built tier by tier (Critical, then
Flex); inside a tier, the next task comes from the group with the lowest dominant share
weighted by its guarantee, counting what the batch already hands it, so a batch interleaves
groups fairly. A task that would push its group past its limit stays queued with a message,
and a task whose retry delay has not passed is skipped.
"""
from __future__ import annotations

import heapq
from typing import Callable

from titus.master.capacity import CapacityGroups, dominant_share

LIMIT_MESSAGE = "capacity group {group!r} would exceed its limit on {resource}"
MAX_CHUNK = 256


class PendingQueue:
    """Task ids waiting for placement, per capacity group, first come first served."""

    def __init__(self):
        self.by_group: dict[str, dict[str, None]] = {}  # insertion-ordered sets
        self.size = 0

    def add(self, group: str, task_id: str) -> None:
        """Queue a task (at the back of its group)."""
        bucket = self.by_group.setdefault(group, {})
        if task_id not in bucket:
            bucket[task_id] = None
            self.size += 1

    def discard(self, group: str, task_id: str) -> None:
        """Forget a task (placed, killed or finished)."""
        bucket = self.by_group.get(group)
        if bucket is not None and task_id in bucket:
            del bucket[task_id]
            self.size -= 1
            if not bucket:
                del self.by_group[group]

    def __len__(self) -> int:
        return self.size

    def next_batch(self, *, groups: CapacityGroups, usage: dict[str, dict[str, float]],
                   cluster: dict[str, float], demand_of: Callable[[str], dict[str, float]],
                   eligible: Callable[[str], bool], limit: int) -> tuple[list[str], dict[str, str]]:
        """Up to ``limit`` task ids in placement order, and ``{task id: message}`` held back.

        ``usage`` is what each group holds now; ``demand_of(task_id)`` a task's resources;
        ``eligible(task_id)`` whether its retry delay has passed.
        """
        order: list[str] = []
        held: dict[str, str] = {}
        tiers: dict[int, list[str]] = {}
        for name in self.by_group:
            tiers.setdefault(groups.tier_rank(name), []).append(name)
        for rank in sorted(tiers):
            projected = {name: dict(usage.get(name, {})) for name in tiers[rank]}
            weights = {name: groups.get(name).weight(cluster) for name in tiers[rank]}
            # nothing changes the buckets while a batch is built: iterate them in place
            iters = {name: iter(self.by_group[name]) for name in tiers[rank]}
            heap = [(dominant_share(projected[n], cluster) / weights[n], n) for n in tiers[rank]]
            heapq.heapify(heap)
            # a group serves a few tasks per turn: fair at the scale of a batch, and cheap
            chunk = max(1, min(MAX_CHUNK, limit // (8 * len(heap))))
            while heap and len(order) < limit:
                _, name = heapq.heappop(heap)
                group = groups.get(name)
                used = projected[name]
                taken = 0
                for task_id in iters[name]:
                    if not eligible(task_id):
                        continue
                    demand = demand_of(task_id)
                    if group.limit:
                        over = group.over_limit(used, demand)
                        if over is not None:
                            held[task_id] = LIMIT_MESSAGE.format(group=name, resource=over)
                            continue
                    order.append(task_id)
                    for r, v in demand.items():
                        used[r] = used.get(r, 0.0) + v
                    taken += 1
                    if taken >= chunk or len(order) >= limit:
                        heapq.heappush(heap, (dominant_share(used, cluster) / weights[name], name))
                        break
        return order, held
