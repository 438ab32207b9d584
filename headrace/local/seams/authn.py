"""Who may talk to the plane: only requests signed (SigV4) with a key the plane issued.

In front of moto's server (server.py wraps its WSGI app with `Authenticator.wsgi`), every request is verified
as AWS verifies it: the signature is recomputed from the request and the key's secret and compared, in the
Authorization header or a presigned URL's query string (S3's SigV2 presigned URLs too: boto3 makes those by
default), with its date within 15 minutes (a presigned URL: not expired). The plane's own key (generated at
first start, aws.py) is admin of its account (a plane whose stages live in several accounts issues one
such key per account); a role session's key (IAM's RoleSessions, when the plane enforces IAM) is verified the
same way and seams/iam.py then authorizes it as its role; any other request is refused with 403 in the
service's own error format, before moto sees it. moto keys all its state by account and takes a request's
account from its `x-moto-account-id` header (moto/core/responses.py, get_current_account): the gate sets that
header to the account of the key that signed the request, and drops whatever the caller sent in it.
moto's admin API (`/moto-api/`: reset, data.json,
config) is never served: the plane configures moto in-process. moto's permissive CORS (any Origin echoed) is
stripped: the plane serves no browser.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import boto3
from botocore.auth import HmacV1Auth
from botocore.awsrequest import HTTPHeaders
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials as BotocoreCredentials

from headrace.local.aws import LOCAL_ACCOUNT, PlaneCredentials
from headrace.local.seams.refusals import refusal
from headrace.local.seams.sigv4 import (
    Claim,
    Refused,
    canonical_request,
    claim_of,
    header,
    query_pairs,
    signature,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# SigV4: a request whose date is more than 15 minutes from the server's clock is refused (IAM user guide,
# "Elements of an AWS API request signature").
MAX_SKEW_S = 15 * 60
# A presigned URL lives at most 7 days (S3 user guide, "Sharing objects with presigned URLs").
MAX_EXPIRES_S = 7 * 24 * 3600
ADMIN_API_PREFIX = "/moto-api"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


# The header moto's server reads a request's account from before its access key (moto 5.2.5,
# BaseResponse.get_current_account); as a WSGI environ key.
ACCOUNT_HEADER = "HTTP_X_MOTO_ACCOUNT_ID"


class IssuedKey(Protocol):
    """A key the plane issued: its secret, the session token that must come with it (role sessions), and
    the account whose resources it acts on."""

    @property
    def secret_access_key(self) -> str: ...
    @property
    def session_token(self) -> str | None: ...
    @property
    def account(self) -> str: ...


@dataclass(frozen=True)
class SigningKey:
    secret_access_key: str
    account: str
    session_token: str | None = None


KeyLookup = Callable[[str], IssuedKey | None]


# --- the gate -----------------------------------------------------------------------------------------------


class Authenticator:
    """Verifies every request against the keys the plane issued: its own (one admin key per account it
    serves), then each trusted lookup's."""

    def __init__(
        self,
        credentials: PlaneCredentials,
        clock: Callable[[], float] = time.time,
        account: str = LOCAL_ACCOUNT,
        accounts: Mapping[str, PlaneCredentials] | None = None,
    ) -> None:
        # account -> its admin key; `credentials` is `account`'s (the plane's first stage's).
        self._admins = {**(accounts or {}), account: credentials}
        self._clock = clock
        self._lookups: list[KeyLookup] = []

    def trust(self, lookup: KeyLookup) -> None:
        """Also accept the keys `lookup` knows (IAM's role sessions)."""
        self._lookups.append(lookup)

    def key(self, access_key_id: str) -> IssuedKey | None:
        for account, admin in self._admins.items():
            if hmac.compare_digest(access_key_id, admin.access_key_id):
                return SigningKey(admin.secret_access_key, account)
        for lookup in self._lookups:
            if found := lookup(access_key_id):
                return found
        return None

    def verify(self, environ: WSGIEnvironment) -> IssuedKey:
        """The key that signed the request; raises Refused unless it carries a valid signature by a key the
        plane issued."""
        if str(environ.get("PATH_INFO", "")).startswith(ADMIN_API_PREFIX):
            raise Refused("admin", "moto's admin API is not served by the local plane")
        query = dict(query_pairs(str(environ.get("QUERY_STRING", ""))))
        if "AWSAccessKeyId" in query and "Signature" in query and not header(environ, "Authorization"):
            return self._verify_presigned_v2(environ, query)
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
        return key

    def _verify_presigned_v2(self, environ: WSGIEnvironment, query: dict[str, str]) -> IssuedKey:
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
            if value := header(environ, name):
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
        return key

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
                key = self.verify(environ)  # over the headers as signed, a caller's account header too
            except Refused as refused:
                return refusal(environ, start_response, refused)
            environ[ACCOUNT_HEADER] = key.account  # the caller does not choose its account: its key does

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
        return header(environ, "X-Amz-Content-SHA256") or "UNSIGNED-PAYLOAD"
    if declared := header(environ, "X-Amz-Content-SHA256"):
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
