"""Lambda's queue for asynchronous invocations, done locally: what happens between Invoke(InvocationType
Event) answering 202 and the function running, as https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
and invocation-async-retain-records.html describe it.

- The caller (EventBridge, S3, Scheduler) is done once the event is queued. It sees a refusal only before
  that: no such function, an event over 1 MB (lambda_limits), no permission; its own retry policy and
  dead-letter queue apply to those (targets.py), never to what the function does.
- A function error (an exception, a timeout, running out of memory) is retried MaximumRetryAttempts times
  (the function's EventInvokeConfig, default 2), waiting between attempts: 1 then 2 minutes on AWS, scaled
  down here by `delay_scale`.
- A throttle (no concurrency left) puts the event back: it is tried again with backoff until it is older than
  MaximumEventAgeInSeconds (default six hours).
- An event that exhausts either goes to the function's on-failure destination (an invocation record) and to
  its dead-letter queue (the event itself, with RequestID, ErrorCode and ErrorMessage attributes); without
  either it is dropped, and logged. A success goes to the on-success destination when there is one.

Events run concurrently, each on a worker thread of its own, so the function sees the races it would on AWS.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from headrace.local import lambda_limits

log = logging.getLogger("headrace.local")

# Lambda waits about a minute before the first retry and two before the second (invocation-async.html).
RETRY_DELAYS_S = (60.0, 120.0)
# Locally a minute is three seconds: long enough for a retry to find the attempt it raced (an idempotency
# record in progress) finished, short enough that a stopping plane drains its queue.
DEFAULT_DELAY_SCALE = 1 / 20
# Backoff for throttled events: Lambda starts at a second and grows to five minutes; locally shorter.
THROTTLE_BACKOFF_S = (0.1, 5.0)
# Events in flight at once (threads); more wait in the executor's queue, as in Lambda's.
WORKERS = 64
ERROR_MESSAGE_BYTES = 1024  # a dead-letter message carries the first 1 KB of the error


@dataclass(frozen=True)
class AsyncConfig:
    """A function's asynchronous invocation settings: EventInvokeConfig and DeadLetterConfig."""

    maximum_retry_attempts: int = lambda_limits.ASYNC_RETRY_ATTEMPTS
    maximum_event_age_s: float = lambda_limits.ASYNC_MAXIMUM_EVENT_AGE_S
    on_success: str | None = None
    on_failure: str | None = None
    dead_letter: str | None = None


class AsyncServices(Protocol):
    """What the queue needs of Lambda and of the destinations (seams/targets.py: moto's backends)."""

    def invoke_function(self, function_arn: str, payload: str) -> tuple[str, bool]:
        """The function's result (JSON) and whether it errored; raises lambda_limits.Throttled."""

    def async_config(self, function_arn: str) -> AsyncConfig: ...

    def send_message(self, queue_arn: str, body: str, attributes: Mapping[str, str]) -> None:
        """To an SQS queue or an SNS topic, by its ARN."""


@dataclass
class _Event:
    request_id: str
    function_arn: str
    payload: str
    queued_at: float
    attempts: int = 0


