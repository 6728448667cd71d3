"""Per-task stdout/stderr for Docker containers: bounded, rotated, readable until removed.

Docker's ``json-file`` log driver keeps each container's output on the host with a size bound
and rotation (``max-size`` per file, ``max-file`` files), independently of the agent: output
written while the agent is down is kept, and the log stays readable after the container exits
until the container is removed (the reaper, or archival by the master).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import docker.errors
from docker.types import LogConfig

_SIZE = re.compile(r"^[1-9][0-9]*[kmg]?$")


@dataclass(frozen=True)
class LogPolicy:
    """How much output a task may keep: ``max_files`` files of ``max_size`` (e.g. "10m") each."""

    max_size: str = "10m"
    max_files: int = 3

    def __post_init__(self) -> None:
        if not _SIZE.match(str(self.max_size)):
            raise ValueError("max_size: expected a size like '512k' or '10m', "
                             f"got {self.max_size!r}")
        if not isinstance(self.max_files, int) or self.max_files < 1:
            raise ValueError(f"max_files: expected an integer >= 1, got {self.max_files!r}")

    def log_config(self) -> LogConfig:
        """The container's log configuration for this policy."""
        return LogConfig(
            type=LogConfig.types.JSON,
            config={"max-size": str(self.max_size), "max-file": str(self.max_files)},
        )


def read_logs(container, follow: bool = False) -> Iterator[bytes]:
    """Yield a container's stdout and stderr interleaved, as written.

    With ``follow``, keep yielding until the container stops. A container removed while being
    read simply ends the stream.
    """
    try:
        if not follow:
            data = container.logs(stdout=True, stderr=True, stream=False, follow=False)
            if data:
                yield data
            return
        for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True):
            yield chunk
    except docker.errors.NotFound:
        return
