"""The shape the drift check and the quality check share: a scheduled state machine

    Window -> Distributed Map over batches of captured objects -> Partial (to S3) -> Finish

and the model alarm its Finish's metric raises. Each check passes its own functions, the extra fields its
Partial reads from the Window, its names and its metric; the construct ids stay those of each check's scope,
so the synthesized logical ids do not move.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names
from headrace.stages import StageSettings
from stacks import nag
from stacks.data_store import DataStore
from stacks.functions import execution_payload, invoke_step
from stacks.stage import logged_state_machine

MAP_CONCURRENCY = 10
# A check's metrics arrive once per schedule period; its alarm looks at 5-minute periods, so an episode is
# one alarming check (and a quiet period after it is not a breach).
ALARM_PERIOD = Duration.minutes(5)


@dataclass(frozen=True)
class CheckSteps:
    window: lambda_.IFunction
    partial: lambda_.IFunction
    finish: lambda_.IFunction


def check_state_machine(
    scope: Construct,
    *,
    name: str,
    model: str,
    steps: CheckSteps,
    item_fields: Sequence[str],
    map_comment: str,
    stage: StageSettings,
    store: DataStore,
) -> sfn.StateMachine:
    """Window (`$.window`) -> a Distributed Map of Partials, each given `model`, `check_id`, `index`, `keys`
    and the Window's `item_fields` -> Finish (`$.check`)."""
    window = invoke_step(
        scope,
        "Window",
        steps.window,
        {
            "model": model,
            "execution": execution_payload(),
            "trigger": sfn.JsonPath.string_at("$.trigger"),
        },
        "$.window",
    )
    fields = ("model", "check_id", *item_fields)
    count = invoke_step(
        scope,
        "Partial",
        steps.partial,
        {
            "model": sfn.JsonPath.string_at("$.model"),
            "check_id": sfn.JsonPath.string_at("$.check_id"),
            "index": sfn.JsonPath.number_at("$.index"),
            **{field: sfn.JsonPath.string_at(f"$.{field}") for field in item_fields},
            "keys": sfn.JsonPath.list_at("$.keys"),
        },
        "$",
    )
    batches = sfn.DistributedMap(
        scope,
        "Batches",
        comment=map_comment,
        items_path="$.window.batches",
        item_selector={
            **{field: sfn.JsonPath.string_at(f"$.window.{field}") for field in fields},
            "index": sfn.JsonPath.string_at("$$.Map.Item.Index"),
            "keys": sfn.JsonPath.string_at("$$.Map.Item.Value"),
        },
        result_path="$.partials",
        max_concurrency=MAP_CONCURRENCY,
    )
    batches.item_processor(count)
    finish = invoke_step(
        scope,
        "Finish",
        steps.finish,
        {"window": sfn.JsonPath.object_at("$.window"), "partials": sfn.JsonPath.list_at("$.partials")},
        "$.check",
    )
    definition = window.next(batches).next(finish).next(sfn.Succeed(scope, "Checked"))
    machine = logged_state_machine(scope, name, definition, stage, store.key, timeout=Duration.hours(1))
    nag.accept_workflow(machine, [steps.window, steps.partial, steps.finish])
    nag.accept_distributed_map(machine)
    return machine


def check_schedule(
    scope: Construct,
    *,
    machine: sfn.StateMachine,
    name: str,
    expression: str,
    description: str,
    role_description: str,
) -> None:
    """EventBridge Scheduler starts the check with `{"trigger": "schedule"}`."""
    role = iam.Role(
        scope,
        "ScheduleRole",
        assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
        description=role_description,
    )
    machine.grant_start_execution(role)
    scheduler.CfnSchedule(
        scope,
        "Schedule",
        name=name,
        description=description,
        schedule_expression=expression,
        flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        state="ENABLED",
        target=scheduler.CfnSchedule.TargetProperty(
            arn=machine.state_machine_arn,
            role_arn=role.role_arn,
            input=json.dumps({"trigger": "schedule"}),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
            ),
        ),
    )


def check_alarm(
    scope: Construct,
    construct_id: str,
    *,
    names: Names,
    model: ModelConfig,
    kind: str,
    description: str,
    metric_name: str,
    publisher: str,
) -> cloudwatch.Alarm:
    """The model alarm (names.model_alarm(model, kind)) on the Finish function's `metric_name` >= 1."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=names.model_alarm(model.name, kind),
        alarm_description=description,
        metric=cloudwatch.Metric(
            namespace=names.metric_namespace,
            metric_name=metric_name,
            # Powertools adds the publishing function's service name to every metric's dimensions.
            dimensions_map={"Model": model.name, "service": publisher, **names.metric_dimensions},
            statistic="Maximum",
            period=ALARM_PERIOD,
        ),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
