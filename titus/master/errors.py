"""Errors of the master's operations, mapped to HTTP by the API (404, 409 and 503)."""


class NotFound(KeyError):
    """No such job, task, agent or capacity group."""


class Conflict(ValueError):
    """The request does not fit the object's state (e.g. resizing a batch job).

    ``field`` (optional) names the field the conflict is about (HTTP 409 problems)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class StoreUnavailable(RuntimeError):
    """The store refused or failed a write (or cannot be reached); nothing was changed.

    Answered as HTTP 503 with ``Retry-After``; the master keeps running and retries."""


class Forbidden(PermissionError):
    """The caller is known but may not do this (HTTP 403): another user's job, another agent,
    an IAM role outside its list. ``field`` (optional) names what is refused."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field
