"""What a botocore ClientError means, by its code (and, where AWS gives no better signal, its message)."""

from __future__ import annotations

from botocore.exceptions import ClientError


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def is_conditional_check_failed(exc: ClientError) -> bool:
    """DynamoDB refused a conditional write: the item exists (the first writer won)."""
    return error_code(exc) == "ConditionalCheckFailedException"


def is_missing_object(exc: ClientError) -> bool:
    """S3 has no such object (HeadObject answers a bare 404)."""
    return error_code(exc) in ("404", "NoSuchKey", "NotFound")


def is_missing_resource(exc: ClientError) -> bool:
    """SageMaker has no such endpoint, model, config or package group: it answers ValidationException (or
    ResourceNotFound) and says so only in the message."""
    message = str(exc.response["Error"].get("Message", ""))
    return error_code(exc) in ("ValidationException", "ResourceNotFound") and (
        "Could not find" in message or "does not exist" in message or "not found" in message
    )


def is_already_existing(exc: ClientError) -> bool:
    """A create raced another one of the same name, which won."""
    return "already exists" in str(exc.response["Error"].get("Message", ""))
