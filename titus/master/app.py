"""The master's FastAPI application.

``create_app(settings)`` opens the store, rebuilds the master from it, and (unless
``start_loop=False``) runs the scheduling loop while the app is up. OpenAPI is at
``/openapi.json``, metrics at ``/metrics``.
"""
from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI

from titus.master.api import ROUTERS
from titus.master.api.deps import install_error_handlers
from titus.master.api.metrics import install_metrics
from titus.master.api.schemas import install_schemas
from titus.master.config import MasterSettings
from titus.master.loop import MasterLoop
from titus.master.master import Master
from titus.master.recovery import recover
from titus.master.store import Store

GC_THRESHOLD = (100_000, 50, 1000)


def build_master(settings: MasterSettings, store: Optional[Store] = None) -> Master:
    """A master on its store, rebuilt from what the store holds."""
    # A master holds millions of small long-lived objects: full cyclic collections over all
    # of them would stall scheduling rounds, so collect the young generation less often.
    if gc.get_threshold()[0] < GC_THRESHOLD[0]:
        gc.set_threshold(*GC_THRESHOLD)
    master = Master(settings, store or Store(settings.store_url))
    recover(master)
    return master


def create_app(settings: Optional[MasterSettings] = None, master: Optional[Master] = None,
               start_loop: bool = True) -> FastAPI:
    """The REST application of a master (built from ``settings`` unless one is given)."""
    settings = settings or (master.settings if master else MasterSettings.from_env())
    master = master or build_master(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = MasterLoop(master) if start_loop else None
        if loop is not None:
            loop.start()
        app.state.loop = loop
        try:
            yield
        finally:
            if loop is not None:
                loop.stop()

    app = FastAPI(title="Titus master", version="0.1.0", lifespan=lifespan,
                  description="Titus control plane: jobs, tasks, agents, capacity groups.")
    app.state.master = master
    install_error_handlers(app)
    install_metrics(app, master)
    for router in ROUTERS:
        app.include_router(router)
    install_schemas(app)

    @app.get("/health", tags=["health"])
    def health():
        """Liveness: the store answers."""
        master.store.ping()
        return {"status": "ok", "jobs": len(master.jobs), "agents": len(master.registry.agents)}

    return app
