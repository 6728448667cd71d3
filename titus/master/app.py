"""The master's FastAPI application: where the control plane is composed.

``create_app(settings)`` opens the store, rebuilds the master from it and builds the
autoscaler beside it; while the app is up (its lifespan) the scheduling loop and the
autoscaler run as peers, each talking to the master through its methods. OpenAPI is at
``/openapi.json``, metrics at ``/metrics``, liveness at ``/health`` and readiness at
``/health/ready``.
"""
from __future__ import annotations

import asyncio
import gc
import os
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import Depends, FastAPI
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
from titus.master.api.agents import agent_pool
from titus.master.api.deps import utf8_path
from titus.master.api.admission import Admission, AdmissionStats
from titus.master.api.forward import Forwarding
from titus.master.lag import METER
from titus.master.master import Master
from titus.master.node import LEADER, FixedNode, Node
from titus.master.store import Store
from titus.master.ui import SecurityHeaders, install_ui

GC_THRESHOLD = (100_000, 50, 1000)


def tune_gc() -> None:
    """A master holds millions of small long-lived objects: full cyclic collections over all
    of them would stall scheduling rounds (and cost a third of its CPU under load), so the
    young generation is collected less often. Once per process, before any master is built."""
    if gc.get_threshold()[0] < GC_THRESHOLD[0]:
        gc.set_threshold(*GC_THRESHOLD)


def build_master(settings: MasterSettings, store: Optional[Store] = None) -> Master:
    """A master on its store, rebuilt from what the store holds."""
    tune_gc()
    master = Master(settings, store or Store(settings.store_url))
    master.recover()
    return master


def build_autoscaler(master: Master) -> AutoscaleService:
    """The autoscaler of ``master``: provider and interval from ``TITUS_AUTOSCALE_*``."""
    interval = float(os.environ.get("TITUS_AUTOSCALE_INTERVAL_SEC", "5"))
    return AutoscaleService(master, provider_from_env(master.settings), interval_sec=interval)


def create_app(settings: Optional[MasterSettings] = None, master: Optional[Master] = None,
               start_loop: bool = True) -> FastAPI:
    """The REST application of a master.

    With ``settings`` the app takes part in leader election on its store
    (:class:`~titus.master.node.Node`): it leads, or serves reads as a standby and forwards
    writes. With ``master`` (tests, tools) that master always leads. ``start_loop`` False
    keeps the scheduling loop from running (the API alone)."""
    tune_gc()
    if master is not None:
        settings = master.settings
    settings = settings or MasterSettings.from_env()
    app = FastAPI(title="Titus master", version="0.1.0",
                  default_response_class=SafeJSONResponse, openapi_url=None, docs_url=None,
                  redoc_url=None, dependencies=[Depends(utf8_path)],
                  description="Titus control plane: jobs, tasks, agents, capacity groups.")

    def services(m: Master) -> list:
        """What runs beside a leading master; the app's handles on them follow each term."""
        if getattr(app.state.autoscale, "master", None) is not m:  # built once per master
            app.state.autoscale = build_autoscaler(m)
        app.state.loop = m.loop() if start_loop else None
        return [s for s in (app.state.loop, app.state.autoscale) if s is not None]

    node = FixedNode(master, services) if master is not None else Node(
        settings, make_services=services)
    node.on_master.append(lambda m: setattr(app.state, "master", m))
    node.begin()
    app.state.node = node
    app.state.master = node.master
    app.state.loop = None
    # routers need it before the app serves; a standby has none (instance groups are the
    # leader's, forwarded), and services() reuses this one for the same master
    app.state.autoscale = build_autoscaler(node.master) if node.role == LEADER else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        METER.start()  # the master's own lag: never taken for an agent's silence
        watcher = asyncio.get_running_loop().create_task(METER.watch_loop())
        node.run()
        try:
            yield
        finally:
            watcher.cancel()
            await run_in_threadpool(node.stop)

    app.router.lifespan_context = lifespan
    s = settings
    app.state.tokens = TokenBook.from_settings(s.user_tokens, s.agent_token, s.token_file)
    app.state.submit_rate = SubmitRate(s.submit_rate_per_sec, s.submit_burst)
    app.state.observe_streams = StreamCap(s.max_observe_streams)
    app.state.log_streams = StreamCap(s.max_observe_streams, "task log")
    app.state.agent_pool = agent_pool()
    app.state.admission = AdmissionStats()
    install_error_handlers(app)
    autoscale_metrics.register_into(install_metrics(app, node, app.state.admission))
    for router in ROUTERS:
        app.include_router(router)
    install_schemas(app)
    install_docs(app)
    install_ui(app)  # the web UI at /, the offline /docs and /redoc
    install_health(app, node)
    book = app.state.tokens
    app.add_middleware(Forwarding, node_of=lambda: node,
                       body_bytes=s.input.max_body_bytes,
                       verify=s.agent_ca or True,
                       known=lambda token: not book.enabled or book.lookup(token) is not None)
    # added last, so outermost: a refused request costs neither forwarding nor a thread
    app.add_middleware(Admission, limit=s.max_inflight_requests, queue=s.admission_queue,
                       wait_sec=s.admission_wait_sec, stats=app.state.admission,
                       node_of=lambda: node)
    app.add_middleware(SecurityHeaders)  # nosniff, no framing, the pages' CSP
    return app


