"""Titus: a container management platform with a compiled scheduling core.

The scheduling API is re-exported here: ``Scheduler``, ``Host``, ``Task``, ``TaskClass``,
``Result``, ``Failure``; constraints live in ``titus.constraints``.
"""
try:
    from titus import _codec, _engine  # noqa: F401  (native parts, built by setup.py)
except ImportError as exc:  # pragma: no cover - only on an unbuilt checkout
    raise ImportError(
        "titus: the native extensions (titus._engine, titus._codec) are not built. "
        "Build them with `pip install -e .` (or `python setup.py build_ext --inplace`) "
        "from the repository root."
    ) from exc

from titus.scheduler import Failure, Host, Result, Scheduler, Task, TaskClass  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Scheduler", "Host", "Task", "TaskClass", "Result", "Failure"]
