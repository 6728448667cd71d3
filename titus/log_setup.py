"""Logging set-up shared by the ``titus`` processes (master, agent)."""
from __future__ import annotations

import logging

# HTTP client libraries log every request at INFO: an agent's heartbeat each second, a
# master's log relays. They speak up only at DEBUG.
_CHATTY = ("httpx", "httpcore", "urllib3", "docker")


def quiet_http_clients(level: str) -> None:
    """Keep per-request client logs out of anything above DEBUG (``level`` as given to
    ``--log-level``, any case)."""
    chatty_level = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in _CHATTY:
        logging.getLogger(name).setLevel(chatty_level)
