"""The master's FastAPI application: where the control plane is composed.

``create_app(settings)`` opens the store, rebuilds the master from it and builds the
autoscaler beside it; while the app is up (its lifespan) the scheduling loop and the
autoscaler run as peers, each talking to the master through its methods. OpenAPI is at
``/openapi.json``, metrics at ``/metrics``, liveness at ``/health`` and readiness at
``/health/ready``.
"""
from __future__ import annotations

import gc
import os
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.concurrency import run_in_threadpool

from titus.autoscale import metrics as autoscale_metrics
from titus.autoscale.service import AutoscaleService, provider_from_env
from titus.boundary import Problem
from titus.master.api import ROUTERS
from titus.master.api.errors import SafeJSONResponse, error_response, install_error_handlers
from titus.master.api.metrics import install_metrics
from titus.master.api.schemas import install_schemas, responses
from titus.master.api.security import StreamCap, SubmitRate, require_read
from titus.master.auth import TokenBook
from titus.master.config import MasterSettings
from titus.master.master import Master
from titus.master.store import Store

GC_THRESHOLD = (100_000, 50, 1000)


def build_master(settings: MasterSettings, store: Optional[Store] = None) -> Master:
    """A master on its store, rebuilt from what the store holds."""
    # A master holds millions of small long-lived objects: full cyclic collections over all
    # of them would stall scheduling rounds, so collect the young generation less often.
    if gc.get_threshold()[0] < GC_THRESHOLD[0]:
        gc.set_threshold(*GC_THRESHOLD)
    master = Master(settings, store or Store(settings.store_url))
    master.recover()
    return master


def build_autoscaler(master: Master) -> AutoscaleService:
    """The autoscaler of ``master``: provider and interval from ``TITUS_AUTOSCALE_*``."""
    interval = float(os.environ.get("TITUS_AUTOSCALE_INTERVAL_SEC", "5"))
    return AutoscaleService(master, provider_from_env(master.settings), interval_sec=interval)


def create_app(settings: Optional[MasterSettings] = None, master: Optional[Master] = None,
               start_loop: bool = True) -> FastAPI:
    """The REST application of a master (built from ``settings`` unless one is given)."""
    settings = settings or (master.settings if master else MasterSettings.from_env())
    master = master or build_master(settings)
    autoscaler = build_autoscaler(master)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = master.loop() if start_loop else None
        if loop is not None:
            loop.start()
        app.state.loop = loop
        autoscaler.start()
        try:
            yield
        finally:
            await run_in_threadpool(autoscaler.stop)
            if loop is not None:
                loop.stop()

    app = FastAPI(title="Titus master", version="0.1.0", lifespan=lifespan,
                  default_response_class=SafeJSONResponse, openapi_url=None, docs_url=None,
                  redoc_url=None,
                  description="Titus control plane: jobs, tasks, agents, capacity groups.")
    app.state.master = master
    s = master.settings
    app.state.tokens = TokenBook.from_settings(s.user_tokens, s.agent_token, s.token_file)
    app.state.submit_rate = SubmitRate(s.submit_rate_per_sec, s.submit_burst)
    app.state.observe_streams = StreamCap(s.max_observe_streams)
    app.state.autoscale = autoscaler
    install_error_handlers(app)
    autoscale_metrics.register_into(install_metrics(app, master))
    for router in ROUTERS:
        app.include_router(router)
    install_schemas(app)
    install_docs(app)
    install_health(app, master)
    return app


def install_docs(app: FastAPI) -> None:
    """``/openapi.json`` and ``/docs``, behind the ``read`` scope like every other read."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_read)])
    def openapi_document():
        return app.openapi()

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_read)])
    def swagger_page():
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)


def install_health(app: FastAPI, master: Master) -> None:
    """``/health`` (liveness: the process answers) and ``/health/ready`` (readiness: the store
    takes writes and the scheduling loop runs)."""

    @app.get("/health", tags=["health"])
    def health():
        """Liveness: always 200 while the process answers. ``store`` is the outcome of the
        latest write (no I/O here), ``loop`` the scheduling loop's state."""
        return {"status": "ok", "jobs": len(master.jobs), "agents": len(master.registry.agents),
                "store": master.store.health.wire(), "loop": _loop_state(app)}

    @app.get("/health/ready", tags=["health"], responses=responses(503))
    def ready():
        """Readiness: 200 once a real write to the store (kept: ``meta.ready_probe``) succeeds
        and the scheduling loop runs; else 503 in the error shape, with ``Retry-After``."""
        if _loop_state(app) == "stopped":
            return error_response(503, "the scheduling loop has stopped; restart the master",
                                  [Problem("(loop)", "the scheduling loop thread is not running")],
                                  headers={"Retry-After": "1"})
        master.ledger.check_writable()  # StoreUnavailable: 503
        return {"status": "ready", "store": master.store.health.wire(),
                "loop": _loop_state(app)}


def _loop_state(app: FastAPI) -> str:
    """``running``, ``backing off`` (the store refuses writes), ``stopped`` or ``not started``."""
    loop = getattr(app.state, "loop", None)
    if loop is None:
        return "not started"
    if not loop.is_alive():
        return "stopped"
    return "backing off" if loop.store_failing else "running"
