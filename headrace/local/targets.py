"""Delivery to a target, one way for EventBridge rules and Scheduler schedules alike.

A state machine target gets an execution with a generated name (EventBridge and Scheduler name their
executions themselves; names must be unique, and unnamed executions all get the name "None" in moto). A
Lambda function target is invoked asynchronously, as EventBridge, S3 and Scheduler invoke functions: Lambda
queues the event and from then on it is Lambda's (lambda_async.py): a function error is retried per the
function's EventInvokeConfig and ends in the function's destination or dead-letter queue. The caller's own
retry policy and dead-letter queue apply only when the call itself is refused (no such function, an event
over 1 MB, a throttled or failed request), as on AWS. Every other kind of target is not ours: rules hand
those back to moto, schedules refuse them. `TargetServices` is the port the AWS side implements
(seams/targets.py: moto's backends).

`EventDelivery` delivers a rule's matches off moto's request thread, concurrently, on a pool of workers.
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
from typing import Any, Protocol

from headrace.local import lambda_limits
from headrace.local.lambda_async import AsyncConfig, AsyncInvocations

log = logging.getLogger("headrace.local")

# The services whose targets the local plane delivers to itself.
DELIVERED_HERE = ("lambda", "states")
# Execution names: at most 80 characters (Step Functions StartExecution API reference).
EXECUTION_NAME_LIMIT = 80
# EventBridge's default retry policy allows 185 attempts over 24 h; locally a handful proves the path.
DEFAULT_DELIVERY_ATTEMPTS = 3
# Rule matches delivered at once (starting an execution or queueing an event is quick; the functions
# themselves run concurrently in Lambda's queue).
DELIVERY_WORKERS = 16


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str  # everything after the account: `stateMachine:name`, `function:name`, a queue's name

    @classmethod
    def parse(cls, text: str) -> Arn:
        """arn:partition:service:region:account:resource; ValueError for anything else."""
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            raise ValueError(f"{text!r} is not an ARN")
        return cls(service=parts[2], region=parts[3], account=parts[4], resource=parts[5])


class TargetServices(Protocol):
    """The AWS calls delivery makes; each raises when its target does not exist."""

    def start_execution(self, state_machine_arn: str, name: str, payload: str) -> None: ...

    def require_function(self, function_arn: str) -> None: ...

    def invoke_function(self, function_arn: str, payload: str) -> tuple[str, bool]:
        """The function's result (JSON) and whether it errored; raises lambda_limits.Throttled."""

    def async_config(self, function_arn: str) -> AsyncConfig:
        """The function's EventInvokeConfig and DeadLetterConfig."""

    def send_message(self, queue_arn: str, body: str, attributes: Mapping[str, str]) -> None: ...


@dataclass(frozen=True)
class Invocation:
    """An asynchronous Invoke: the tries it took, and the request id Lambda queued the event under, or
    (errored) why Lambda refused it."""

    attempts: int
    errored: bool
    result: str


def _may_pass(error: Exception) -> bool:
    """A refusal worth another try: a throttle or a server error. A missing function, a permission or an
    event over the quota will not change (EventBridge sends those to the dead-letter queue untried)."""
    status = getattr(error, "code", None)
    return isinstance(error, lambda_limits.Throttled) or (isinstance(status, int) and status >= 500)


def delivered_here(target_arn: str) -> bool:
    return Arn.parse(target_arn).service in DELIVERED_HERE


