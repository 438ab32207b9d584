"""moto's HTTP server on loopback: the one place the plane starts it."""

from __future__ import annotations

from collections.abc import Callable

from moto.server import ThreadedMotoServer


def start_server(port: int) -> Callable[[], None]:
    """Serve moto on 127.0.0.1:`port` (loopback only); returns the function that stops it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server.stop
