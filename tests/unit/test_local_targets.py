"""One target dispatcher for EventBridge rules and Scheduler schedules (headrace/local/targets.py), driven
through its port with an in-memory stand-in for moto's Step Functions, Lambda and SQS."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

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
RULE = "arn:aws:events:us-east-1:123456789012:rule/drift-alarm"
FAILURE = json.dumps({"errorType": "ValueError", "errorMessage": "no"})


@dataclass
class FakeServices:
    """Functions answer from `answers` in turn (errored or not); unknown ARNs raise, as moto does."""

    functions: set[str] = field(default_factory=lambda: {FUNCTION})
    machines: set[str] = field(default_factory=lambda: {MACHINE})
    answers: list[bool] = field(default_factory=list)  # errored, per attempt; then success
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
        self.invocations.append((function_arn, payload))
        errored = self.answers.pop(0) if self.answers else False
        return (FAILURE, True) if errored else ("null", False)

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


def test_a_function_is_retried_until_an_attempt_succeeds() -> None:
    services = FakeServices(answers=[True])
    invocation = TargetDispatcher(services).invoke(FUNCTION, '{"n": 1}', attempts=3, source="test")
    assert (invocation.attempts, invocation.errored) == (2, False)
    assert services.invocations == [(FUNCTION, '{"n": 1}')] * 2


def _deliver(services: FakeServices, target: dict[str, Any], attempts: int = 3) -> EventDelivery:
    delivery = EventDelivery(TargetDispatcher(services))
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


def test_a_rule_match_a_function_keeps_failing_goes_to_the_dead_letter_queue() -> None:
    services = FakeServices(answers=[True, True])
    target = {"Id": "1", "Arn": FUNCTION, "DeadLetterConfig": {"Arn": QUEUE}}
    delivery = _deliver(services, target, attempts=2)
    assert delivery.delivered == []
    [(queue, body, attributes)] = services.messages
    assert (queue, json.loads(body)) == (QUEUE, {"detail": {"alarmName": "drift"}})
    assert attributes == {"ERROR_MESSAGE": FAILURE, "RULE_ARN": RULE, "TARGET_ARN": FUNCTION}


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
    runner = ScheduleRunner(FakeSchedules([_schedule(FUNCTION)]), TargetDispatcher(services))
    [fired] = runner.fire(now=datetime(2030, 11, 23, 10, 15, tzinfo=UTC))
    runner.stop()
    assert (fired.target, fired.error) == (FUNCTION, None)
    assert services.invocations == [(FUNCTION, '{"at": "2030-11-23T10:15:00Z"}')] * LAMBDA_ASYNC_ATTEMPTS


def test_a_schedule_whose_state_machine_is_gone_dead_letters_its_input() -> None:
    services = FakeServices(machines=set())
    runner = ScheduleRunner(FakeSchedules([_schedule(MACHINE, QUEUE)]), TargetDispatcher(services))
    [fired] = runner.fire(now=datetime(2030, 11, 23, 10, 15, tzinfo=UTC))
    assert fired.execution is None and fired.error is not None and "does not exist" in fired.error.lower()
    [(queue, body, attributes)] = services.messages
    assert (queue, body) == (QUEUE, '{"at": "2030-11-23T10:15:00Z"}')
    assert (attributes["ERROR_CODE"], attributes["TARGET_ARN"]) == ("LookupError", MACHINE)