def install_docs(app: FastAPI) -> None:
    """``/openapi.json``, behind the ``read`` scope like every other read (its pages,
    ``/docs`` and ``/redoc``, are the web UI's: ``titus.master.ui.docs``)."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_read)])
    def openapi_document():
        return app.openapi()


def install_health(app: FastAPI, node) -> None:
    """``/health`` (liveness: the process answers; its role among masters) and
    ``/health/ready`` (readiness: the store takes writes and the scheduling loop runs)."""

    @app.get("/health", tags=["health"])
    def health():
        """Liveness: always 200 while the process answers. ``role`` (leader, standby or
        starting), ``epoch`` and ``leader`` (its URL) say where writes go; ``store`` is the
        outcome of the latest write (no I/O here), ``loop`` the scheduling loop's state."""
        master = node.master
        return {"status": "ok", **node.health(), "jobs": len(master.jobs),
                "agents": len(master.registry.agents),
                "stalenessMs": _staleness_ms(node),
                "store": master.store.health.wire(), "loop": _loop_state(app)}

    @app.get("/health/ready", tags=["health"], responses=responses(503))
    def ready():
        """Readiness: 200 once a real write to the store (kept: ``meta.ready_probe``) succeeds
        and the scheduling loop runs, or, on a standby, once it holds a copy of the store;
        else 503 in the error shape, with ``Retry-After``."""
        master = node.master
        if node.role != LEADER:
            master.store.ping()  # StoreUnavailable: 503
            return {"status": "ready", **node.health(), "store": master.store.health.wire(),
                    "loop": "standby"}
        if _loop_state(app) == "stopped":
            return error_response(503, "the scheduling loop has stopped; restart the master",
                                  [Problem("(loop)", "the scheduling loop thread is not running")],
                                  headers={"Retry-After": "1"})
        master.ledger.check_writable()  # StoreUnavailable: 503
        return {"status": "ready", "store": master.store.health.wire(),
                "loop": _loop_state(app)}


def _staleness_ms(node) -> Optional[int]:
    stale = node.staleness
    return None if stale == float("inf") else int(stale * 1000)


def _loop_state(app: FastAPI) -> str:
    """``running``, ``backing off`` (the store refuses writes), ``stopped`` or ``not started``."""
    loop = getattr(app.state, "loop", None)
    if loop is None:
        return "not started"
    if not loop.is_alive():
        return "stopped"
    return "backing off" if loop.store_failing else "running"
