"""The one place a scheduling engine is built: the master, the autoscaler's trial placement,
``titus bench`` and the benchmark scripts all call :func:`make_scheduler`.

There is no fallback: the compiled engine (``titus._engine``) is required, and the ``titus``
package refuses to import without it, so ``engine="native"`` always gives ``titus.Scheduler``.
The plain-Python twin is chosen only by name.
"""
from __future__ import annotations

from titus.scheduler.reference import ReferenceScheduler
from titus.scheduler.scheduler import Scheduler

#: The engine names :func:`make_scheduler` accepts.
ENGINES = ("native", "reference")

_CLASSES = {"native": Scheduler, "reference": ReferenceScheduler}


def make_scheduler(engine: str = "native", *, fitness="cpu_mem_binpack", good_enough=None,
                   seed: int = 0, task_order: str = "given", **options):
    """A fresh scheduler with no hosts.

    ``engine``: ``"native"`` for ``titus.Scheduler`` (the compiled engine), ``"reference"`` for
    ``titus.scheduler.reference.ReferenceScheduler`` (the plain-Python twin: same API and same
    placements, far slower; for tests, benchmarks and checking the engine).

    Options, the same for both engines (see ``titus.Scheduler`` and docs/semantics.md):

    - ``fitness``: a fitness name (``cpu_mem_binpack``, ``cpu_binpack``, a ``*_spread``,
      ``cpu_mem_fewest_hosts``, ...) or a weighted mix such as ``{"cpu_binpack": 2,
      "memory_spread": 1}``;
    - ``good_enough``: None, or a score in [0, 1] at which the first host (in tie-key order)
      reaching it is taken;
    - ``seed``: the tie-break seed (any int);
    - ``task_order``: ``"given"`` or ``"interleave_jobs"``;
    - ``**options``: passed on as they are: ``group_limits``, ``soft_weight``,
      ``fitness_weight``, ``index``.

    Raises ValueError when ``engine`` is not one of :data:`ENGINES` (the message names them);
    the scheduler's own ValueError/TypeError for a bad option (an unknown fitness or task order,
    a ``good_enough`` outside [0, 1], a non-integer seed, ...); TypeError for an option neither
    engine takes.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return _CLASSES[engine](fitness=fitness, good_enough=good_enough, seed=seed,
                            task_order=task_order, **options)


__all__ = ["ENGINES", "make_scheduler"]
