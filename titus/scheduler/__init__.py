"""The scheduling API: place tasks on hosts (see docs/semantics.md)."""
from titus.scheduler.model import Failure, Host, Result, Task, TaskClass
from titus.scheduler.scheduler import Scheduler

__all__ = ["Scheduler", "Host", "Task", "TaskClass", "Result", "Failure"]
