"""A refused request answered as the service itself would: 403 with its protocol family's error shape."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

from headrace.local.seams.sigv4 import Refused, claim_of, header

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# Bodies read to hash them are API payloads (S3 sends its own hash in x-amz-content-sha256); past this,
# a refused request's body is not drained and the connection is closed instead.
DRAIN_LIMIT = 1 << 20


# The code AWS answers for each refusal, by the service's protocol family.
_CODES = {
    "s3": {
        "missing": "AccessDenied",
        "unknown-key": "InvalidAccessKeyId",
        "signature": "SignatureDoesNotMatch",
        "expired": "AccessDenied",
        "admin": "AccessDenied",
    },
    "query": {
        "missing": "MissingAuthenticationToken",
        "unknown-key": "InvalidClientTokenId",
        "signature": "SignatureDoesNotMatch",
        "expired": "SignatureDoesNotMatch",
        "admin": "AccessDenied",
    },
    "json": {
        "missing": "MissingAuthenticationTokenException",
        "unknown-key": "UnrecognizedClientException",
        "signature": "InvalidSignatureException",
        "expired": "InvalidSignatureException",
        "admin": "AccessDeniedException",
    },
}


def _family(environ: WSGIEnvironment) -> str:
    """S3's XML, the query protocol's ErrorResponse, or JSON (x-amz-json and REST-JSON services)."""
    service = ""
    with contextlib.suppress(Refused):
        service = claim_of(environ).service
    content_type = header(environ, "Content-Type") or ""
    if header(environ, "X-Amz-Target") or "json" in content_type:
        return "json"
    if "x-www-form-urlencoded" in content_type or "Action=" in str(environ.get("QUERY_STRING", "")):
        return "query"
    if service in ("", "s3"):
        return "s3"  # moto's dispatcher sends what it cannot place to S3, as does plain HTTP
    return "json"


def refusal(environ: WSGIEnvironment, start_response: StartResponse, refused: Refused) -> list[bytes]:
    family = _family(environ)
    code, message = _CODES[family][refused.kind], str(refused)
    headers = [("x-amzn-ErrorType", code)] if family == "json" else []
    if family == "json":
        body, content_type = json.dumps({"__type": code, "message": message}), "application/x-amz-json-1.1"
    elif family == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{_xml(message)}</Message></Error>"
            "<RequestId>headrace-local</RequestId></ErrorResponse>"
        )
        content_type = "text/xml"
    else:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message>"
            "<RequestId>headrace-local</RequestId></Error>"
        )
        content_type = "application/xml"
    data = body.encode()
    # A body left unread would be parsed as the next request on this connection: drain it, or close.
    keep_alive = _drained(environ)
    headers += [("Content-Type", content_type), ("Content-Length", str(len(data)))]
    if not keep_alive:
        headers.append(("Connection", "close"))
    start_response("403 Forbidden", headers)
    return [data]


def _drained(environ: WSGIEnvironment) -> bool:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    if length > DRAIN_LIMIT:
        return False
    with contextlib.suppress(Exception):
        environ["wsgi.input"].read(length)
        return True
    return False


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
