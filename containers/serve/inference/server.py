"""The inference server: SageMaker's two routes on asyncio, HTTP framing by llhttp (`inference.connection`).

Why not a framework: SageMaker's contract is two routes, and every microsecond a framework spends routing,
building request objects and running middleware is added to each prediction (the budget is 0.1 ms over the
model). Small requests are scored inline on the event loop: one process answers one request at a time, as a
gunicorn sync worker would, without a thread hand-off per request; large batches go to one worker thread so
that /ping keeps answering while they are decoded.

Every caller mistake is a 4xx with the contract's message (containers/serve/CONTRACT.md); a 5xx means a
fault of ours (or the model's fault hook).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy.typing as npt

from inference.connection import Connection, Request
from inference.limits import MAX_BODY, MAX_HEAD, Limits
from inference.model import Model, ModelFault
from inference.payload import PayloadError, encode, media_type, render
from inference.quality import PredictionHealth
from inference.responses import JSON, error, problem, response

__all__ = ["MAX_BODY", "MAX_HEAD", "Invocations", "Outcome", "serve_forever"]

# (status, body, content type, scores): what an invocation computed; scores only for a 200.
Outcome = tuple[int, bytes, str, "npt.NDArray[Any] | None"]
_PING: Final = b"{}"

log = logging.getLogger("serve")


class Invocations:
    """The application: a parsed request → response bytes."""

    def __init__(self, model: Model, health: PredictionHealth | None = None) -> None:
        self.model = model
        self.health = health or PredictionHealth(model.objective, None, "")

    @staticmethod
    def is_invocation(request: Request) -> bool:
        return request.method == "POST" and request.target.split("?", 1)[0] == "/invocations"

    def handle(self, request: Request) -> bytes:
        keep_alive = request.keep_alive
        path = request.target.split("?", 1)[0]
        if path == "/invocations":
            if request.method != "POST":
                return error(405, "use POST for /invocations", keep_alive)
            return self.finish(self.compute(request.headers, request.body), keep_alive)
        if path == "/ping":
            if request.method not in ("GET", "HEAD"):
                return error(405, "use GET for /ping", keep_alive)
            # The model is loaded before the socket listens: answering at all means ready.
            return response(200, _PING, "application/json", keep_alive)
        return error(
            404, f"no route {path[:200]}: the container serves GET /ping and POST /invocations", keep_alive
        )

    def compute(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        """Encode, predict and render: safe on the worker thread (the prediction health is counted in
        `finish`, on the event loop)."""
        model = self.model
        try:
            matrix = encode(body, media_type(headers.get("content-type")), model.features, model.encoder)
            scores = model.predict(matrix)
            payload, content_type = render(scores, media_type(headers.get("accept")))
        except PayloadError as exc:
            return exc.status, problem(exc), JSON, None
        except ModelFault as exc:
            return 500, problem(str(exc)), JSON, None
        except Exception as exc:  # a real fault: the caller's payload was valid
            log.exception("invocation failed")
            return 500, problem(f"prediction failed: {type(exc).__name__}: {exc}"), JSON, None
        return 200, payload, content_type, scores

    def compute_batch(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        """`compute` for a large batch, on the worker thread. The cyclic garbage collector is held off
        meanwhile: a batch makes hundreds of thousands of objects, and each full collection they trigger
        holds the GIL for up to 0.4 s, which /ping on the event loop would wait for (the batch makes no
        reference cycles; reference counting frees it)."""
        gc.disable()
        try:
            return self.compute(headers, body)
        finally:
            gc.enable()

    def finish(self, outcome: Outcome, keep_alive: bool) -> bytes:
        status, body, content_type, scores = outcome
        if scores is not None:
            self.health.observe(scores)
        return response(status, body, content_type, keep_alive)


async def _sweep(open_: set[Connection], limits: Limits) -> None:
    """Close connections past their deadline (idle, or a request that stalls): one timer for all of them,
    so a request costs an attribute store rather than a timer of its own."""
    loop = asyncio.get_running_loop()
    tick = min(1.0, limits.head_s / 4, limits.read_s / 4, limits.idle_s / 4)
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        for connection in [c for c in open_ if not c.busy and c.deadline < now]:
            connection.expire()


async def serve_forever(
    app: Invocations,
    host: str,
    port: int,
    ready: asyncio.Event | None = None,
    limits: Limits | None = None,
) -> None:
    limits = limits or Limits()
    loop = asyncio.get_running_loop()
    open_: set[Connection] = set()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
    server = await loop.create_server(
        lambda: Connection(app, limits, open_, executor), host, port, reuse_address=True, backlog=1024
    )
    log.info("serving on %s:%d", host, port)
    sweeper = asyncio.create_task(_sweep(open_, limits))
    if ready is not None:
        ready.set()
    try:
        async with server:
            await server.serve_forever()
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        executor.shutdown(wait=False, cancel_futures=True)
