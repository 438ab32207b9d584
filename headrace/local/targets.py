"""Delivery to a target, one way for EventBridge rules and Scheduler schedules alike.

A state machine target gets an execution with a generated name (EventBridge and Scheduler name their
executions themselves; names must be unique, and unnamed executions all get the name "None" in moto). A
Lambda function target runs the function's own deployed code in-process, through the `_invoke_lambda` seam,
retried as asynchronous invocations are. What could not be delivered goes to the target's dead-letter queue
when it has one. Every other kind of target is not ours: rules hand those back to moto, schedules refuse
them. `TargetServices` is the port the AWS side implements (seams/targets.py: moto's backends).

`EventDelivery` is the worker thread that delivers a rule's matches, one at a time, off moto's request thread.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("headrace.local")

# The services whose targets the local plane delivers to itself.
DELIVERED_HERE = ("lambda", "states")
# Execution names: at most 80 characters (Step Functions StartExecution API reference).
EXECUTION_NAME_LIMIT = 80
# EventBridge's default retry policy allows 185 attempts over 24 h; locally a handful proves the path.
DEFAULT_DELIVERY_ATTEMPTS = 3


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
        """The function's result (JSON) and whether it errored."""

    def send_message(self, queue_arn: str, body: str, attributes: Mapping[str, str]) -> None: ...


@dataclass(frozen=True)
class Invocation:
    attempts: int
    errored: bool
    result: str  # the last attempt's result, JSON (an error's {"errorType", "errorMessage"})


def delivered_here(target_arn: str) -> bool:
    return Arn.parse(target_arn).service in DELIVERED_HERE


class TargetDispatcher:
    def __init__(self, services: TargetServices) -> None:
        self._services = services

    def start_execution(self, state_machine_arn: str, source: str, payload: str) -> str:
        """Starts an execution named after its source (a rule or a schedule); returns the name."""
        name = f"{source[:40]}-{uuid.uuid4().hex}"[:EXECUTION_NAME_LIMIT]
        self._services.start_execution(state_machine_arn, name, payload)
        return name

    def require_function(self, function_arn: str) -> None:
        self._services.require_function(function_arn)

    def invoke(self, function_arn: str, payload: str, attempts: int, source: str) -> Invocation:
        """Up to `attempts` invocations until one does not error; raises when there is no such function."""
        self._services.require_function(function_arn)
        result, errored = "null", True
        for attempt in range(1, attempts + 1):
            try:
                result, errored = self._services.invoke_function(function_arn, payload)
            except Exception as error:
                result, errored = f"{type(error).__name__}: {error}", True
            if not errored:
                return Invocation(attempt, False, result)
            log.warning("%s: attempt %d of %s failed: %s", source, attempt, function_arn, result[:500])
        return Invocation(attempts, True, result)

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
    """A worker thread that delivers rule matches to Lambda functions and state machines."""

    def __init__(self, targets: TargetDispatcher) -> None:
        self._targets = targets
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="headrace-event-delivery", daemon=True)
        self._pending = 0
        self._idle = threading.Condition()
        self.delivered: list[dict[str, Any]] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def submit(self, delivery: Delivery) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(delivery)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once every submitted event was delivered (or given up on)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _run(self) -> None:
        while (delivery := self._queue.get()) is not None:
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
            execution = self._targets.start_execution(target, rule_name, payload)
            self.delivered.append({"target": target, "execution": execution})
            return
        invocation = self._targets.invoke(target, payload, delivery.attempts_left, f"rule {rule_name}")
        if not invocation.errored:
            self.delivered.append({"target": target, "attempt": invocation.attempts})
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
            "ERROR_MESSAGE": error[:1000],
            "RULE_ARN": delivery.rule_arn,
            "TARGET_ARN": delivery.target["Arn"],
        }
        self._targets.dead_letter(dlq_arn, json.dumps(delivery.event), attributes)
