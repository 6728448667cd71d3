"""The agent's own small HTTP server: task logs for the master (and, on docker hosts, the
container metadata service, mounted as an extra router).

``create_app(runtime, extra_routers=[...])`` builds the FastAPI app; :class:`AgentServer`
runs it with uvicorn in a background thread on a chosen or free port and knows its base URL.
"""
from __future__ import annotations

import socket
import threading
from typing import Iterable, Iterator, Optional

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import StreamingResponse

from titus.agent.runtime import Runtime


def logs_router(runtime: Runtime) -> APIRouter:
    """``GET /tasks/{task_id}/logs?follow=0|1``: the task's output from ``runtime.logs``."""
    router = APIRouter()

    @router.get("/tasks/{task_id}/logs")
    def task_logs(task_id: str, follow: int = Query(0, ge=0, le=1)) -> StreamingResponse:
        """Stream a task's stdout/stderr; with ``follow=1`` until the task ends."""
        try:
            chunks: Iterator[bytes] = iter(runtime.logs(task_id, follow=bool(follow)))
            first = next(chunks, b"")  # surface "unknown task" before the response starts
        except KeyError:
            raise HTTPException(status_code=404, detail={"error": "unknown task",
                                                         "task_id": task_id}) from None

        def body() -> Iterator[bytes]:
            yield first
            yield from chunks

        return StreamingResponse(body(), media_type="text/plain; charset=utf-8")

    return router


def create_app(runtime: Runtime, extra_routers: Iterable[APIRouter] = (),
               agent_id: str = "") -> FastAPI:
    """The agent app: health, task logs, and any ``extra_routers`` (e.g. metadata service)."""
    app = FastAPI(title="titus agent", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness: which agent and runtime answer here."""
        return {"status": "ok", "agent_id": agent_id, "runtime": runtime.name}

    app.include_router(logs_router(runtime))
    for router in extra_routers:
        app.include_router(router)
    return app


class AgentServer:
    """Serve an app with uvicorn in a daemon thread; ``port=0`` picks a free port.

    The socket is bound at construction, so ``url`` is known before the app is built
    (the docker runtime needs it for its metadata service).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 advertise_url: Optional[str] = None):
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                     socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.url = (advertise_url or f"http://{shown_host}:{self.port}").rstrip("/")
        self._server: Optional[uvicorn.Server] = None
        self._thread: Optional[threading.Thread] = None

    def start(self, app: FastAPI) -> "AgentServer":
        """Start serving ``app`` in the background; returns self."""
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]},
                                        name="agent-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._socket.close()
