"""Per-task stdout/stderr for Docker containers: bounded, rotated, readable until removed.

Docker's ``json-file`` log driver keeps each container's output on the host with a size bound
and rotation (``max-size`` per file, ``max-file`` files), independently of the agent: output
written while the agent is down is kept, and the log stays readable after the container exits
until the container is removed (the reaper, or archival by the master).

Followed output comes through :func:`follow_logs`: each line exactly once and in order, across
rotations (where the engine's own follower repeats and skips lines) and across a broken
connection to the engine (the follow resumes from the last line sent).
"""
from __future__ import annotations

import json
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

import docker.errors
from docker.types import LogConfig

from titus.agent.faults import SYSTEM, classify_docker

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
    """Yield a container's stdout and stderr interleaved, as written, each line once.

    With ``follow``, keep yielding until the container stops (:func:`follow_logs`). A container
    removed while being read simply ends the stream.
    """
    if follow:
        yield from follow_logs(container.client.api, container.id)
        return
    try:
        data = container.logs(stdout=True, stderr=True, stream=False, follow=False)
    except docker.errors.NotFound:
        return
    if data:
        yield data


def follow_logs(api, container_id: str, *, reconnect_sec: float = 60.0,
                window_sec: float = 2.0, poll_sec: float = 0.1) -> Iterator[bytes]:
    """Follow a container's output until it stops: each line exactly once, in order.

    The engine's own ``json-file`` follower cannot be trusted with the content: when the file
    rotates it repeats lines and skips others (Docker 20.10: 300 lines at ``10k x 2`` came
    back as 1-169, 254-300, 254-300). Where the agent can read the log files (it runs on the
    engine's host, as the engine's user) they are tailed directly (:func:`tail_json_log`):
    an open file is read to its end even after it was rotated (or deleted), and the newer
    files follow, so no line is skipped or repeated. Otherwise (a remote engine) the engine's
    follower is used, with timestamps, through a :class:`LineCursor` that drops every repeat.

    ``api`` is a docker ``APIClient``. An engine that goes away is waited for (back-off) for
    up to ``reconnect_sec``; a container removed meanwhile ends the stream. Yields ``bytes``
    (each line with its newline), without timestamps."""
    try:
        path = api.inspect_container(container_id).get("LogPath") or ""
    except docker.errors.NotFound:
        return
    if path and os.access(path, os.R_OK):
        yield from tail_json_log(path, _Liveness(api, container_id, reconnect_sec),
                                 window_sec=window_sec, poll_sec=poll_sec)
    else:
        yield from _follow_through_engine(api, container_id, reconnect_sec, window_sec)


class _Liveness:
    """Whether the container still runs, asked of the engine; an engine that does not answer
    counts as "still running" for up to ``patience_sec`` (then as stopped)."""

    def __init__(self, api, container_id: str, patience_sec: float):
        self.api, self.container_id, self.patience_sec = api, container_id, patience_sec
        self._lost_at: float | None = None

    def __call__(self) -> bool:
        try:
            running = bool(self.api.inspect_container(self.container_id)["State"].get("Running"))
        except docker.errors.NotFound:
            return False
        except Exception as exc:
            if classify_docker(exc, "inspect").kind != SYSTEM:
                raise
            self._lost_at = self._lost_at or time.monotonic()
            return time.monotonic() - self._lost_at <= self.patience_sec
        self._lost_at = None
        return running


def tail_json_log(path: str, running, *, window_sec: float = 2.0,
                  poll_sec: float = 0.1) -> Iterator[bytes]:
    """Tail a ``json-file`` log at ``path`` (with its rotated ``path.1``, ``path.2`` ...)
    until ``running()`` is False and everything written was read; yields each entry's bytes.

    Files are read oldest first. The current file stays open: when the engine rotates it
    (renames it to ``path.1`` and starts a new ``path``), the open file is read to its end,
    then every file newer than it, so rotation neither skips nor repeats a line (a
    :class:`LineCursor` drops any entry read twice in a race with a rotation)."""
    cursor = LineCursor(window_sec)
    current = None
    try:
        for name in _log_files(path):  # oldest first
            handle = _open(name)
            if handle is None:
                continue
            yield from _drain(handle, cursor)
            if name == path:
                current = handle
            else:
                handle.close()
        while True:
            alive = running()  # asked before the last read: a stop is followed by one more
            if current is not None:
                yield from _drain(current, cursor)
            if current is None or _rotated(path, current):
                for name in _log_files(path):
                    if current is not None and _same_file(name, current):
                        continue
                    handle = _open(name)
                    if handle is None:
                        continue
                    yield from _drain(handle, cursor)
                    if name == path:
                        if current is not None:
                            current.close()
                        current = handle
                    else:
                        handle.close()
                continue
            if not alive:
                return
            time.sleep(poll_sec)
    finally:
        if current is not None:
            current.close()


def _log_files(path: str) -> list[str]:
    """``path``'s rotated files oldest first (``path.N`` ... ``path.1``), then ``path``."""
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return [*reversed(rotated), path]


