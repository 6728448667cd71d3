"""HTML pages from Jinja2 templates: autoescaped, with the filters the pages share.

Every value a user supplied (job names, env, log lines, failure messages) reaches a page
through a template expression, and autoescaping writes it as text. No template writes a
``<script>`` element or an event attribute: the pages' behaviour is ``static/ui.js``, the one
script the Content-Security-Policy (``titus.master.ui.headers``) lets run.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Optional

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

ENV = Environment(loader=PackageLoader("titus.master.ui", "templates"), autoescape=True,
                  trim_blocks=True, lstrip_blocks=True)


def epoch_seconds(value: Any) -> Optional[float]:
    """Epoch seconds from epoch seconds (a number) or epoch milliseconds (a string, the REST
    views' int64 timestamps); None for nothing or something unreadable."""
    if value is None or value == "":
        return None
    try:
        seconds = int(value) / 1000.0 if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and 0 < seconds < 1e11 else None


def when(value: Any) -> str:
    """A timestamp as a readable UTC date, ``2026-12-06 23:41:07 UTC`` ("" for none)."""
    seconds = epoch_seconds(value)
    if seconds is None:
        return ""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: Any) -> str:
    """A timestamp in ISO 8601 (for ``<time datetime=...>``; "" for none)."""
    seconds = epoch_seconds(value)
    if seconds is None:
        return ""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")


def amount(value: Any) -> str:
    """A resource amount without needless decimals (``4``, ``0.5``, ``1.25``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if not math.isfinite(value):
        return "?"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def pretty(value: Any) -> str:
    """JSON for reading (escaped like any other text when written into a page)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def percent(value: Any) -> str:
    """A fraction as a percentage (``42%``)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return f"{100 * value:.0f}%"


ENV.filters.update(when=when, iso=iso, amount=amount, pretty=pretty, percent=percent)


def page(template: str, status: int = 200, headers: Optional[dict] = None,
         **context) -> HTMLResponse:
    """``template`` rendered with ``context`` as an HTML response."""
    html = ENV.get_template(template).render(**context)
    # a lone surrogate cannot be written as UTF-8: shown as U+FFFD rather than failing the page
    body = html.encode("utf-8", "replace")
    return HTMLResponse(body, status_code=status, headers=headers)
