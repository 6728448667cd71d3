"""Constraint mixes: which constraints each job of a synthetic workload carries.

- ``none``: no constraints (pure packing).
- ``zone``: every job has hard ``HostAttrValue("tier", "flex")`` and soft
  ``BalancedHostAttr("zone", zones)`` -- the mix of the engine throughput target.
- ``unique``: one task per host for each job: hard ``UniqueHostAttr("hostname")`` for jobs small
  enough to fit (at most a quarter of the hosts), soft for larger jobs (spread where possible).
- ``mixed``: each job draws one of: nothing (50%), the ``zone`` pair (30%), hard
  ``BalancedHostAttr("zone")`` (10%), the ``unique`` rule (8%), hard ``ExclusiveHost`` for
  single-task jobs (2%; larger jobs drawing it get nothing).
- ``pinned``: each job draws one of: hard ``HostAttrValue("zone", [two of the zones])`` (10%;
  the two drawn per job), soft ``BalancedHostAttr("zone")`` (30%), nothing (60%).
"""
from __future__ import annotations

import numpy as np

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import TaskClass

_MIXED_CHOICES = ("none", "zone", "balanced", "unique", "exclusive")
_MIXED_WEIGHTS = (0.50, 0.30, 0.10, 0.08, 0.02)


def job_name(index: int) -> str:
    """The job id of the ``index``-th job."""
    return f"job-{index}"


def task_classes(mix: str, job_sizes: np.ndarray, hosts: int, zones: int,
                 rng: np.random.Generator) -> list[TaskClass]:
    """One ``TaskClass`` per job, carrying the constraints ``mix`` gives that job."""
    if mix == "pinned":
        return _pinned(job_sizes, zones, rng)
    if mix == "mixed":
        kinds = rng.choice(len(_MIXED_CHOICES), size=len(job_sizes), p=_MIXED_WEIGHTS)
        picks = [_MIXED_CHOICES[k] for k in kinds]
    else:
        picks = [mix] * len(job_sizes)
    return [_job_class(job_name(j), pick, int(size), hosts, zones)
            for j, (pick, size) in enumerate(zip(picks, job_sizes))]


def _pinned(job_sizes: np.ndarray, zones: int, rng: np.random.Generator) -> list[TaskClass]:
    kinds = rng.choice(3, size=len(job_sizes), p=(0.1, 0.3, 0.6))
    out = []
    for j, kind in enumerate(kinds.tolist()):
        if kind == 0:
            two = sorted(rng.choice(zones, size=min(2, zones), replace=False).tolist())
            out.append(TaskClass(job=job_name(j), hard=(HostAttrValue("zone", [f"zone-{z}" for z in two]),)))
        elif kind == 1:
            out.append(TaskClass(job=job_name(j), soft=(BalancedHostAttr("zone", zones),)))
        else:
            out.append(TaskClass(job=job_name(j)))
    return out


def _job_class(job: str, kind: str, size: int, hosts: int, zones: int) -> TaskClass:
    if kind == "zone":
        return TaskClass(job=job, hard=(HostAttrValue("tier", "flex"),),
                         soft=(BalancedHostAttr("zone", zones),))
    if kind == "balanced":
        return TaskClass(job=job, hard=(BalancedHostAttr("zone", zones),))
    if kind == "unique":
        if size <= hosts // 4:
            return TaskClass(job=job, hard=(UniqueHostAttr("hostname"),))
        return TaskClass(job=job, soft=(UniqueHostAttr("hostname"),))
    if kind == "exclusive" and size == 1:
        return TaskClass(job=job, hard=(ExclusiveHost(),))
    return TaskClass(job=job)
