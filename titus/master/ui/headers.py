"""Security headers on the master's answers (ASGI middleware).

Every answer but an agent's gets ``X-Content-Type-Options: nosniff`` (a browser never
guesses a type: a log line cannot become a page), ``X-Frame-Options: DENY`` and
``Referrer-Policy: same-origin``. An HTML answer gets :data:`PAGE_POLICY` as its
``Content-Security-Policy`` unless the route set its own (the API docs need inline styles);
any other gets :data:`DATA_POLICY`. Scripts only ever come from the master itself
(``script-src 'self'``): no inline script, no ``eval``, nothing from another origin, and no
page may be framed (``frame-ancestors 'none'``, against clickjacking).
"""
from __future__ import annotations

from titus.master.api.forward import agent_traffic

PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")
# Swagger UI and ReDoc set styles from their scripts and ReDoc searches in a worker
DOCS_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
_CSP = b"content-security-policy"
_COMMON = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"same-origin")]


class SecurityHeaders:
    """ASGI middleware adding the headers above (see the module's docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or agent_traffic(scope["method"], scope["path"]):
            return await self.app(scope, receive, send)

        async def stamped(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                html = any(k.lower() == b"content-type" and v.lower().startswith(b"text/html")
                           for k, v in headers)
                added = [h for h in _COMMON if h[0] not in names]
                if _CSP not in names:
                    added.append((_CSP, (PAGE_POLICY if html else DATA_POLICY).encode()))
                message = {**message, "headers": headers + added}
            await send(message)

        return await self.app(scope, receive, stamped)
