"""Every error the REST API answers has one JSON shape: ``{"error", "problems": [{"field",
"message", "value"?}]}`` (``problems`` may be empty), for 400, 401, 403, 404, 405, 409, 413,
422, 429 and 503 alike, and for the 500 that should never happen.

Bodies are written by :class:`SafeJSONResponse`, which cannot fail on what it is given: a value
no client could read (a non-finite number, a lone surrogate an older release stored) is
replaced, reported in the log and counted, instead of turning a listing into a 500 for everyone.
"""
from __future__ import annotations

import json
import logging
import math
from typing import Any, Optional

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from titus.boundary import BodyTooLarge, Problem, SpecError, safe_value
from titus.master.api.deps import BodyTooSlow, ClientGone, UnsupportedMediaType
from titus.master.errors import Conflict, Forbidden, NotFound, StoreUnavailable
from titus.master.idempotency import KeyReused

log = logging.getLogger("titus.master.api")

class _Tally:
    """How many responses held values no client could read (served as ``/metrics``)."""

    count = 0


UNSERVABLE = _Tally()

REASONS = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found",
           405: "method not allowed", 409: "conflict", 413: "body too large",
           415: "unsupported media type", 422: "unprocessable", 429: "too many requests",
           500: "internal error", 503: "unavailable"}


class SafeJSONResponse(JSONResponse):
    """A JSON response that always renders (strict JSON: finite numbers, valid UTF-8)."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")
        except (ValueError, TypeError, RecursionError):
            UNSERVABLE.count += 1
            log.error("a response held values no client can read; they were replaced")
            return json.dumps(servable(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")


def servable(value: Any, depth: int = 0) -> Any:
    """``value`` with non-finite numbers as null and lone surrogates as U+FFFD."""
    if depth > 64:
        return None
    if isinstance(value, str):
        if _bad_text(value):  # lone surrogates: UTF-16 round trip turns each into U+FFFD
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {servable(str(k), depth + 1): servable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [servable(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    return servable(str(value), depth + 1)


def _bad_text(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def error_body(error: str, problems: Optional[list] = None) -> dict:
    """The one error shape."""
    return {"error": error, "problems": [p.wire() if isinstance(p, Problem) else p
                                         for p in (problems or [])]}


def error_response(status: int, error: str, problems: Optional[list] = None,
                   headers: Optional[dict] = None) -> SafeJSONResponse:
    """An error answer in the one shape."""
    return SafeJSONResponse(error_body(error, problems), status_code=status, headers=headers)


def _problems_from_validation(errors: list) -> list[Problem]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        if loc and loc[0] in ("query", "path", "header"):
            loc = loc[1:]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(Problem(".".join(loc) or "(body)", message, safe_value(err.get("input"))))
    return out


def install_error_handlers(app) -> None:
    """Map errors to HTTP in the one shape: 400 bad input, 404 unknown, 409 wrong state,
    413 too large, 503 store unavailable, any HTTPException with its status."""

    @app.exception_handler(SpecError)
    async def _spec(_request, exc: SpecError):
        return SafeJSONResponse(exc.wire(), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request, exc: RequestValidationError):
        return error_response(400, "invalid request", _problems_from_validation(exc.errors()))

    @app.exception_handler(UnsupportedMediaType)
    async def _media(_request, exc: UnsupportedMediaType):
        return error_response(415, str(exc), [Problem("Content-Type", str(exc))])

    @app.exception_handler(ClientGone)
    async def _gone(_request, exc: ClientGone):
        return Response(status_code=400)  # nobody reads it; not worth a log line

    @app.exception_handler(BodyTooSlow)
    async def _too_slow(_request, exc: BodyTooSlow):
        return error_response(408, "the body came too slowly", [Problem("(body)", str(exc))])

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request, exc: BodyTooLarge):
        return error_response(413, "body too large", [Problem("(body)", str(exc))])

    @app.exception_handler(NotFound)
    async def _missing(_request, exc: NotFound):
        what = exc.args[0] if exc.args else None
        return error_response(404, "not found", [Problem("id", "no such object", what)])

    @app.exception_handler(Conflict)
    async def _conflict(_request, exc: Conflict):
        field = getattr(exc, "field", None) or "(state)"
        return error_response(409, str(exc), [Problem(field, str(exc))])

    @app.exception_handler(Forbidden)
    async def _forbidden(_request, exc: Forbidden):
        return error_response(403, str(exc), [Problem(exc.field or "(auth)", str(exc))])

    @app.exception_handler(KeyReused)
    async def _key_reused(_request, exc: KeyReused):
        return error_response(422, str(exc), [Problem("Idempotency-Key", str(exc), exc.key)])

    @app.exception_handler(StoreUnavailable)
    async def _store(_request, exc: StoreUnavailable):
        return error_response(503, "the store is unavailable; nothing was changed, retry later",
                              [Problem("(store)", str(exc))], headers={"Retry-After": "1"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, exc: StarletteHTTPException):
        detail = exc.detail
        if isinstance(detail, dict) and "error" in detail:
            body = {"problems": [], **detail}
            return SafeJSONResponse(body, status_code=exc.status_code, headers=exc.headers)
        message = detail if isinstance(detail, str) else REASONS.get(exc.status_code, "error")
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request, exc: Exception):
        log.exception("unexpected error answering a request")
        return error_response(500, "internal error", [Problem("(server)", type(exc).__name__)])


__all__ = ["HTTPException", "SafeJSONResponse", "error_body", "error_response",
           "install_error_handlers", "servable"]
