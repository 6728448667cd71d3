"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with no
request leaving the master: their scripts and styles are the ones the ``fastapi-offline``
package ships, served from ``/ui/vendor/``; Swagger UI is started by ``static/docs.js`` (no
inline script). Both read ``/openapi.json`` and, like it, need the ``read`` scope (a bearer
token or the web UI's session). From Swagger UI's "Try it out", a write with the session
carries its CSRF header (``docs.js`` adds it).
"""
from __future__ import annotations

from importlib.resources import files

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse

from titus.master.api.security import require_read
from titus.master.ui.headers import DOCS_POLICY
from titus.master.ui.render import page

VENDOR = files("fastapi_offline") / "static"
VENDOR_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
                "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}


def install_docs(app: FastAPI) -> None:
    """``/docs``, ``/redoc`` and their assets (none of them in ``/openapi.json``)."""

    def csrf(request: Request) -> str:
        session = request.app.state.sessions.session_of(request)
        return session.csrf if session is not None else ""

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_read)])
    def swagger_page(request: Request):
        return page("swagger.html", title=app.title, csrf=csrf(request),
                    headers={"Content-Security-Policy": DOCS_POLICY})

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(require_read)])
    def redoc_page(request: Request):
        return page("redoc.html", title=app.title,
                    headers={"Content-Security-Policy": DOCS_POLICY})

    @app.get("/ui/vendor/{name}", include_in_schema=False)
    def vendor_asset(name: str):
        kind = VENDOR_FILES.get(name)
        if kind is None:
            raise HTTPException(404, "no such file")
        return FileResponse(str(VENDOR / name), media_type=kind,
                            headers={"Cache-Control": "public, max-age=86400"})
