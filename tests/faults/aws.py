"""AWS API errors on demand, through botocore's own event hooks (the request never leaves).

``AwsFaults(client).fail("SetDesiredCapacity", "Throttling", when=lambda p: ...)`` makes that
operation of that boto3 client raise ``ClientError`` with the given code (as botocore raises
after its own retries) for calls whose parameters ``when`` accepts, ``times`` times (None:
until :meth:`AwsFaults.clear`). Deleting an Auto Scaling group out of band needs no helper:
call ``delete_auto_scaling_group`` on moto's server with another client.
"""
from __future__ import annotations

from typing import Callable, Optional

from botocore.exceptions import ClientError


class AwsFaults:
    """Injected failures of one boto3 client's operations."""

    def __init__(self, client):
        self.client = client
        self._hooks: list[tuple[str, Callable]] = []
        self.raised = 0  # failures raised so far

    def fail(self, operation: str, code: str = "Throttling", *, status: int = 400,
             when: Optional[Callable[[dict], bool]] = None, times: Optional[int] = None) -> None:
        """Make ``operation`` (e.g. ``"SetDesiredCapacity"``) fail with ``code``."""
        service = self.client.meta.service_model.service_name
        left = [times]

        def hook(params, **_):
            if when is not None and not when(params):
                return
            if left[0] is not None:
                if left[0] <= 0:
                    return
                left[0] -= 1
            self.raised += 1
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

        event = f"before-parameter-build.{service}.{operation}"
        self.client.meta.events.register(event, hook)
        self._hooks.append((event, hook))

    def clear(self) -> None:
        """Remove every injected failure."""
        for event, hook in self._hooks:
            self.client.meta.events.unregister(event, hook)
        self._hooks.clear()
