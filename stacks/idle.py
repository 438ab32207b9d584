"""Tearing down idle endpoints (rollout.idle_hours): one function for the deployment, invoked hourly.

Scheduler rate(1 hour) -> idle endpoints function -> per model that sets idle_hours: DescribeEndpoint,
the Invocations sum of its window, DeleteEndpoint when zero; a decision in the ledger (`idle#<time>`) and,
for a deletion, an "Endpoint Deleted As Idle" event on the default bus. Built only when a model sets it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names
from headrace.serving.idle import function_name
from headrace.serving.idle_aws import IdleSettings
from stacks import nag
from stacks.assets import managed_layers
from stacks.data_store import DataStore
from stacks.functions import FunctionFactory, StepFunction
from stacks.wiring import DEFAULT_EVENT_BUS

SWEEP_SCHEDULE = "rate(1 hour)"


def idle_models(models: Sequence[ModelConfig]) -> list[ModelConfig]:
    """The models whose endpoint the sweep may delete."""
    return [model for model in models if model.rollout.idle_hours is not None]


class IdleEndpoints(Construct):
    """The sweep's function, its hourly schedule and what it may do: only the idle models' endpoints."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        models: Sequence[ModelConfig],
        store: DataStore,
        factory: FunctionFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        swept = idle_models(models)
        if not swept:
            raise ValueError("IdleEndpoints needs a model that sets rollout.idle_hours")
        stack = Stack.of(self)
        name = function_name(names)
        # Its models.json holds only the swept models: the function deletes the endpoints of what it is given.
        self.function = replace(factory, models=swept).function(
            self,
            StepFunction(
                construct_id="Sweep",
                folder="idle_endpoints",
                settings=IdleSettings,
                function_name=name,
                description="Deletes endpoints that served no invocation for rollout.idle_hours",
                memory_mb=256,
                timeout=Duration.minutes(2),
                needs_pandas=False,
                invoked_async=True,
            ),
            managed_layers(self),
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint"],
                resources=[
                    stack.format_arn(
                        service="sagemaker", resource="endpoint", resource_name=names.endpoint(m.name)
                    )
                    for m in swept
                ],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricStatistics"], resources=["*"])
        )
        nag.accept_unscoped(self.function, nag.GET_METRIC_STATISTICS)
        store.ledger.grant_write_data(self.function)
        nag.accept_key_grants(self.function)
        events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_EVENT_BUS).grant_put_events_to(
            self.function
        )
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="Invokes the Headrace idle endpoints sweep",
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=name,
            description="Hourly: delete endpoints idle for their model's rollout.idle_hours",
            schedule_expression=SWEEP_SCHEDULE,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=role.role_arn,
                input=json.dumps({"trigger": "schedule"}),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
                ),
            ),
        )
