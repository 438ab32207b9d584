"""Who may talk to the plane: only requests signed (SigV4) with a key the plane issued.

In front of moto's server (server.py wraps its WSGI app with `Authenticator.wsgi`), every request is verified
as AWS verifies it: the signature is recomputed from the request and the key's secret and compared, in the
Authorization header or a presigned URL's query string (S3's SigV2 presigned URLs too: boto3 makes those by
default), with its date within 15 minutes (a presigned URL: not expired). The plane's own key (generated at
first start, aws.py) is admin; a role session's key (IAM's RoleSessions, when the plane enforces IAM) is
verified the same way and seams/iam.py then authorizes it as its role; any other request is refused with 403
in the service's own error format, before moto sees it. moto's admin API (`/moto-api/`: reset, data.json,
config) is never served: the plane configures moto in-process. moto's permissive CORS (any Origin echoed) is
stripped: the plane serves no browser.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import boto3
from botocore.auth import HmacV1Auth
from botocore.awsrequest import HTTPHeaders
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials as BotocoreCredentials
from botocore.utils import normalize_url_path

from headrace.local.aws import PlaneCredentials

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ALGORITHM = "AWS4-HMAC-SHA256"
# SigV4: a request whose date is more than 15 minutes from the server's clock is refused (IAM user guide,
# "Elements of an AWS API request signature").
MAX_SKEW_S = 15 * 60
# A presigned URL lives at most 7 days (S3 user guide, "Sharing objects with presigned URLs").
MAX_EXPIRES_S = 7 * 24 * 3600
ADMIN_API_PREFIX = "/moto-api"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# Bodies read to hash them are API payloads (S3 sends its own hash in x-amz-content-sha256); past this,
# a refused request's body is not drained and the connection is closed instead.
_DRAIN_LIMIT = 1 << 20


class IssuedKey(Protocol):
    """A key the plane issued: its secret, and the session token that must come with it (role sessions)."""

    @property
    def secret_access_key(self) -> str: ...
    @property
    def session_token(self) -> str | None: ...


@dataclass(frozen=True)
class SigningKey:
    secret_access_key: str
    session_token: str | None = None


KeyLookup = Callable[[str], IssuedKey | None]


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


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def _header(environ: WSGIEnvironment, name: str) -> str | None:
    key = name.upper().replace("-", "_")
    value = environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}")
    return None if value is None else str(value)


def claim_of(environ: WSGIEnvironment) -> Claim:
    """The signature the request carries, from its Authorization header or its query string."""
    authorization = _header(environ, "Authorization") or ""
    query = dict(_query_pairs(str(environ.get("QUERY_STRING", ""))))
    if authorization:
        algorithm, _, rest = authorization.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise Refused("missing", f"only {ALGORITHM} signatures are accepted")
        fields = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in rest.split(","))}
        credential, headers, signature = (fields.get(k) for k in ("Credential", "SignedHeaders", "Signature"))
        amz_date = _header(environ, "X-Amz-Date") or ""
        token, expires = _header(environ, "X-Amz-Security-Token"), None
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
    pairs = _query_pairs(str(environ.get("QUERY_STRING", "")))
    if claim.expires_s is not None:
        pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    query = "&".join(f"{k}={v}" for k, v in sorted((_encode(k), _encode(v)) for k, v in pairs))
    headers = "".join(
        f"{name}:{' '.join((_header(environ, name) or '').split())}\n" for name in claim.signed_headers
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


# --- the gate -----------------------------------------------------------------------------------------------


class Authenticator:
    """Verifies every request against the keys the plane issued: its own, then each trusted lookup's."""

    def __init__(self, credentials: PlaneCredentials, clock: Callable[[], float] = time.time) -> None:
        self._plane = credentials
        self._clock = clock
        self._lookups: list[KeyLookup] = []

    def trust(self, lookup: KeyLookup) -> None:
        """Also accept the keys `lookup` knows (IAM's role sessions)."""
        self._lookups.append(lookup)

    def key(self, access_key_id: str) -> IssuedKey | None:
        if hmac.compare_digest(access_key_id, self._plane.access_key_id):
            return SigningKey(self._plane.secret_access_key)
        for lookup in self._lookups:
            if found := lookup(access_key_id):
                return found
        return None

    def verify(self, environ: WSGIEnvironment) -> None:
        """Raises Refused unless the request carries a valid signature by a key the plane issued."""
        if str(environ.get("PATH_INFO", "")).startswith(ADMIN_API_PREFIX):
            raise Refused("admin", "moto's admin API is not served by the local plane")
        query = dict(_query_pairs(str(environ.get("QUERY_STRING", ""))))
        if "AWSAccessKeyId" in query and "Signature" in query and not _header(environ, "Authorization"):
            self._verify_presigned_v2(environ, query)
            return
        claim = claim_of(environ)
        key = self.key(claim.access_key_id)
        if key is None:
            raise Refused("unknown-key", "The security token included in the request is invalid.")
        if key.session_token is not None and not hmac.compare_digest(
            claim.session_token or "", key.session_token
        ):
            raise Refused("unknown-key", "The security token included in the request is invalid.")
        self._check_time(claim)
        expected = signature(
            key.secret_access_key, claim, canonical_request(environ, claim, _payload(environ, claim))
        )
        if not hmac.compare_digest(expected, claim.signature):
            raise Refused(
                "signature",
                "The request signature we calculated does not match the signature you provided.",
            )

    def _verify_presigned_v2(self, environ: WSGIEnvironment, query: dict[str, str]) -> None:
        """S3's SigV2 presigned URL (what boto3's generate_presigned_url makes for us-east-1 by default)."""
        key = self.key(query["AWSAccessKeyId"])
        if key is None or key.session_token is not None:
            raise Refused("unknown-key", "The AWS Access Key Id you provided does not exist in our records.")
        try:
            expires = int(query.get("Expires", ""))
        except ValueError:
            raise Refused("signature", "Expires must be a time in epoch seconds") from None
        if self._clock() > expires:
            raise Refused("expired", "Request has expired")
        headers = HTTPHeaders()
        for name, value in environ.items():
            if name.startswith("HTTP_X_AMZ_"):
                headers[name[5:].replace("_", "-").lower()] = str(value)
        for name in ("Content-MD5", "Content-Type"):
            if value := _header(environ, name):
                headers[name] = value
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
        path, _, rest = raw.partition("?")
        if path.count("/") == 1 and len(path) > 1:
            raw = f"{path}/?{rest}"  # S3 signs a bucket's own resource as /bucket/
        signer = _PresignedV2(BotocoreCredentials(query["AWSAccessKeyId"], key.secret_access_key), expires)
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        expected = signer.get_signature(method, urlsplit(raw), headers)
        if not hmac.compare_digest(expected, query["Signature"]):
            raise Refused(
                "signature",
                "The request signature we calculated does not match the signature you provided.",
            )

    def _check_time(self, claim: Claim) -> None:
        try:
            signed_at = datetime.strptime(claim.amz_date, _AMZ_DATE).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise Refused("signature", f"X-Amz-Date {claim.amz_date!r} is not {_AMZ_DATE}") from None
        if not claim.scope.startswith(claim.amz_date[:8] + "/"):
            raise Refused("signature", "the credential scope's date is not the request's date")
        now = self._clock()
        if claim.expires_s is not None:
            if not 0 < claim.expires_s <= MAX_EXPIRES_S:
                raise Refused("signature", f"X-Amz-Expires must be between 1 and {MAX_EXPIRES_S} seconds")
            if signed_at - now > MAX_SKEW_S or now > signed_at + claim.expires_s:
                raise Refused("expired", "Request has expired")
        elif abs(now - signed_at) > MAX_SKEW_S:
            raise Refused("expired", "Signature expired: the request's date is more than 15 minutes away")

    def wsgi(self, app: WSGIApplication) -> WSGIApplication:
        """`app` behind the gate, with moto's CORS headers removed from its answers."""

        def gate(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            try:
                self.verify(environ)
            except Refused as refused:
                return _refusal(environ, start_response, refused)

            def without_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
                return start_response(status, kept, exc_info)

            return app(environ, without_cors)

        return gate


class _PresignedV2(HmacV1Auth):  # type: ignore[misc]  # botocore ships no types
    """botocore's SigV2 signer with the URL's expiry where a signed request has its date."""

    def __init__(self, credentials: BotocoreCredentials, expires: int) -> None:
        super().__init__(credentials)
        self._expires = str(expires)

    def _get_date(self) -> str:
        return self._expires


def _payload(environ: WSGIEnvironment, claim: Claim) -> str:
    """The payload hash the signature covers: S3's declared one, or the body's (read and put back)."""
    if claim.service == "s3":
        # S3 signs the hash it declares (or UNSIGNED-PAYLOAD, as presigned URLs do).
        return _header(environ, "X-Amz-Content-SHA256") or "UNSIGNED-PAYLOAD"
    if declared := _header(environ, "X-Amz-Content-SHA256"):
        return declared
    body = _read_body(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    return hashlib.sha256(body).hexdigest()


def _read_body(environ: WSGIEnvironment) -> bytes:
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused("signature", "Content-Length is not a number") from None
    if length > 0:
        return bytes(stream.read(length))
    return bytes(stream.read()) if environ.get("wsgi.input_terminated") else b""


# --- the refusal, in the service's own error format ---------------------------------------------------------

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
    content_type = _header(environ, "Content-Type") or ""
    if _header(environ, "X-Amz-Target") or "json" in content_type:
        return "json"
    if "x-www-form-urlencoded" in content_type or "Action=" in str(environ.get("QUERY_STRING", "")):
        return "query"
    if service in ("", "s3"):
        return "s3"  # moto's dispatcher sends what it cannot place to S3, as does plain HTTP
    return "json"


def _refusal(environ: WSGIEnvironment, start_response: StartResponse, refused: Refused) -> list[bytes]:
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
    if length > _DRAIN_LIMIT:
        return False
    with contextlib.suppress(Exception):
        environ["wsgi.input"].read(length)
        return True
    return False


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- the plane's own clients inside moto --------------------------------------------------------------------


@contextlib.contextmanager
def state_machines_signed(credentials: PlaneCredentials) -> Iterator[None]:
    """moto's ASL interpreter signs its task calls with a fixed dummy key; the plane's key instead.

    seams/iam.py, installed inside this, signs a state machine's calls as its role where it has one."""
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client

    original = moto_boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> BaseClient:
        from moto.settings import moto_server_port

        return boto3.client(
            service_name=service,
            region_name=region,
            endpoint_url=f"http://localhost:{moto_server_port()}",
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            ),
        )

    with _patch_lock:
        patched = [
            module
            for name, module in list(sys.modules.items())
            if name.startswith(("moto.stepfunctions.parser", "headrace.local.seams"))
            and getattr(module, "boto_client_for", None) is original
        ]
        for module in patched:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
    try:
        yield
    finally:
        with _patch_lock:
            for module in patched:
                if getattr(module, "boto_client_for", None) is boto_client_for:
                    module.boto_client_for = original  # type: ignore[attr-defined]


_patch_lock = threading.Lock()
