"""The HTTP protocol the master's and the agents' servers run: uvicorn's, with the request
head bounded.

uvicorn's fast parser (httptools) reads a request line and its headers whole, however large,
before the application sees anything: an anonymous client that sends a 40 MB header (or one
that never ends) holds that much of the server's memory, before any token is checked. Here the
head of each request (request line and headers) is bounded by :data:`MAX_HEAD_BYTES`: past it,
the server answers 431 in the one error shape (docs/limits.md) and closes the connection,
having read at most one network read more. Bodies are bounded by the application
(``titus.master.api.deps.read_body``).

``HTTP_PROTOCOL`` is what to give ``uvicorn.Config(http=...)``: this bounded protocol when
httptools is installed, else ``"h11"``, whose parser has its own bound (16 KiB).
"""
from __future__ import annotations

import json

MAX_HEAD_BYTES = 64 * 1024  # request line and headers: a token, an id, a few proxies' headers

_ANSWER = json.dumps({"error": "request headers too large", "problems": [
    {"field": "(headers)", "message": f"the request line and headers are more than "
                                      f"{MAX_HEAD_BYTES} bytes"}]}).encode()

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's h11 protocol bounds the head itself
    HTTP_PROTOCOL: object = "h11"
else:
    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing a request head over ``MAX_HEAD_BYTES``."""

        _in_head = True  # until the first request's headers are complete
        _head_bytes = 0

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes = True, 0

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            # fed first: a read that completes the head may carry body bytes, which count
            # against the body's bound, not this one
            super().data_received(data)
            if not self._in_head or self.transport.is_closing():
                return
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                    b"content-type: application/json\r\n"
                    b"content-length: " + str(len(_ANSWER)).encode() + b"\r\n"
                    b"connection: close\r\n\r\n" + _ANSWER)
                self.transport.close()

    HTTP_PROTOCOL = BoundedHttpToolsProtocol