class AsyncInvocations:
    """The queue: `submit` returns the request id at once; the event runs, is retried and ends on worker
    threads."""

    def __init__(self, services: AsyncServices, delay_scale: float = DEFAULT_DELAY_SCALE) -> None:
        self._services = services
        self.delay_scale = delay_scale
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="headrace-lambda-async")
        self._stopping = threading.Event()
        self._pending = 0
        self._idle = threading.Condition()
        self.completed: list[dict[str, Any]] = []  # request id, function, attempts, outcome (tests read it)

    def submit(self, function_arn: str, payload: str) -> str:
        """Queue an event (raises lambda_limits.RequestTooLarge over 1 MB, as Invoke does)."""
        lambda_limits.check_request(payload.encode(), asynchronous=True)
        event = _Event(str(uuid.uuid4()), function_arn, payload, time.monotonic())
        with self._idle:
            self._pending += 1
        self._executor.submit(self._run, event)
        return event.request_id

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once every queued event has run to its end (success, dead letter or drop)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self) -> None:
        """Stop retrying; events still waiting are dropped with the plane."""
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, event: _Event) -> None:
        try:
            self._process(event)
        except Exception:
            log.exception("asynchronous invocation %s of %s failed", event.request_id, event.function_arn)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _process(self, event: _Event) -> None:
        config = self._services.async_config(event.function_arn)
        backoff = THROTTLE_BACKOFF_S[0]
        while not self._stopping.is_set():
            if time.monotonic() - event.queued_at > config.maximum_event_age_s:
                self._failed(
                    event, config, "EventAgeExceeded", 429, {"errorType": "TooManyRequestsException"}
                )
                return
            try:
                result, errored = self._services.invoke_function(event.function_arn, event.payload)
            except lambda_limits.Throttled:
                self._stopping.wait(backoff)  # back to the queue; it does not count as an attempt
                backoff = min(backoff * 2, THROTTLE_BACKOFF_S[1])
                continue
            event.attempts += 1
            if not errored:
                self._succeeded(event, config, result)
                return
            retries = event.attempts - 1
            if retries >= config.maximum_retry_attempts:
                self._failed(event, config, "RetriesExhausted", 200, _parsed(result))
                return
            log.warning(
                "%s: asynchronous attempt %d failed: %s", event.function_arn, event.attempts, result[:500]
            )
            self._stopping.wait(RETRY_DELAYS_S[min(retries, len(RETRY_DELAYS_S) - 1)] * self.delay_scale)

    def _succeeded(self, event: _Event, config: AsyncConfig, result: str) -> None:
        self.completed.append(self._outcome(event, "Success"))
        if config.on_success:
            record = _record(event, "Success", 200, _parsed(result), function_error=None)
            self._send(config.on_success, json.dumps(record), {})

    def _failed(
        self, event: _Event, config: AsyncConfig, condition: str, status: int, error: dict[str, Any]
    ) -> None:
        self.completed.append(self._outcome(event, condition))
        if config.on_failure:
            record = _record(event, condition, status, error, function_error="Unhandled")
            self._send(config.on_failure, json.dumps(record), {})
        if config.dead_letter:
            message = str(error.get("errorMessage") or error.get("errorType") or "")
            attributes = {
                "RequestID": event.request_id,
                "ErrorCode": str(status),
                "ErrorMessage": message.encode()[:ERROR_MESSAGE_BYTES].decode(errors="ignore"),
            }
            self._send(config.dead_letter, event.payload, attributes)
        if not (config.on_failure or config.dead_letter):
            log.error(
                "%s: asynchronous event %s dropped (%s after %d attempts, no destination or dead-letter "
                "queue): %s",
                event.function_arn,
                event.request_id,
                condition,
                event.attempts,
                json.dumps(error)[:500],
            )

    def _send(self, arn: str, body: str, attributes: Mapping[str, str]) -> None:
        try:
            self._services.send_message(arn, body, attributes)
        except Exception:
            log.exception("could not send an asynchronous invocation's outcome to %s", arn)

    @staticmethod
    def _outcome(event: _Event, condition: str) -> dict[str, Any]:
        return {
            "request_id": event.request_id,
            "function": event.function_arn,
            "attempts": event.attempts,
            "condition": condition,
        }


def _parsed(result: str) -> dict[str, Any]:
    try:
        parsed = json.loads(result)
    except json.JSONDecodeError:
        return {"errorMessage": result}
    return parsed if isinstance(parsed, dict) else {"result": parsed}


def _record(
    event: _Event, condition: str, status: int, response: dict[str, Any], function_error: str | None
) -> dict[str, Any]:
    """An invocation record, as Lambda sends one to a destination (invocation-async-retain-records.html)."""
    response_context: dict[str, Any] = {"statusCode": status, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = function_error
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": f"{event.function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": json.loads(event.payload),
        "responseContext": response_context,
        "responsePayload": response,
    }
