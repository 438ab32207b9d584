"""Lambda's quotas that the local plane enforces, and the errors Lambda reports when one is broken.

Sources: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (payloads, memory, timeout)
and the shape of Lambda's own error payloads for a timed-out or out-of-memory invocation, which reach Step
Functions as the error name (`Sandbox.Timedout`, `Runtime.OutOfMemory`) that a Catch or Retry matches.
"""

from __future__ import annotations

from typing import Any

# Invocation payload quotas: 6 MB each way for synchronous calls, 1 MB for an asynchronous event (Invoke API
# reference, https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html; it was 256 KB until 2025).
SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
ASYNC_PAYLOAD_BYTES = 1024 * 1024
# The figure Lambda's Function.ResponseSizeTooLarge message quotes (6 MB plus a 100-byte envelope).
RESPONSE_LIMIT_QUOTED = 6_291_556


class RequestTooLarge(Exception):
    """The Invoke request itself is over the quota: Lambda answers HTTP 413 and runs nothing."""

    code = "RequestEntityTooLargeException"
    status = 413

    def __init__(self, size: int, limit: int, operation: str) -> None:
        super().__init__(f"Request must be smaller than {limit} bytes for the {operation} operation")
        self.size = size
        self.limit = limit


def check_request(payload: bytes, asynchronous: bool) -> None:
    """Raise RequestTooLarge when an event is over the sync (6 MB) or async (1 MB) quota."""
    limit = ASYNC_PAYLOAD_BYTES if asynchronous else SYNC_PAYLOAD_BYTES
    if len(payload) > limit:
        operation = "Invoke (InvocationType Event)" if asynchronous else "InvokeFunction"
        raise RequestTooLarge(len(payload), limit, operation)


def timed_out(request_id: str, timeout_s: float) -> dict[str, Any]:
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
    }


def out_of_memory(request_id: str) -> dict[str, Any]:
    return {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }


def exited(request_id: str, code: int | None) -> dict[str, Any]:
    """The runtime process died without an answer (os._exit, a crash in native code)."""
    how = f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {how}",
    }


def response_too_large() -> dict[str, Any]:
    return {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        f"({RESPONSE_LIMIT_QUOTED} bytes).",
    }


# Concurrency: 1,000 concurrent executions per account and Region by default, of which reservations may take
# all but 100 (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html).
ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MINIMUM = 100


class Throttled(Exception):
    """No concurrency left for the function: Lambda answers 429 TooManyRequestsException and runs nothing.
    A synchronous caller sees it (Step Functions as `Lambda.TooManyRequestsException`); an asynchronous event
    goes back to Lambda's queue and is tried again later."""

    code = "TooManyRequestsException"
    status = 429

    def __init__(self, reason: str) -> None:
        super().__init__("Rate Exceeded.")
        self.reason = (
            reason  # ReservedFunctionConcurrentInvocationLimitExceeded / ConcurrentInvocationLimitExceeded
        )


RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"

# Asynchronous invocation (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html): a function
# error is retried twice by default (EventInvokeConfig MaximumRetryAttempts 0-2), an event is kept up to six
# hours (MaximumEventAgeInSeconds 60-21600), throttles and system errors go back to the queue until then.
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAXIMUM_EVENT_AGE_S = 21600
