"""A master served by uvicorn on a loopback port in this process: real HTTP, real sockets,
and a restart on the same store (for checks that a store is still served after a restart)."""
from __future__ import annotations

import threading
import time
from typing import Optional

import httpx
import uvicorn

from titus.http_server import HTTP_PROTOCOL
from titus.master.app import create_app
from titus.master.config import MasterSettings


class LiveMaster:
    """``with LiveMaster(settings) as live: live.http.get(...)``; ``live.restart()``."""

    def __init__(self, settings: MasterSettings, start_loop: bool = False):
        self.settings = settings
        self.start_loop = start_loop
        self.server: Optional[uvicorn.Server] = None
        self.thread: Optional[threading.Thread] = None
        self.http: Optional[httpx.Client] = None
        self.app = None

    @property
    def master(self):
        """The master object behind the server (for scripted agents)."""
        return self.app.state.master

    def start(self) -> "LiveMaster":
        self.app = create_app(self.settings, start_loop=self.start_loop)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="error",
                                access_log=False, lifespan="on", proxy_headers=False,
                                http=HTTP_PROTOCOL)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the master did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        return self

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(timeout=20)
            self.app.state.node.resign()  # as `titus master` does on a clean stop
            self.master.store.close()
        self.server = self.thread = self.http = None

    def restart(self) -> None:
        """Stop, then build a new master from the same store and serve it."""
        self.stop()
        self.start()

    def __enter__(self) -> "LiveMaster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