def _open(name: str):
    try:
        return open(name, "rb")
    except FileNotFoundError:
        return None


def _same_file(name: str, handle) -> bool:
    try:
        st, mine = os.stat(name), os.fstat(handle.fileno())
    except FileNotFoundError:
        return False
    return (st.st_ino, st.st_dev) == (mine.st_ino, mine.st_dev)


def _rotated(path: str, handle) -> bool:
    """Whether ``path`` is no longer the open file (the engine rotated it)."""
    return not _same_file(path, handle)


def _drain(handle, cursor: "LineCursor") -> Iterator[bytes]:
    """Every complete entry from the handle's position to its end (a half-written last line
    is left for the next call)."""
    while True:
        start = handle.tell()
        line = handle.readline()
        if not line:
            return
        if not line.endswith(b"\n"):
            handle.seek(start)
            return
        try:
            entry = json.loads(line)
            payload = entry["log"].encode("utf-8", "surrogateescape")
            ns = cursor.parse_ns(entry["time"].encode("ascii"))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not an entry of ours to understand
        if ns is None:
            continue
        if cursor.admit_at(ns, payload):
            yield payload


def _follow_through_engine(api, container_id: str, reconnect_sec: float,
                           window_sec: float) -> Iterator[bytes]:
    """The engine's follower with repeats dropped (for an engine whose files are not here)."""
    cursor = LineCursor(window_sec)
    delay, lost_at = 0.1, None
    while True:
        try:
            for frame in api.logs(container_id, stdout=True, stderr=True, stream=True,
                                  follow=True, timestamps=True, since=cursor.resume_since()):
                lost_at, delay = None, 0.1
                payload = cursor.admit(frame)
                if payload is not None:
                    yield payload
            if not api.inspect_container(container_id)["State"].get("Running"):
                return
        except docker.errors.NotFound:
            return
        except Exception as exc:  # the engine went away mid-stream: resume where we were
            if classify_docker(exc, "follow").kind != SYSTEM:
                raise
            lost_at = lost_at or time.monotonic()
            if time.monotonic() - lost_at > reconnect_sec:
                return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class LineCursor:
    """Which timestamped log lines were already sent: each line once, in order.

    A line is ``b"<RFC3339Nano timestamp> <payload>"`` as the engine sends it with
    ``timestamps=True``. A line older than the newest one sent by more than ``window_sec`` is a
    repeat; a newer one is remembered (timestamp and payload) for ``window_sec`` so a repeat
    inside the window is recognised too. The window absorbs the small disorder between stdout
    and stderr (each is timestamped by its own copier)."""

    def __init__(self, window_sec: float = 2.0):
        self.window_ns = int(window_sec * 1e9)
        self.newest_ns = 0
        self._recent: deque[tuple[int, tuple[int, bytes]]] = deque()
        self._seen: set[tuple[int, bytes]] = set()
        self._second_cache: dict[bytes, int] = {}

    def admit(self, line: bytes) -> bytes | None:
        """The payload of ``line`` if it was not sent before, else None (and remember it)."""
        stamp, sep, payload = line.partition(b" ")
        ns = self.parse_ns(stamp) if sep else None
        if ns is None:  # not a timestamped line (should not happen): pass it through
            return line
        return payload if self.admit_at(ns, payload) else None

    def admit_at(self, ns: int, payload: bytes) -> bool:
        """Whether an entry stamped ``ns`` (epoch nanoseconds) is new (then remembered)."""
        if ns < self.newest_ns - self.window_ns:
            return False
        key = (ns, payload)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._recent.append((ns, key))
        if ns > self.newest_ns:
            self.newest_ns = ns
            horizon = ns - self.window_ns
            while self._recent and self._recent[0][0] < horizon:
                self._seen.discard(self._recent.popleft()[1])
        return True

    def resume_since(self) -> float | None:
        """Epoch seconds to resume a follow from: a window before the newest line sent."""
        if not self.newest_ns:
            return None
        return max(1e-6, (self.newest_ns - self.window_ns) / 1e9)

    def parse_ns(self, stamp: bytes) -> int | None:
        """Epoch nanoseconds of an RFC 3339 UTC stamp (``2024-01-02T03:04:05.123456789Z``,
        any number of fraction digits), or None if it is not one."""
        # whole seconds are parsed once per second seen
        if len(stamp) < 20 or not stamp.endswith(b"Z"):
            return None
        second = stamp[:19]
        base = self._second_cache.get(second)
        if base is None:
            try:
                when = datetime.strptime(second.decode("ascii"), "%Y-%m-%dT%H:%M:%S")
            except ValueError:
                return None
            base = int(when.replace(tzinfo=timezone.utc).timestamp()) * 1_000_000_000
            if len(self._second_cache) > 4096:
                self._second_cache.clear()
            self._second_cache[second] = base
        fraction = stamp[20:-1] if stamp[19:20] == b"." else b""
        if fraction and not fraction.isdigit():
            return None
        return base + int((fraction + b"000000000")[:9] or b"0")
