"""One target dispatcher for EventBridge rules and Scheduler schedules (headrace/local/targets.py) and
Lambda's queue for asynchronous invocations behind it (headrace/local/lambda_async.py), driven through their
port with an in-memory stand-in for moto's Step Functions, Lambda and SQS."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from headrace.local.lambda_async import AsyncConfig, AsyncInvocations
from headrace.local.lambda_limits import Throttled
from headrace.local.scheduler.runner import LAMBDA_ASYNC_ATTEMPTS, ScheduleRunner
from headrace.local.scheduler.schedule import Schedule, ScheduleTarget
from headrace.local.targets import (
    EXECUTION_NAME_LIMIT,
    Arn,
    Delivery,
    EventDelivery,
    TargetDispatcher,
    delivered_here,
)

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:drift"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:retrain"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:dead-letters"
FUNCTION_DLQ = "arn:aws:sqs:us-east-1:123456789012:failed-invocations"
RULE = "arn:aws:events:us-east-1:123456789012:rule/drift-alarm"
FAILURE = json.dumps({"errorType": "ValueError", "errorMessage": "no"})


@dataclass
class FakeServices:
    """Functions answer from `answers` in turn (errored, "throttled", or not); unknown ARNs raise, as moto
    does. `function_dlq` is the function's own DeadLetterConfig."""

    functions: set[str] = field(default_factory=lambda: {FUNCTION})
    machines: set[str] = field(default_factory=lambda: {MACHINE})
    answers: list[bool | str] = field(default_factory=list)  # per attempt; then success
    function_dlq: str | None = FUNCTION_DLQ
    retries: int = 2
    executions: list[tuple[str, str, str]] = field(default_factory=list)
    invocations: list[tuple[str, str]] = field(default_factory=list)
    messages: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def start_execution(self, state_machine_arn: str, name: str, payload: str) -> None:
        if state_machine_arn not in self.machines:
            raise LookupError(f"State Machine Does Not Exist: '{state_machine_arn}'")
        self.executions.append((state_machine_arn, name, payload))

    def require_function(self, function_arn: str) -> None:
        if function_arn not in self.functions:
            raise LookupError(f"Function not found: {function_arn}")

    def invoke_function(self, function_arn: str, payload: str) -> tuple[str, bool]:
        answer = self.answers.pop(0) if self.answers else False
        if answer == "throttled":
            raise Throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
        self.invocations.append((function_arn, payload))
        return (FAILURE, True) if answer else ("null", False)

    def async_config(self, function_arn: str) -> AsyncConfig:
        return AsyncConfig(maximum_retry_attempts=self.retries, dead_letter=self.function_dlq)

    def send_message(self, queue_arn: str, body: str, attributes: Mapping[str, str]) -> None:
        self.messages.append((queue_arn, body, dict(attributes)))


def test_an_arn_names_its_service_region_and_account() -> None:
    assert Arn.parse(MACHINE) == Arn("states", "us-east-1", "123456789012", "stateMachine:drift")
    with pytest.raises(ValueError, match="not an ARN"):
        Arn.parse("drift")


def test_only_lambda_and_state_machine_targets_are_delivered_here() -> None:
    assert [delivered_here(arn) for arn in (MACHINE, FUNCTION, QUEUE)] == [True, True, False]


def test_every_execution_gets_a_distinct_name_within_the_limit_after_its_source() -> None:
    services = FakeServices()
    targets = TargetDispatcher(services)
    names = [targets.start_execution(MACHINE, "x" * 100, "{}") for _ in range(2)]
    assert names[0] != names[1]
    assert all(n.startswith("x" * 40 + "-") and len(n) <= EXECUTION_NAME_LIMIT for n in names)


def _dispatcher(services: FakeServices) -> TargetDispatcher:
    """Lambda's waits between retries (1 and 2 minutes) scaled to nothing."""
    return TargetDispatcher(services, AsyncInvocations(services, delay_scale=0))


