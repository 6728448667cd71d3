"""The agent's own small HTTP server: task logs for the master (and, on docker hosts, the
container metadata service, mounted as an extra router).

``create_app(runtime, extra_routers=[...])`` builds the FastAPI app; :class:`AgentServer`
runs it with uvicorn in a background thread on a chosen or free port and knows its base URL.

Task logs are read only with the cluster's log token, which every master holds and presents
(``Authorization: Bearer ...``); the agent learns it when it registers (:class:`LogGate`).
Containers on the same host reach this server too (the metadata service): they must not read
the logs of other tasks.
"""
from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from typing import Iterable, Iterator, Optional

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from titus.agent.runtime import Runtime
from titus.http_server import HTTP_PROTOCOL


class LogGate:
    """Who may read task logs: holders of the log token, once the agent has one (before its
    first registration with a master that has tokens, the gate is open)."""

    def __init__(self) -> None:
        self._sha256: Optional[bytes] = None
        self._lock = threading.Lock()

    def set(self, token: Optional[str]) -> None:
        """Require ``token`` from now on (None: leave the gate as it is)."""
        if token:
            with self._lock:
                self._sha256 = _sha256(token)

    @property
    def closed(self) -> bool:
        """Whether a token is required."""
        return self._sha256 is not None

    def allows(self, authorization: Optional[str]) -> bool:
        """Whether a request with this ``Authorization`` header may read logs."""
        with self._lock:
            wanted = self._sha256
        if wanted is None:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        presented = _sha256(token.strip()) if scheme.lower() == "bearer" else b""
        return hmac.compare_digest(presented, wanted)


def _sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


_GATES: dict[str, LogGate] = {}
_GATES_LOCK = threading.Lock()


def log_gate(agent_id: str) -> LogGate:
    """The log gate of agent ``agent_id`` in this process: its loop
    (:class:`~titus.agent.agent.Agent`) sets the token, its server checks it."""
    with _GATES_LOCK:
        return _GATES.setdefault(agent_id, LogGate())


def logs_router(runtime: Runtime, gate: Optional[LogGate] = None) -> APIRouter:
    """``GET /tasks/{task_id}/logs?follow=0|1``: the task's output from ``runtime.logs``,
    for callers ``gate`` lets in (401 otherwise; no gate: everyone)."""
    router = APIRouter()

    @router.get("/tasks/{task_id}/logs")
    def task_logs(request: Request, task_id: str,
                  follow: int = Query(0, ge=0, le=1)) -> StreamingResponse:
        """Stream a task's stdout/stderr; with ``follow=1`` until the task ends."""
        if gate is not None and not gate.allows(request.headers.get("authorization")):
            raise HTTPException(status_code=401, detail={"error": "the log token is required"},
                                headers={"WWW-Authenticate": "Bearer"})
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
               agent_id: str = "", gate: Optional[LogGate] = None) -> FastAPI:
    """The agent app: health, task logs, and any ``extra_routers`` (e.g. metadata service).
    Log reads pass ``gate`` (by default the agent's own, :func:`log_gate`)."""
    app = FastAPI(title="titus agent", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness: which agent and runtime answer here."""
        return {"status": "ok", "agent_id": agent_id, "runtime": runtime.name}

    app.include_router(logs_router(runtime, gate if gate is not None else log_gate(agent_id)))
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
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                http=HTTP_PROTOCOL)  # request heads bounded
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
