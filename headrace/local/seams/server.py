"""moto's HTTP server on loopback: the one place the plane starts it.

moto's `ThreadedMotoServer`, with the plane's wrapping of its WSGI app (authn.py: only the plane's own clients
get in; durability.py: a request that changes state is answered after it is committed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

Middleware = Callable[["WSGIApplication"], "WSGIApplication"]


def start_server(
    port: int, middleware: Middleware | None = None, guard: Middleware | None = None
) -> Callable[[], None]:
    """Serve moto on 127.0.0.1:`port` (loopback only); returns the function that stops it.

    `guard` (authn.py: only signed requests) wraps everything else, so a refused request reaches nothing."""
    app: WSGIApplication = DomainDispatcherApplication(create_backend_app)
    if middleware:
        app = middleware(app)
    if guard:
        app = guard(app)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join()

    return stop