def test_an_asynchronous_invoke_returns_once_queued_and_lambda_retries_the_function_error() -> None:
    services = FakeServices(answers=[True])
    targets = _dispatcher(services)
    invocation = targets.invoke(FUNCTION, '{"n": 1}', attempts=3, source="test")
    assert (invocation.attempts, invocation.errored) == (1, False)  # the caller tried once: it was queued
    assert targets.wait_idle(timeout_s=5)
    assert services.invocations == [(FUNCTION, '{"n": 1}')] * 2
    [outcome] = targets.lambda_queue.completed
    assert (outcome["request_id"], outcome["attempts"], outcome["condition"]) == (
        invocation.result,
        2,
        "Success",
    )


def test_a_function_error_is_retried_twice_then_sent_to_the_functions_dead_letter_queue() -> None:
    services = FakeServices(answers=[True, True, True])
    targets = _dispatcher(services)
    request_id = targets.invoke(FUNCTION, '{"n": 1}', attempts=3, source="test").result
    assert targets.wait_idle(timeout_s=5)
    assert len(services.invocations) == 3
    [(queue, body, attributes)] = services.messages
    assert (queue, body) == (FUNCTION_DLQ, '{"n": 1}')
    assert attributes == {"RequestID": request_id, "ErrorCode": "200", "ErrorMessage": "no"}


def test_the_functions_retry_setting_is_honoured() -> None:
    services = FakeServices(answers=[True, True], retries=0)
    targets = _dispatcher(services)
    targets.invoke(FUNCTION, "{}", attempts=3, source="test")
    assert targets.wait_idle(timeout_s=5)
    assert len(services.invocations) == 1 and [m[0] for m in services.messages] == [FUNCTION_DLQ]


def test_a_throttled_event_goes_back_to_the_queue_without_using_an_attempt() -> None:
    services = FakeServices(answers=["throttled", "throttled", True, True])
    targets = _dispatcher(services)
    targets.invoke(FUNCTION, "{}", attempts=1, source="test")
    assert targets.wait_idle(timeout_s=5)
    [outcome] = targets.lambda_queue.completed
    assert (outcome["attempts"], outcome["condition"]) == (3, "Success")
    assert services.messages == []


def test_an_event_over_the_asynchronous_quota_is_refused_to_the_caller() -> None:
    services = FakeServices()
    invocation = _dispatcher(services).invoke(FUNCTION, json.dumps({"x": "y" * 1024 * 1024}), 3, "test")
    assert (invocation.attempts, invocation.errored) == (1, True)  # a refusal that will not pass: one try
    assert invocation.result.startswith("RequestTooLarge") and services.invocations == []


def _deliver(services: FakeServices, target: dict[str, Any], attempts: int = 3) -> EventDelivery:
    delivery = EventDelivery(_dispatcher(services))
    delivery.start()
    try:
        delivery.submit(Delivery(RULE, target, {"detail": {"alarmName": "drift"}}, attempts))
        assert delivery.wait_idle(timeout_s=5)
    finally:
        delivery.stop()
    return delivery


def test_a_rule_match_starts_an_execution_named_after_the_rule() -> None:
    services = FakeServices()
    delivery = _deliver(services, {"Id": "1", "Arn": MACHINE})
    [(machine, name, payload)] = services.executions
    assert (machine, json.loads(payload)) == (MACHINE, {"detail": {"alarmName": "drift"}})
    assert name.startswith("drift-alarm-")
    assert delivery.delivered == [{"target": MACHINE, "execution": name}]


def test_a_rule_match_a_function_keeps_failing_goes_to_the_functions_queue_not_the_rules() -> None:
    services = FakeServices(answers=[True, True, True])
    target = {"Id": "1", "Arn": FUNCTION, "DeadLetterConfig": {"Arn": QUEUE}}
    delivery = _deliver(services, target, attempts=2)
    assert [d["attempt"] for d in delivery.delivered] == [1]  # EventBridge delivered it: Lambda queued it
    [(queue, body, attributes)] = services.messages
    assert (queue, json.loads(body)) == (FUNCTION_DLQ, {"detail": {"alarmName": "drift"}})
    assert attributes["ErrorMessage"] == "no"


