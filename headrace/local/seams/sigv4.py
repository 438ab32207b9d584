"""SigV4 as the plane checks it: the signature a request claims (header or presigned URL), and the one it
should carry, recomputed from the request and the key's secret (AWS General Reference, "Signature Version 4
signing process")."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from botocore.utils import normalize_url_path

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

ALGORITHM = "AWS4-HMAC-SHA256"


class Refused(Exception):
    """Why a request is not let in; `kind` picks the error code in the service's vocabulary."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- the signature a request claims -------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    access_key_id: str
    scope: str  # date/region/service/aws4_request
    service: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    session_token: str | None
    expires_s: int | None  # a presigned URL's lifetime; None for header signing


def query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def header(environ: WSGIEnvironment, name: str) -> str | None:
    key = name.upper().replace("-", "_")
    value = environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}")
    return None if value is None else str(value)


def claim_of(environ: WSGIEnvironment) -> Claim:
    """The signature the request carries, from its Authorization header or its query string."""
    authorization = header(environ, "Authorization") or ""
    query = dict(query_pairs(str(environ.get("QUERY_STRING", ""))))
    if authorization:
        algorithm, _, rest = authorization.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise Refused("missing", f"only {ALGORITHM} signatures are accepted")
        fields = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in rest.split(","))}
        credential, headers, signature = (fields.get(k) for k in ("Credential", "SignedHeaders", "Signature"))
        amz_date = header(environ, "X-Amz-Date") or ""
        token, expires = header(environ, "X-Amz-Security-Token"), None
    elif "X-Amz-Signature" in query:
        if query.get("X-Amz-Algorithm") != ALGORITHM:
            raise Refused("missing", f"only {ALGORITHM} presigned URLs are accepted")
        credential, headers, signature = (
            query.get(k) for k in ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature")
        )
        amz_date, token = query.get("X-Amz-Date", ""), query.get("X-Amz-Security-Token")
        try:
            expires = int(query.get("X-Amz-Expires", ""))
        except ValueError:
            raise Refused("missing", "X-Amz-Expires must be a number of seconds") from None
    else:
        raise Refused("missing", "the request is not signed: sign it with the plane's credentials")
    scope = (credential or "").split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not headers or not signature or not amz_date:
        raise Refused("missing", "the request's signature is incomplete")
    return Claim(
        access_key_id=scope[0],
        scope="/".join(scope[1:]),
        service=scope[3],
        signed_headers=headers.lower().split(";"),
        signature=signature,
        amz_date=amz_date,
        session_token=token,
        expires_s=expires,
    )


# --- the signature the request should carry -----------------------------------------------------------------


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_request(environ: WSGIEnvironment, claim: Claim, payload_hash: str) -> str:
    raw_path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/").partition("?")[0] or "/"
    # S3 signs the path as sent; every other service signs it normalized and encoded once more.
    path = raw_path if claim.service == "s3" else quote(normalize_url_path(raw_path), safe="/~")
    pairs = query_pairs(str(environ.get("QUERY_STRING", "")))
    if claim.expires_s is not None:
        pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    query = "&".join(f"{k}={v}" for k, v in sorted((_encode(k), _encode(v)) for k, v in pairs))
    headers = "".join(
        f"{name}:{' '.join((header(environ, name) or '').split())}\n" for name in claim.signed_headers
    )
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    return "\n".join([method, path, query, headers, ";".join(claim.signed_headers), payload_hash])


def signature(secret_access_key: str, claim: Claim, canonical: str) -> str:
    date, region, service, _ = claim.scope.split("/")
    string_to_sign = "\n".join(
        [ALGORITHM, claim.amz_date, claim.scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret_access_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
