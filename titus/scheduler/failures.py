"""The one-line explanation of an unplaced task, shared by the engine wrapper and the twin."""
from __future__ import annotations

from titus._engine import CONSTRAINT_REASON_PREFIX, FIXED_REASONS
from titus.scheduler.model import Failure

GROUP_LIMIT = FIXED_REASONS[0]  # the reason of a task its group limit stopped


def constraint_labels(hard) -> dict[str, str]:
    """Reason key -> how to show it: ``constraint:UniqueHostAttr`` -> ``...UniqueHostAttr(zone)``."""
    labels: dict[str, str] = {}
    for c in hard:
        labels.setdefault(f"{CONSTRAINT_REASON_PREFIX}{type(c).__name__}",
                          f"{CONSTRAINT_REASON_PREFIX}{c!r}")
    return labels


def make_failure(counts: dict[str, int], n_hosts: int, labels: dict[str, str] | None = None) -> Failure:
    """A Failure whose message reads like ``0/10 hosts: 9 cpus, 1 constraint:UniqueHostAttr(zone)``.

    Reasons are listed by count, largest first, then by name.
    """
    labels = labels or {}
    parts = [f"{n} {labels.get(r, r)}" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    message = f"0/{n_hosts} hosts: " + (", ".join(parts) if parts else "no hosts")
    return Failure(counts=dict(counts), message=message)


def group_limit_failure(group, n_hosts: int) -> Failure:
    """The Failure of a task its group limit stopped before any host was looked at."""
    return make_failure({GROUP_LIMIT: n_hosts}, n_hosts, {GROUP_LIMIT: f"{GROUP_LIMIT}({group})"})
