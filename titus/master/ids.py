"""Ids of jobs and tasks: UUIDs ordered by time (version 7 layout).

Time-ordered ids keep the store's id index append-mostly, which matters when a million tasks
are inserted in a few seconds; to clients they are ordinary opaque UUID strings, as in Titus.
"""
from __future__ import annotations

import random
import threading
import time

_lock = threading.Lock()
_last = [0, 0]  # last millisecond, counter within it


def new_id() -> str:
    """A new UUIDv7-style id: 48-bit milliseconds, a 12-bit counter, 62 random bits."""
    ms = int(time.time() * 1000)
    with _lock:
        if ms <= _last[0]:
            ms = _last[0]
            _last[1] += 1
            if _last[1] >= 1 << 12:  # counter full: borrow the next millisecond
                ms += 1
                _last[1] = 0
        else:
            _last[1] = 0
        _last[0] = ms
        counter = _last[1]
    # ids are names, not secrets: a fast generator is enough
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | random.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
