"""Running the master as a process: the app under uvicorn, from settings."""
from __future__ import annotations

import logging

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from titus.master.app import create_app
from titus.master.config import MasterSettings

log = logging.getLogger("titus.master.server")


class StoreUnavailable(RuntimeError):
    """The store URL cannot be opened (wrong URL, database down, bad credentials)."""


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show it as given
        return repr(url)


def serve(settings: MasterSettings, log_level: str = "warning") -> None:
    """Open the store, rebuild the master from it, and serve until interrupted."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot open the store {_redact(settings.store_url)}: "
                               f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    master = app.state.master
    log.warning("titus master on http://%s:%d (store %s, %d jobs, %d tasks restored)",
                settings.bind, settings.port, master.store.dialect, len(master.jobs),
                len(master.tasks))
    uvicorn.run(app, host=settings.bind, port=settings.port, log_level=log_level,
                access_log=False, timeout_keep_alive=60)
