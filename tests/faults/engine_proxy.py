"""A socket proxy in front of the Docker engine that a test can close and reopen.

Point a docker client at :attr:`EngineProxy.url` (``unix://...``). While the proxy is open it
copies bytes both ways between each client connection and the engine's own socket; closing it
(:meth:`EngineProxy.close`) removes the listening socket, so new connections are refused as by
an engine that is down, and cuts every open connection (event streams, log followers, requests
in flight). :meth:`EngineProxy.reopen` listens again at the same path. Containers themselves
are untouched: only the way to the engine is cut, as when dockerd restarts or hangs.
"""
from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from typing import Iterator

DEFAULT_ENGINE = "/var/run/docker.sock"


class EngineProxy:
    """Unix-socket proxy to ``engine`` (a unix socket path), listening at ``path`` (a fresh
    temporary path by default). Use as a context manager, or call :meth:`start` and
    :meth:`stop`. Thread-safe; ``close``/``reopen`` may be called from any thread."""

    def __init__(self, engine: str = DEFAULT_ENGINE, path: str | None = None):
        self.engine = engine
        self._dir = None if path else tempfile.mkdtemp(prefix="titus-engine-proxy-")
        self.path = path or os.path.join(self._dir, "docker.sock")
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self.connections = 0  # accepted since start, for tests that want to see traffic
        self.cuts = 0  # connections cut by close()

    @property
    def url(self) -> str:
        """The base URL for a docker client: ``unix:///...``."""
        return "unix://" + self.path

    @property
    def is_open(self) -> bool:
        """Whether the proxy accepts connections now."""
        return self._listener is not None

    def start(self) -> "EngineProxy":
        """Begin listening (the engine is reachable through the proxy)."""
        self.reopen()
        return self

    def reopen(self) -> None:
        """Listen again after :meth:`close` (no-op while open)."""
        with self._lock:
            if self._listener is not None:
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.path)
            listener.listen(256)
            self._listener = listener
            self._accepting = threading.Thread(target=self._accept, args=(listener,),
                                               name="engine-proxy-accept", daemon=True)
            self._accepting.start()

    def close(self) -> None:
        """Make the engine unreachable: refuse new connections and cut the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
            if listener is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)  # new connections: ENOENT, like a stopped dockerd
                with contextlib.suppress(OSError):
                    listener.shutdown(socket.SHUT_RDWR)
                listener.close()
        for conn in conns:
            self.cuts += 1
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self) -> None:
        """Close for good and remove the temporary directory."""
        self.close()
        if self._dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._dir)

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """``with proxy.outage(): ...``: the engine is unreachable inside the block."""
        self.close()
        try:
            yield
        finally:
            self.reopen()

    def outage_for(self, seconds: float) -> threading.Thread:
        """Close now and reopen after ``seconds`` in the background; returns the thread."""
        self.close()

        def later() -> None:
            time.sleep(seconds)
            self.reopen()

        thread = threading.Thread(target=later, name="engine-proxy-outage", daemon=True)
        thread.start()
        return thread

    def __enter__(self) -> "EngineProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- plumbing -------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.engine)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # closed meanwhile
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), name="engine-proxy-pump",
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # one side ending ends the connection: docker's HTTP never half-closes
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()
