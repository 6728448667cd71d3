"""The master's web UI: server-rendered pages over the REST API's read paths.

``install_ui(app)`` adds the pages (``routes``), the sign-in sessions (``sessions``), the
static files (``static/``: one stylesheet, one script), the offline API docs (``docs``) and
the security headers (``headers``). Pages, auth and the CSP are described in docs/ui.md.
"""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from titus.master.api.security import SubmitRate
from titus.master.ui.docs import install_docs
from titus.master.ui.headers import SecurityHeaders
from titus.master.ui.routes import router
from titus.master.ui.sessions import SessionBook

SIGNIN_PER_SEC, SIGNIN_BURST = 1.0, 10
STATIC = StaticFiles(packages=[("titus.master.ui", "static")])


def install_ui(app: FastAPI) -> None:
    """Add the web UI and the API docs to ``app`` (the session book on ``app.state``)."""
    app.state.sessions = SessionBook()
    # sign-in attempts per client address: a token cannot be guessed by trying many
    app.state.signin_rate = SubmitRate(SIGNIN_PER_SEC, SIGNIN_BURST)
    app.include_router(router)
    app.mount("/ui/static", STATIC, name="ui-static")
    install_docs(app)


__all__ = ["SecurityHeaders", "install_ui"]
