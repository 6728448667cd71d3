"""The errors a refused scheduler input raises (both ValueErrors; see ``validation``)."""
from __future__ import annotations


class InputTypeError(ValueError, TypeError):
    """A value of the wrong type: a ValueError like every refused input, and a TypeError."""


class UnknownIdError(KeyError, ValueError):
    """A host or task id the scheduler does not know: a KeyError, and a ValueError."""

    def __str__(self) -> str:  # the message itself, not KeyError's quoted repr
        return str(self.args[0]) if self.args else ""
