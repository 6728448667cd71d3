"""How the CLI shows times, ages and ids to people (tables and ``describe`` pages).

Timestamps from the API are epoch milliseconds as strings (Titus's int64 JSON mapping);
people see local wall-clock times and ages ("5m", "2h10m", as ``kubectl`` shows them).
"""
from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Optional

# Characters a terminal acts on rather than shows: C0 controls but tab and new line, DEL, C1
# controls, and the bidirectional overrides that reorder what is shown ("Trojan Source")
_UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on written as an escape (ESC as
    ``\\x1b``): job names, env, commands and messages are anyone's input, and an admin's
    ``titus job describe`` must not have its terminal retitled, cleared or recoloured."""
    return _UNSHOWN.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def epoch_sec(value) -> Optional[float]:
    """Epoch seconds of an API timestamp (epoch ms, as a number or a string); None if absent
    or unreadable."""
    if value is None or value == "":
        return None
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return None
    return ms / 1000.0 if ms == ms and abs(ms) < 1e15 else None


def when(value, seconds: bool = False) -> str:
    """A local time like ``2026-12-06 23:16:33`` for an API timestamp (epoch ms; epoch seconds
    with ``seconds``); "" if absent."""
    ts = epoch_sec(value) if not seconds else _float(value)
    if ts is None:
        return ""
    try:
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return ""


def age(value, now: Optional[float] = None, seconds: bool = False) -> str:
    """How long ago an API timestamp was, compact: ``42s``, ``5m``, ``3h12m``, ``4d6h``."""
    ts = epoch_sec(value) if not seconds else _float(value)
    if ts is None:
        return ""
    return span(max(0.0, (time.time() if now is None else now) - ts))


def span(sec: float) -> str:
    """A duration, compact (``0s``, ``42s``, ``5m3s``, ``3h12m``, ``4d6h``)."""
    sec = int(sec)
    if sec < 60:
        return f"{sec}s"
    minutes, s = divmod(sec, 60)
    if minutes < 60:
        return f"{minutes}m{s}s" if minutes < 10 and s else f"{minutes}m"
    hours, m = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{m}m" if m else f"{hours}h"
    days, h = divmod(hours, 24)
    return f"{days}d{h}h" if h else f"{days}d"


def _float(value) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) < 1e13 else None
