"""HTTP/1.1 response bytes: the status line, the two headers every answer has, and JSON error bodies."""

from __future__ import annotations

import json
from typing import Any, Final

from inference.payload import PayloadError

_REASONS: Final = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
JSON: Final = "application/json"


def response(status: int, body: bytes, content_type: str, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"{'' if keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n"
    )
    return head.encode("latin-1") + body


def problem(what: PayloadError | str) -> bytes:
    """The contract's error body: `{"error": ..., "row": ..., "column": ...}`."""
    document: dict[str, Any] = what.body() if isinstance(what, PayloadError) else {"error": what}
    return json.dumps(document).encode()


def error(status: int, what: PayloadError | str, keep_alive: bool) -> bytes:
    return response(status, problem(what), JSON, keep_alive)
