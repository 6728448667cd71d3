"""The trial placement behind the shortfall: unplaced tasks on empty and pseudo hosts.

The rows (largest first) are placed with ``Scheduler.schedule_arrays`` on a fresh scheduler:

1. first on the empty hosts the groups already have, as the real scheduler will fill those
   before new ones arrive;
2. then in chunks on *pseudo hosts* of the groups' instance types. Before each chunk every
   (group, zone) gets enough unused pseudo hosts for the chunk's tasks that prefer it (plus one
   for every other place the chunk's tasks could go, so the scheduler still chooses); a
   (group, zone) that runs out while tasks are left gets more and the leftovers run again,
   never beyond the group's headroom;
3. a host that no remaining row can fit (some resource below the smallest remaining demand)
   is removed from the scheduler before the next chunk. This changes no later placement (the
   host could take none of them) and keeps the scheduler's host set small, so the cost grows
   with the tasks, not with tasks x hosts. Hosts holding tasks with a ``BalancedHostAttr``
   stay, as their co-task counts steer later placements.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from titus.constraints import BalancedHostAttr, ExclusiveHost
from titus.scheduler.model import Host, TaskClass
from titus.scheduler.validation import EPS

#: Rows per chunk of the pseudo-host phase.
CHUNK_ROWS = 2048
#: Pseudo hosts offered per chunk, over the chunk's lower bound.
SLACK = 1.25
#: Times a chunk's leftovers may be retried with more pseudo hosts.
MAX_REFILLS = 16


@dataclass
class TrialOutcome:
    """Per slot: pseudo hosts used, empty hosts used, tasks placed; and tasks left unplaced."""

    used_pseudo: np.ndarray
    used_empty: np.ndarray
    tasks_on: np.ndarray
    left: int


class Trial:
    """One trial placement over ``slots`` (objects with ``group``, ``zone``, ``empty``, ``headroom``).

    ``make_host(slot, host_id)`` builds a host of the slot's instance type; ``capacity[s]`` is
    slot ``s``'s host capacity in the scheduler's resource order.
    """

    def __init__(self, scheduler, slots: Sequence, make_host: Callable[[object, str], Host],
                 capacity: np.ndarray):
        self.sched = scheduler
        self.slots = slots
        self.make_host = make_host
        self.slot_cap = capacity
        n = 1024
        self.host_slot = np.zeros(n, dtype=np.int64)
        self.pseudo = np.zeros(n, dtype=bool)
        self.alive = np.zeros(n, dtype=bool)
        self.keep = np.zeros(n, dtype=bool)
        self.tasks = np.zeros(n, dtype=np.float64)
        self.used = np.zeros((n, capacity.shape[1]), dtype=np.float64)
        self.ids: list[str] = []
        self.group_added: dict[str, int] = defaultdict(int)
        self.serial = 0

    # ------------------------------------------------------------------ hosts
    def _grow_arrays(self, need: int) -> None:
        size = len(self.host_slot)
        if need <= size:
            return
        new = max(need, 2 * size)
        for name in ("host_slot", "pseudo", "alive", "keep", "tasks"):
            old = getattr(self, name)
            grown = np.zeros(new, dtype=old.dtype)
            grown[:size] = old
            setattr(self, name, grown)
        used = np.zeros((new, self.used.shape[1]))
        used[:size] = self.used
        self.used = used

    def add(self, slot: int, count: int, pseudo: bool) -> int:
        """Add ``count`` hosts to ``slot`` (pseudo ones within the group's headroom); returns how many."""
        s = self.slots[slot]
        if pseudo:
            count = min(count, s.headroom - self.group_added[s.group.name])
        if count <= 0:
            return 0
        first = len(self.ids)
        hosts = []
        for _ in range(count):
            self.serial += 1
            kind = "new" if pseudo else "empty"
            hosts.append(self.make_host(s, f"{s.group.name}/{s.zone}/{kind}-{self.serial}"))
        self.sched.add_hosts(hosts)
        self._grow_arrays(first + count)
        self.ids += [h.id for h in hosts]
        span = slice(first, first + count)
        self.host_slot[span] = slot
        self.pseudo[span] = pseudo
        self.alive[span] = True
        if pseudo:
            self.group_added[s.group.name] += count
        return count

    def fresh(self) -> np.ndarray:
        """Unused pseudo hosts per slot."""
        n = len(self.ids)
        mask = self.alive[:n] & self.pseudo[:n] & (self.tasks[:n] == 0)
        return np.bincount(self.host_slot[:n][mask], minlength=len(self.slots))

    def retire(self, smallest: np.ndarray) -> None:
        """Remove used hosts that cannot fit a row of demand >= ``smallest`` (per resource)."""
        n = len(self.ids)
        cap = self.slot_cap[self.host_slot[:n]]
        free = cap - self.used[:n]
        short = ((free < smallest[None, :] - EPS) & (smallest[None, :] > 0)).any(axis=1)
        gone = np.flatnonzero(self.alive[:n] & (self.tasks[:n] > 0) & ~self.keep[:n] & short)
        for i in gone:
            self.sched.remove_host(self.ids[i])
        self.alive[gone] = False

    # ------------------------------------------------------------------ placing
    def place(self, d, tc, cls, weight, keep_class, exclusive_class) -> np.ndarray:
        """Place rows; record usage; returns host indices (-1 unplaced)."""
        if len(self.ids) == 0:  # nowhere to place (every group full, none empty)
            return np.full(len(d), -1, dtype=np.int64)
        placed = np.asarray(self.sched.schedule_arrays(d, tc, cls), dtype=np.int64)
        ok = placed >= 0
        hosts = placed[ok]
        np.add.at(self.used, hosts, d[ok])
        np.add.at(self.tasks, hosts, weight[ok])
        self.keep[hosts[keep_class[tc[ok]]]] = True
        # A host holding a hard-exclusive task can take nothing else: retire it at once.
        done = hosts[exclusive_class[tc[ok]]]
        for i in np.unique(done):
            if self.alive[i]:
                self.sched.remove_host(self.ids[i])
                self.alive[i] = False
        return placed

    def run(self, d, tc, cls, weight, row_key, preferred, feasible) -> TrialOutcome:
        """The whole trial (see the module docstring)."""
        slots = self.slots
        keep_class = np.array([_has(c, BalancedHostAttr) for c in cls], dtype=bool)
        exclusive_class = np.array([any(isinstance(x, ExclusiveHost) for x in c.hard) for c in cls], dtype=bool)
        placed = np.full(len(d), -1, dtype=np.int64)
        for i, s in enumerate(slots):
            self.add(i, s.empty, pseudo=False)
        if self.ids:
            placed[:] = self.place(d, tc, cls, weight, keep_class, exclusive_class)
        # Smallest demand of each resource over rows i.. (suffix minimum).
        suffix_min = np.minimum.accumulate(d[::-1], axis=0)[::-1] if len(d) else d
        pending = np.flatnonzero(placed < 0)
        for start in range(0, len(pending), CHUNK_ROWS):
            chunk = pending[start:start + CHUNK_ROWS]
            self.retire(suffix_min[chunk[0]])
            self._offer(chunk, d, row_key, preferred, feasible)
            placed[chunk] = self.place(d[chunk], tc[chunk], cls, weight[chunk], keep_class, exclusive_class)
            for _ in range(MAX_REFILLS):
                left = chunk[placed[chunk] < 0]
                if left.size == 0 or not self._refill(left, row_key, feasible):
                    break
                placed[left] = self.place(d[left], tc[left], cls, weight[left], keep_class, exclusive_class)
                if (placed[left] < 0).all():
                    break  # more hosts did not help: what is left is held back by constraints
        n = len(self.ids)
        used = self.tasks[:n] > 0
        slot_of = self.host_slot[:n]
        ok = placed >= 0
        return TrialOutcome(
            used_pseudo=np.bincount(slot_of[used & self.pseudo[:n]], minlength=len(slots)),
            used_empty=np.bincount(slot_of[used & ~self.pseudo[:n]], minlength=len(slots)),
            tasks_on=np.bincount(slot_of[placed[ok]], weights=weight[ok], minlength=len(slots)),
            left=int(weight[~ok].sum()),
        )

    def _offer(self, chunk, d, row_key, preferred, feasible) -> None:
        """Top up unused pseudo hosts for a chunk: its lower bound where preferred, 1 elsewhere."""
        fresh = self.fresh()
        pref = preferred[row_key[chunk]]
        share = (d[chunk] / np.where(self.slot_cap[pref] > 0, self.slot_cap[pref], np.inf)).max(axis=1)
        need = np.bincount(pref, weights=share, minlength=len(self.slots))
        open_slots = feasible[row_key[chunk]].any(axis=0)
        for i in range(len(self.slots)):
            target = int(math.ceil(need[i] * SLACK)) + 1 if need[i] > 0 else (1 if open_slots[i] else 0)
            if fresh[i] < target:
                self.add(i, target - fresh[i], pseudo=True)

    def _refill(self, left, row_key, feasible) -> bool:
        """More pseudo hosts where leftovers could go and none is unused; False if none can be added."""
        fresh = self.fresh()
        wanted = feasible[row_key[left]].any(axis=0)
        added = 0
        for i in np.flatnonzero(wanted & (fresh == 0)):
            already = int(np.count_nonzero(self.pseudo[:len(self.ids)] & (self.host_slot[:len(self.ids)] == i)))
            added += self.add(int(i), max(1, min(already, len(left))), pseudo=True)
        return added > 0


def _has(c: TaskClass, kind) -> bool:
    return any(isinstance(x, kind) for x in (*c.hard, *c.soft))