def test_a_rule_match_for_a_missing_function_goes_to_the_rules_queue_untried() -> None:
    services = FakeServices(functions=set())
    target = {"Id": "1", "Arn": FUNCTION, "DeadLetterConfig": {"Arn": QUEUE}}
    delivery = _deliver(services, target, attempts=3)
    assert delivery.delivered == [] and services.invocations == []
    [(queue, body, attributes)] = services.messages
    assert (queue, json.loads(body)) == (QUEUE, {"detail": {"alarmName": "drift"}})
    assert attributes == {
        "ERROR_CODE": "LookupError",
        "ERROR_MESSAGE": f"LookupError: Function not found: {FUNCTION}",
        "RULE_ARN": RULE,
        "TARGET_ARN": FUNCTION,
    }


@dataclass
class SlowServices(FakeServices):
    """Each invocation takes a while and records when it ran."""

    spans: list[tuple[float, float]] = field(default_factory=list)

    def invoke_function(self, function_arn: str, payload: str) -> tuple[str, bool]:
        started = time.monotonic()
        time.sleep(0.2)
        self.spans.append((started, time.monotonic()))
        return "null", False


def test_rule_matches_run_their_functions_concurrently() -> None:
    services = SlowServices()
    delivery = EventDelivery(_dispatcher(services))
    delivery.start()
    started = time.monotonic()
    try:
        for n in range(10):
            delivery.submit(Delivery(RULE, {"Id": "1", "Arn": FUNCTION}, {"n": n}, 1))
        assert delivery.wait_idle(timeout_s=5)
    finally:
        delivery.stop()
    assert len(services.spans) == 10
    assert time.monotonic() - started < 1.0  # ten 0.2 s invocations, one at a time, would take 2 s
    assert max(start for start, _ in services.spans) < min(end for _, end in services.spans)


def _schedule(target: str, dead_letter: str | None = None) -> Schedule:
    return Schedule(
        name="drift-check",
        group="default",
        arn="arn:aws:scheduler:us-east-1:123456789012:schedule/default/drift-check",
        state="ENABLED",
        expression="rate(1 hour)",
        timezone=None,
        created=datetime(2030, 1, 1, tzinfo=UTC),
        target=ScheduleTarget(target, '{"at": "<aws.scheduler.scheduled-time>"}', dead_letter),
    )


@dataclass
class FakeSchedules:
    listed: list[Schedule]

    def schedules(self) -> list[Schedule]:
        return self.listed


def test_a_schedule_invokes_its_function_through_the_same_dispatcher_with_lambdas_retries() -> None:
    services = FakeServices(answers=[True] * LAMBDA_ASYNC_ATTEMPTS)
    targets = _dispatcher(services)
    runner = ScheduleRunner(FakeSchedules([_schedule(FUNCTION)]), targets)
    [fired] = runner.fire(now=datetime(2030, 11, 23, 10, 15, tzinfo=UTC))
    runner.stop()
    assert targets.wait_idle(timeout_s=5)
    assert (fired.target, fired.error) == (FUNCTION, None)
    assert services.invocations == [(FUNCTION, '{"at": "2030-11-23T10:15:00Z"}')] * LAMBDA_ASYNC_ATTEMPTS


def test_a_schedule_whose_state_machine_is_gone_dead_letters_its_input() -> None:
    services = FakeServices(machines=set())
    runner = ScheduleRunner(FakeSchedules([_schedule(MACHINE, QUEUE)]), _dispatcher(services))
    [fired] = runner.fire(now=datetime(2030, 11, 23, 10, 15, tzinfo=UTC))
    assert fired.execution is None and fired.error is not None and "does not exist" in fired.error.lower()
    [(queue, body, attributes)] = services.messages
    assert (queue, body) == (QUEUE, '{"at": "2030-11-23T10:15:00Z"}')
    assert (attributes["ERROR_CODE"], attributes["TARGET_ARN"]) == ("LookupError", MACHINE)
