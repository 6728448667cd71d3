"""Followed logs: each line exactly once and in order, across json-file rotation (where the
engine's own follower repeats lines) and across the engine going away mid-follow."""
from __future__ import annotations

import threading
import time

import pytest

from titus.agent.docker_logs import LineCursor, LogPolicy
from titus.agent.docker_runtime import DockerRuntime
from tests.docker.helpers import spec

pytestmark = pytest.mark.docker

PAD = "x" * 40
# numbered lines, written after a pause so the follower is attached before they start
SCRIPT = ("sleep {pause}; i=1; while [ $i -le {n} ]; do echo line-$i-{pad}; "
          "[ $((i % 50)) -eq 0 ] && echo err-$i >&2; i=$((i+1)); {nap} done; sleep 0.3")


def _numbered(text: bytes) -> list[int]:
    return [int(line.split(b"-")[1]) for line in text.splitlines() if line.startswith(b"line-")]


def _follow(runtime, task_id) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(runtime.logs(task_id, follow=True)))
    reader.start()
    return reader, got


@pytest.fixture
def small_logs_runtime(docker_client, agent_id, statuses):
    rt = DockerRuntime(agent_id, client=docker_client, log_policy=LogPolicy("10k", 2))
    rt.start(statuses)
    assert rt.connected.wait(10)
    yield rt
    rt.close()


def test_followed_lines_come_once_in_order_across_rotation(small_logs_runtime, statuses):
    # 300 entries of ~120 bytes in 10k files: the log rotates 3 times. Paced a little: a
    # burst that outruns two 10k files between two reads is lost to the bound, for any reader
    n = 300
    small_logs_runtime.launch(spec("rotor", ["sh", "-c", SCRIPT.format(
        pause=1.5, n=n, pad=PAD, nap="[ $((i % 10)) -eq 0 ] && sleep 0.02;")]))
    statuses.wait_for("rotor", "Started")
    reader, got = _follow(small_logs_runtime, "rotor")
    reader.join(timeout=60)
    assert not reader.is_alive(), "follow must end when the container ends"
    text = b"".join(got)
    assert _numbered(text) == list(range(1, n + 1))
    errs = [line for line in text.splitlines() if line.startswith(b"err-")]
    assert errs == [f"err-{i}".encode() for i in range(50, n + 1, 50)]


def test_follow_resumes_without_gap_or_repeat_after_the_engine_went_away(
        proxied_runtime, statuses, engine_proxy):
    n = 120
    proxied_runtime.launch(spec("steady", ["sh", "-c", SCRIPT.format(
        pause=1.0, n=n, pad=PAD, nap="sleep 0.02;")]))
    statuses.wait_for("steady", "Started", timeout=15)
    reader, got = _follow(proxied_runtime, "steady")
    time.sleep(1.8)
    engine_proxy.close()  # cuts the follow in the middle of the output
    time.sleep(1.0)
    engine_proxy.reopen()
    reader.join(timeout=60)
    assert not reader.is_alive()
    assert _numbered(b"".join(got)) == list(range(1, n + 1))


def test_cursor_drops_repeats_and_keeps_new_lines():
    c = LineCursor(window_sec=2.0)
    a = b"2024-01-02T03:04:05.000000001Z one\n"
    b = b"2024-01-02T03:04:05.500000000Z two\n"
    assert c.admit(a) == b"one\n" and c.admit(b) == b"two\n"
    assert c.admit(a) is None and c.admit(b) is None  # repeated by a rotation
    # stderr's copier may stamp a line a moment before stdout's last one: still new
    assert c.admit(b"2024-01-02T03:04:05.400000000Z err\n") == b"err\n"
    later = b"2024-01-02T03:04:09.000000000Z three\n"
    assert c.admit(later) == b"three\n"
    assert c.admit(a) is None  # far older than the newest: a repeat whatever it says
    assert c.resume_since() == pytest.approx(1704164647.0)
    assert c.admit(b"no timestamp here") == b"no timestamp here"  # passed through
