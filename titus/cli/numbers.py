"""Number options of the CLI: finite only.

click's ``FloatRange`` lets ``nan`` through (every comparison with NaN is false) and
``float`` takes ``nan`` and ``inf``; a host of ``--cpus nan`` made ``titus local``'s agents
exit at once and ``titus agent`` print a validation trace. :class:`Finite` refuses both with
the usual one-line usage error.
"""
from __future__ import annotations

import math
from typing import Optional

import click


class Finite(click.FloatRange):
    """A finite float, within ``[min, max]`` when given (click's ``FloatRange`` otherwise)."""

    name = "number"

    def __init__(self, min: Optional[float] = None, max: Optional[float] = None,
                 min_open: bool = False, max_open: bool = False, clamp: bool = False):
        super().__init__(min, max, min_open=min_open, max_open=max_open, clamp=clamp)

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


FINITE = Finite()
