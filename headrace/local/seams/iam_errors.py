"""AccessDenied as each AWS API answers it: the code its protocol family uses, in XML or JSON."""

from __future__ import annotations

from botocore.exceptions import ClientError
from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.s3.exceptions import S3ClientError

from headrace.local.iam import AccessDenied

# IAM's error code by API protocol family: S3 and the query APIs say AccessDenied, JSON APIs ...Exception.
_ACCESS_DENIED_CODE = {
    "s3": "AccessDenied",
    "iam": "AccessDenied",
    "sts": "AccessDenied",
    "monitoring": "AccessDenied",
    "sns": "AuthorizationError",
}


def access_denied_error(prefix: str, operation: str, denied: AccessDenied) -> ClientError:
    code = _ACCESS_DENIED_CODE.get(prefix, "AccessDeniedException")
    status = 403 if prefix == "s3" else 400
    return ClientError(
        {"Error": {"Code": code, "Message": str(denied)}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


# Services that answer errors in XML (S3 and the query protocol); the others answer JSON.
_XML_ERRORS = {"s3", "iam", "sts", "sns", "monitoring"}


class _XmlAccessDenied(AccessDeniedError):
    def __init__(self, code: str, message: str) -> None:
        super(AccessDeniedError, self).__init__(code, message)  # HTTP 403, the code and message given


def access_denied_response(prefix: str, denied: AccessDenied) -> Exception:
    """The error AWS answers, in the service's own protocol."""
    code = _ACCESS_DENIED_CODE.get(prefix, "AccessDeniedException")
    if prefix == "s3":  # moto's S3 serializes only its own exception family (403 AccessDenied)
        return S3ClientError(code, str(denied))
    if prefix in _XML_ERRORS:
        return _XmlAccessDenied(code, str(denied))
    return JsonRESTError(code, str(denied))