class TargetDispatcher:
    def __init__(self, services: TargetServices, lambda_queue: AsyncInvocations | None = None) -> None:
        self._services = services
        # Lambda's queue for asynchronous invocations, shared by rules and schedules.
        self.lambda_queue = lambda_queue or AsyncInvocations(services)

    def start_execution(self, state_machine_arn: str, source: str, payload: str) -> str:
        """Starts an execution named after its source (a rule or a schedule); returns the name."""
        name = f"{source[:40]}-{uuid.uuid4().hex}"[:EXECUTION_NAME_LIMIT]
        self._services.start_execution(state_machine_arn, name, payload)
        return name

    def require_function(self, function_arn: str) -> None:
        self._services.require_function(function_arn)

    def invoke(self, function_arn: str, payload: str, attempts: int, source: str) -> Invocation:
        """Invoke asynchronously (InvocationType Event): up to `attempts` tries while Lambda refuses the call
        for a reason that may pass. What the function then does is Lambda's to retry, not the caller's."""
        refusal = "none"
        for attempt in range(1, attempts + 1):
            try:
                self._services.require_function(function_arn)
                return Invocation(attempt, False, self.lambda_queue.submit(function_arn, payload))
            except Exception as error:
                refusal = f"{type(error).__name__}: {error}"
                if not _may_pass(error):
                    return Invocation(attempt, True, refusal)
            log.warning("%s: invoking %s refused (try %d): %s", source, function_arn, attempt, refusal[:500])
        return Invocation(attempts, True, refusal)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        return self.lambda_queue.wait_idle(timeout_s)

    def close(self) -> None:
        self.lambda_queue.stop()

    def dead_letter(self, queue_arn: str, body: str, attributes: Mapping[str, str]) -> None:
        self._services.send_message(queue_arn, body, attributes)


@dataclass
class Delivery:
    """One rule match for one of the rule's targets."""

    rule_arn: str
    target: dict[str, Any]
    event: dict[str, Any]
    attempts_left: int


class EventDelivery:
    """Delivers rule matches to Lambda functions and state machines, several at once."""

    def __init__(self, targets: TargetDispatcher, workers: int = DELIVERY_WORKERS) -> None:
        self._targets = targets
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0
        self._idle = threading.Condition()
        self.delivered: list[dict[str, Any]] = []

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="headrace-event-delivery")

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._targets.close()

    def submit(self, delivery: Delivery) -> None:
        if self._executor is None:
            raise RuntimeError("event delivery is not started")
        with self._idle:
            self._pending += 1
        self._executor.submit(self._run, delivery)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once every submitted event was delivered (or given up on), and Lambda's queue has run the
        events it was handed to their end."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return self._targets.wait_idle(max(0.0, deadline - time.monotonic()))

    def _run(self, delivery: Delivery) -> None:
        try:
            self._deliver(delivery)
        except Exception:
            log.exception("event delivery to %s failed", delivery.target.get("Arn"))
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        target = str(delivery.target["Arn"])
        rule_name = delivery.rule_arn.rsplit("/", 1)[-1]
        payload = json.dumps(delivery.event)
        if Arn.parse(target).service == "states":
            try:
                execution = self._targets.start_execution(target, rule_name, payload)
            except Exception as error:
                self._dead_letter(delivery, f"{type(error).__name__}: {error}")
                return
            self.delivered.append({"target": target, "execution": execution})
            return
        invocation = self._targets.invoke(target, payload, delivery.attempts_left, f"rule {rule_name}")
        if not invocation.errored:
            self.delivered.append(
                {"target": target, "attempt": invocation.attempts, "request_id": invocation.result}
            )
            return
        self._dead_letter(delivery, invocation.result)

    def _dead_letter(self, delivery: Delivery, error: str) -> None:
        dlq_arn = delivery.target.get("DeadLetterConfig", {}).get("Arn")
        if not dlq_arn:
            log.error(
                "event to %s dropped after retries (no dead-letter queue): %s", delivery.target["Arn"], error
            )
            return
        attributes = {
            "ERROR_CODE": error.split(":", 1)[0],
            "ERROR_MESSAGE": error[:1000],
            "RULE_ARN": delivery.rule_arn,
            "TARGET_ARN": delivery.target["Arn"],
        }
        self._targets.dead_letter(dlq_arn, json.dumps(delivery.event), attributes)
