"""A minimal HTTP/1.1 server on asyncio: keep-alive, Content-Length bodies, two routes.

Why not a framework: SageMaker's contract is two routes, and every microsecond a framework spends routing,
building request objects and running middleware is added to each prediction (the budget is 0.1 ms over the
model). The model runs inline on the event loop: one process answers one request at a time, as a
gunicorn sync worker would, without a thread hand-off per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any, Final, cast

from inference.model import Model, ModelFault
from inference.payload import PayloadError, encode, media_type, render
from inference.quality import PredictionHealth

# SageMaker real-time endpoints accept request bodies up to 6 MB (InvokeEndpoint's limit).
MAX_BODY: Final = 6 * 1024 * 1024
MAX_HEAD: Final = 64 * 1024
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}

log = logging.getLogger("serve")


def response(status: int, body: bytes, content_type: str, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"{'' if keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n"
    )
    return head.encode("latin-1") + body


def error(status: int, problem: PayloadError | str, keep_alive: bool) -> bytes:
    document: dict[str, Any] = problem.body() if isinstance(problem, PayloadError) else {"error": problem}
    return response(status, json.dumps(document).encode(), "application/json", keep_alive)


class Invocations:
    """The application: request (method, path, headers, body) → response bytes."""

    def __init__(self, model: Model, health: PredictionHealth | None = None) -> None:
        self.model = model
        self.health = health or PredictionHealth(model.objective, None, "")

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, keep_alive: bool) -> bytes:
        path = path.split("?", 1)[0]
        if path == "/invocations":
            if method != "POST":
                return error(405, "use POST for /invocations", keep_alive)
            return self.invoke(headers, body, keep_alive)
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                return error(405, "use GET for /ping", keep_alive)
            # The model is loaded before the socket listens: answering at all means ready.
            return response(200, b"{}", "application/json", keep_alive)
        return error(
            404, f"no route {path}: the container serves GET /ping and POST /invocations", keep_alive
        )

    def invoke(self, headers: dict[str, str], body: bytes, keep_alive: bool) -> bytes:
        model = self.model
        try:
            matrix = encode(body, media_type(headers.get("content-type")), model.features, model.encoder)
            scores = model.predict(matrix)
            self.health.observe(scores)
            payload, content_type = render(scores, media_type(headers.get("accept")))
        except PayloadError as exc:
            return error(exc.status, exc, keep_alive)
        except ModelFault as exc:
            return error(500, str(exc), keep_alive)
        except Exception as exc:  # a real fault: the caller's payload was valid
            log.exception("invocation failed")
            return error(500, f"prediction failed: {type(exc).__name__}: {exc}", keep_alive)
        return response(200, payload, content_type, keep_alive)


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers (names lower-cased); ValueError for a malformed request line."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ValueError(f"malformed request line {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


class Connection(asyncio.Protocol):
    def __init__(self, app: Invocations) -> None:
        self.app = app
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        # Bytes of a refused body still to arrive: read and dropped, so the caller sees the answer rather
        # than a reset connection while it is still sending.
        self.discard = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.discard:
            self.discard = max(0, self.discard - len(data))
            if not self.discard and self.transport is not None:
                self.transport.close()
                self.transport = None
            return
        self.buffer += data
        while self.transport is not None and self._one_request():
            pass

    def _reject(self, status: int, message: str) -> bool:
        """Answer and close: after a bad head or an oversized body the stream cannot be re-synchronized."""
        assert self.transport is not None
        self.transport.write(error(status, message, keep_alive=False))
        self.transport.close()
        self.transport = None
        self.buffer.clear()
        return False

    def _too_large(self, length: int, received: int) -> bool:
        assert self.transport is not None
        message = f"request body of {length} bytes is over the 6 MB limit ({MAX_BODY} bytes)"
        self.transport.write(error(413, message, keep_alive=False))
        self.discard = max(0, length - received)
        self.buffer.clear()
        if not self.discard:
            self.transport.close()
            self.transport = None
        return False

    def _one_request(self) -> bool:
        """Handle one complete request from the buffer; False when more bytes are needed."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                return self._reject(431, "request head too large")
            return False
        try:
            method, target, version, headers = parse_head(bytes(self.buffer[:end]))
        except ValueError as exc:
            return self._reject(400, str(exc))
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._reject(411, "chunked bodies are not supported: send Content-Length")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            return self._reject(400, "Content-Length is not a number")
        if length > MAX_BODY:
            return self._too_large(length, received=len(self.buffer) - end - 4)
        start = end + 4
        if len(self.buffer) < start + length:
            return False
        body = bytes(self.buffer[start : start + length])
        del self.buffer[: start + length]
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        assert self.transport is not None
        self.transport.write(self.app.handle(method, target, headers, body, keep_alive))
        if not keep_alive:
            self.transport.close()
            self.transport = None
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve_forever(app: Invocations, host: str, port: int, ready: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(app), host, port, reuse_address=True, backlog=1024)
    log.info("serving on %s:%d", host, port)
    if ready is not None:
        ready.set()
    async with server:
        await server.serve_forever()
