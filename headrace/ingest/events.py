"""The ingest function's input: S3 "Object Created" notifications delivered by EventBridge.

Parsed with the Powertools parser model for this event; anything else is an `InvalidEvent` whose message
names each field that is wrong, so a misrouted event is obvious in the function's error log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import BaseModel, ConfigDict

OBJECT_CREATED = "Object Created"
S3_SOURCE = "aws.s3"


class InvalidEvent(ValueError):
    """The event is not an S3 Object Created notification this function can ingest."""


class ObjectCreated(BaseModel):
    """What ingest needs from the notification. `key` is decoded; `time` is when S3 stored the object."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    version_id: str | None
    size: int | None
    etag: str
    time: datetime
    event_id: str


def parse_object_created(event: Any, bucket: str | None = None) -> ObjectCreated:
    """Validate an EventBridge event carrying an S3 Object Created notification (from `bucket`, if given)."""
    if not isinstance(event, dict | str):
        raise InvalidEvent(f"expected an EventBridge event (a JSON object), got {type(event).__name__}")
    try:
        parsed = parse(event=event, model=S3EventNotificationEventBridgeModel)  # type: ignore[arg-type]
    except ValidationError as exc:
        details = "; ".join(_describe(error) for error in exc.errors())
        raise InvalidEvent(f"not an S3 Object Created event from EventBridge: {details}") from None
    if parsed.source != S3_SOURCE or parsed.detail_type != OBJECT_CREATED:
        raise InvalidEvent(
            f"expected source '{S3_SOURCE}' and detail-type '{OBJECT_CREATED}', "
            f"got source '{parsed.source}' and detail-type '{parsed.detail_type}'"
        )
    detail = parsed.detail
    if bucket is not None and detail.bucket.name != bucket:
        raise InvalidEvent(
            f"the event is for bucket '{detail.bucket.name}'; this function ingests '{bucket}'"
        )
    size = detail.object.size
    return ObjectCreated(
        bucket=detail.bucket.name,
        key=object_key(detail.object.key),
        version_id=detail.object.version_id,
        size=None if size is None else int(size),
        etag=detail.object.etag,
        time=parsed.time,
        event_id=parsed.id,
    )


def object_key(delivered: str) -> str:
    """The object's key from the key a notification carries.

    S3 form-encodes keys in its notifications: "red flower.jpg" arrives as "red+flower.jpg", a '+' as '%2B'
    and a '%' as '%25' (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
    The EventBridge page (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html) shows the same
    `detail.object.key` field without restating the rule; Powertools' own reader of these events
    (`S3EventBridgeNotificationObject.key`) decodes it with `unquote_plus` as well, so decoding once, exactly
    so, is right. Decoding is not idempotent: never decode a key twice (a literal "%20" would become a space).
    """
    return unquote_plus(delivered)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(event)"
    return f"{where}: {error['msg']}"
