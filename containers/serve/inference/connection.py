"""One client connection: HTTP/1.1 framing by llhttp (through httptools), keep-alive, pipelining in order.

Why llhttp: Node's parser, fuzzed and strict by default (RFC 9112): a signed, repeated or malformed
Content-Length, whitespace before a colon, a Transfer-Encoding other than chunked, Content-Length beside
Transfer-Encoding, a header line without a colon, control bytes and bare LF line ends are all errors, so a
request is never framed two ways (request smuggling). It parses a head in microseconds.

What the parser does not bound, this class does: the head's size (431), the body's (413), and time, with
deadlines a sweeper in `server.serve_forever` enforces: a keep-alive connection idle for `idle_s` is closed,
a head not complete `head_s` after its first byte or a body that stalls for `read_s` (or is not complete
`body_s` after its head) is answered 408 and closed. Bodies over `Limits.off_loop_bytes` are scored on a
worker thread while this connection stops reading, so /ping on other connections keeps answering.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

import httptools

from inference.limits import Limits
from inference.responses import CONTINUE, error

if TYPE_CHECKING:
    from inference.server import Invocations, Outcome

log = logging.getLogger("serve")
# The longest a connection is read (and the bytes dropped) after its last answer.
LINGER_S: Final = 2.0


class Refused(Exception):
    """A request answered with an error, after which the connection closes: its framing cannot be trusted,
    or its body is not read."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Stop(Exception):
    """Raised in a parser callback once the connection is closing: the rest of the bytes are not parsed."""


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class Connection(asyncio.Protocol):
    def __init__(self, app: Invocations, limits: Limits, open_: set[Connection], executor: Executor) -> None:
        self.app = app
        self.limits = limits
        self.open = open_
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: deque[Request] = deque()
        # A request is being scored on the worker thread: later ones wait, reading is paused.
        self.busy = False
        self.write_paused = False
        # The last answer, written once the requests before it are answered; then the connection closes.
        self.closing: bytes | None = None
        self.refused: Refused | None = None
        # After the last answer: reading and dropping until the caller closes or the deadline (`_linger`).
        self.lingering = False
        self.lingered = 0
        # The request being parsed.
        self.target = b""
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.head_size = 0
        self.unparsed_head = 0
        self.in_head = False
        self.in_body = False
        self.draining = False  # the body of a 413: read and dropped, then close
        self.body_deadline = 0.0
        # When the sweeper closes the connection (loop time), unless it is busy.
        self.deadline = 0.0

    # --- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.deadline = self.loop.time() + self.limits.idle_s
        self.open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.queue.clear()
        self.chunks = []
        self.open.discard(self)

    def eof_received(self) -> bool | None:
        if self.busy and not self.lingering:
            # The caller has sent all it will: its batch is still answered (half-closed), then it closes.
            self.closing = self.closing or b""
            return True
        return None  # asyncio closes the transport

    def pause_writing(self) -> None:
        # The caller is not reading its answers: stop reading its requests, so nothing piles up here.
        self.write_paused = True
        self.deadline = self.loop.time() + self.limits.read_s
        self._reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.in_body:
            self.deadline = min(self.body_deadline, self.loop.time() + self.limits.read_s)
        elif not self.in_head and not self.lingering:
            self.deadline = self.loop.time() + self.limits.idle_s
        self._reading()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self.lingered += len(data)
            if self.lingered > self.limits.max_body:
                self._close()
            return
        if self.transport is None or self.closing is not None:
            return
        if not self.in_body:
            self.unparsed_head += len(data)
        self._parse(data)
        if self.transport is None:
            return
        if self.in_head and self.unparsed_head > self.limits.max_head:
            self._refuse(Refused(431, f"request head over {self.limits.max_head} bytes"))
        elif self.in_body:
            self.deadline = min(self.body_deadline, self.loop.time() + self.limits.read_s)
        self._answer()

    def _parse(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade and CONNECT are not served: the requests so far are answered, then it closes.
            self.closing = self.closing or b""
        except httptools.HttpParserCallbackError as exc:
            if self.refused is not None:
                self._refuse(self.refused)
            elif not isinstance(exc.__context__, _Stop):
                log.error("request parsing failed", exc_info=exc.__context__ or exc)
                self._refuse(Refused(500, "the server failed to read the request"))
        except httptools.HttpParserError as exc:
            self._refuse(Refused(400, f"malformed HTTP request: {exc}"))

    # --- llhttp callbacks ---------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.transport is None or self.closing is not None:
            raise _Stop
        self.in_head = True
        self.target = b""
        self.headers = {}
        self.chunks = []
        self.head_size = 0
        self.deadline = self.loop.time() + self.limits.head_s

    def on_url(self, url: bytes) -> None:
        self.target += url
        self._head_grew(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_grew(len(name) + len(value) + 4)
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").strip()
        if key in self.headers:
            if key == "host":
                self._raise(Refused(400, "more than one Host header"))
            self.headers[key] += ", " + text
        else:
            self.headers[key] = text

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.unparsed_head = 0
        headers = self.headers
        version = self.parser.get_http_version()
        if version not in ("1.1", "1.0"):
            # 400, not 505: a caller's mistake must not count in the endpoint's 5xx alarm.
            self._raise(Refused(400, f"HTTP/{version} is not supported: send HTTP/1.1"))
        if version == "1.1" and "host" not in headers:
            self._raise(Refused(400, "an HTTP/1.1 request needs a Host header (RFC 9112)"))
        if "transfer-encoding" in headers:
            self._raise(Refused(411, "chunked bodies are not supported: send Content-Length"))
        # llhttp has checked it is one run of digits.
        length = int(headers.get("content-length", "0"))
        expect = headers.get("expect")
        if expect is not None and expect.lower() != "100-continue":
            self._raise(Refused(417, f"Expect: {expect[:100]} is not supported (only 100-continue)"))
        quiet = not self.queue and not self.busy  # nothing is owed an answer before this request's
        if length > self.limits.max_body:
            message = f"request body of {length} bytes is over the 6 MB limit ({self.limits.max_body} bytes)"
            if expect is not None or not quiet:
                self._raise(Refused(413, message))
            # Answered now; the body is read and dropped, so the caller sees the answer rather than a reset
            # connection while it is still sending.
            assert self.transport is not None
            self.transport.write(error(413, message, keep_alive=False))
            self.draining = True
        elif expect is not None and length and quiet and version == "1.1":
            assert self.transport is not None
            self.transport.write(CONTINUE)
        self.in_body = length > 0
        if self.in_body:
            now = self.loop.time()
            self.body_deadline = now + self.limits.body_s
            self.deadline = min(self.body_deadline, now + self.limits.read_s)

    def on_body(self, body: bytes) -> None:
        if not self.draining:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.in_body = False
        if self.draining:
            self._close()
            raise _Stop
        self.queue.append(
            Request(
                self.parser.get_method().decode("ascii"),
                self.target.decode("latin-1"),
                self.headers,
                b"".join(self.chunks),
                self.parser.should_keep_alive(),
            )
        )
        self.chunks = []

    # --- answering ----------------------------------------------------------------------------------------

    def _answer(self) -> None:
        """Answer the parsed requests in order; a large invocation goes to the worker thread."""
        while self.queue and not self.busy and self.transport is not None:
            request = self.queue.popleft()
            if len(request.body) > self.limits.off_loop_bytes and self.app.is_invocation(request):
                self.busy = True
                self._reading()
                future = self.loop.run_in_executor(
                    self.executor, self.app.compute_batch, request.headers, request.body
                )
                future.add_done_callback(functools.partial(self._scored, keep_alive=request.keep_alive))
                return
            answer = self.app.handle(request)
            if request.method == "HEAD":  # the head of the answer GET would get, no body (RFC 9110)
                answer = answer[: answer.index(b"\r\n\r\n") + 4]
            self._send(answer, request.keep_alive)
        if self.transport is None or self.busy or self.lingering:
            return
        if self.closing is not None:
            if self.closing:
                self._linger(self.closing)
            else:
                self._close()
        elif not self.in_head and not self.in_body:
            self.deadline = self.loop.time() + self.limits.idle_s

    def _scored(self, done: asyncio.Future[Outcome], keep_alive: bool) -> None:
        self.busy = False
        if self.transport is None:
            return
        try:
            answer = self.app.finish(done.result(), keep_alive)
        except Exception:  # compute answers every failure itself: this is a bug of ours
            log.exception("invocation failed")
            answer = error(500, "prediction failed", keep_alive)
        self._send(answer, keep_alive)
        self._reading()
        self._answer()

    def _send(self, answer: bytes, keep_alive: bool) -> None:
        assert self.transport is not None
        if keep_alive:
            self.transport.write(answer)
        else:
            self._linger(answer)

    def _head_grew(self, size: int) -> None:
        self.head_size += size
        if self.head_size > self.limits.max_head:
            self._raise(Refused(431, f"request head over {self.limits.max_head} bytes"))

    def _raise(self, refusal: Refused) -> None:
        self.refused = refusal
        raise refusal

    def _refuse(self, refusal: Refused) -> None:
        """Answer once the earlier requests are answered, then close: the stream cannot be re-synchronized."""
        self.refused = None
        self.in_head = self.in_body = False
        self.chunks = []
        if self.closing is None:
            self.closing = error(refusal.status, refusal.message, keep_alive=False)
        self._reading()

    def _reading(self) -> None:
        if self.transport is None:
            return
        if not self.lingering and (self.busy or self.write_paused or self.closing is not None):
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _linger(self, answer: bytes) -> None:
        """The last answer, then a lingering close: the caller may still be sending, and closing a socket
        with unread bytes sends a reset that can destroy the answer before the caller reads it. So the
        write side is shut (FIN after the answer) and what still arrives is read and dropped, for
        `LINGER_S` at most, then the connection closes."""
        assert self.transport is not None
        self.transport.write(answer)
        self.queue.clear()
        self.chunks = []
        self.in_head = self.in_body = False
        if not self.transport.can_write_eof():
            self._close()
            return
        self.transport.write_eof()
        self.lingering = True
        self.deadline = self.loop.time() + min(LINGER_S, self.limits.read_s)
        self.transport.resume_reading()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.queue.clear()
        self.open.discard(self)

    def expire(self) -> None:
        """The deadline passed: a request in progress is answered 408; an idle connection just closes."""
        if self.transport is None:
            return
        if not self.lingering and (self.in_head or (self.in_body and not self.draining)):
            part = "head" if self.in_head else "body"
            self._linger(error(408, f"timed out waiting for the request {part}", keep_alive=False))
        else:
            self._close()
