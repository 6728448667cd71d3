"""The scheduling API: place tasks on hosts (see docs/semantics.md)."""
from titus.scheduler.model import Failure, Host, Result, Task, TaskClass

__all__ = ["Host", "Task", "TaskClass", "Result", "Failure"]
