"""Running the master as a process: the app under uvicorn, from settings."""
from __future__ import annotations

import logging

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from titus.http_server import HTTP_PROTOCOL
from titus.log_setup import quiet_http_clients
from titus.master.app import create_app
from titus.master.auth import TokenBook, startup_problem
from titus.master.config import MasterSettings
from titus.master.store import StoreInUse
from titus.tls import check_server_files, client_context

log = logging.getLogger("titus.master.server")


class StoreUnavailable(RuntimeError):
    """The store URL cannot be opened (wrong URL, database down, bad credentials)."""


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show it as given
        return repr(url)


def check_tls(settings: MasterSettings) -> dict:
    """uvicorn's TLS arguments for the settings (empty: plain HTTP), once the files are checked.

    Raises :class:`titus.tls.TLSConfigError` for files the master could not use, before the
    store is opened, so a typo is one line of error and not a traceback from inside uvicorn.
    """
    for warning in check_server_files(settings.tls_cert, settings.tls_key):
        log.warning("%s", warning)
    if settings.agent_ca:
        client_context(settings.agent_ca)  # the task-log fetch would fail on it later
    if not settings.tls_cert:
        return {}
    return {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}


class AuthConfigError(ValueError):
    """The master's tokens would leave it open, or agents unable to join."""


def check_auth(settings: MasterSettings) -> None:
    """:class:`AuthConfigError` unless the tokens make a usable master (or ``insecure``)."""
    try:
        book = TokenBook.from_settings(settings.user_tokens, settings.agent_token,
                                       settings.token_file)
    except ValueError as exc:
        raise AuthConfigError(str(exc)) from None
    problem = startup_problem(book, settings.insecure)
    if problem:
        raise AuthConfigError(f"the master will not start: {problem}")
    if not book.enabled:
        log.warning("no token is configured (--insecure): every caller may do everything")


def serve(settings: MasterSettings, log_level: str = "info") -> None:
    """Open the store, rebuild the master from it, and serve until interrupted.

    Raises :class:`titus.tls.TLSConfigError` (unusable TLS files) and :class:`StoreUnavailable`.
    """
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_http_clients(log_level)
    tls = check_tls(settings)
    check_auth(settings)
    try:
        app = create_app(settings)
    except StoreInUse as exc:
        raise StoreUnavailable(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot open the store {_redact(settings.store_url)}: "
                               f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    master, node = app.state.master, app.state.node
    if settings.bind in ("0.0.0.0", "::", "") and not settings.advertise_url \
            and master.store.dialect == "postgresql":
        log.warning("listening on all addresses without --advertise-url: other masters and "
                    "agents are sent to %s, which only this machine can reach", settings.own_url)
    log.info("titus master on %s://%s:%d (store %s, %s in epoch %d, %d jobs, %d tasks)",
                "https" if tls else "http", settings.bind, settings.port, master.store.dialect,
                node.role, node.epoch, len(master.jobs), len(master.tasks))
    try:
        # proxy_headers off: X-Forwarded-For must never stand in for an agent's source address
        uvicorn.run(app, host=settings.bind, port=settings.port, log_level=log_level,
                    proxy_headers=False, http=HTTP_PROTOCOL,  # request heads bounded
                    access_log=False, timeout_keep_alive=60, **tls)
    finally:
        node.resign()  # a clean stop hands the lease over at once
