"""Errors of the master's operations, mapped to HTTP by the API (404 and 409)."""


class NotFound(KeyError):
    """No such job, task, agent or capacity group."""


class Conflict(ValueError):
    """The request does not fit the object's state (e.g. resizing a batch job)."""
