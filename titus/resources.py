"""The resource names shared by the engine, the master and the autoscaler.

``BASE_RESOURCES`` are the engine's fixed columns: every ``Host`` and ``Task`` carries them as
fields, and ``Scheduler.resources`` starts with them, in this order (scalars such as ``gpu``
follow, in the order first seen). They are also the columns of ``schedule_arrays``'s demand for
a cluster without scalars.

``PLATFORM_RESOURCES`` are what the platform deals in: what a job asks for, what an instance type
offers and what capacity groups guarantee, limit and count. They are the base resources plus
``gpu``, which the engine handles as a scalar (``Host.scalars["gpu"]``, ``Task.scalars["gpu"]``).
"""
from __future__ import annotations

#: The engine's fixed resource columns, in ``Scheduler.resources`` order (csrc/fitness.hpp).
from titus._engine import BASE_RESOURCES  # noqa: E402
#: What a job asks for and capacity groups count: the base resources, then ``gpu`` (a scalar).
PLATFORM_RESOURCES = BASE_RESOURCES + ("gpu",)

__all__ = ["BASE_RESOURCES", "PLATFORM_RESOURCES"]
