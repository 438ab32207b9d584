"""Monitoring: a scheduled drift check per model on its captured traffic, and retraining on alarms.

Scheduler (monitoring.schedule) -> drift state machine:
    Window -> Map over batches of captured objects (Distributed: more traffic, more iterations)
           -> Partial (counts per batch, to S3) -> Finish (merge, statistics, metrics, result + report)
DriftedFeatures >= 1 -> drift alarm ─┐
endpoint quality alarm (deploy.py) ──┴> CloudWatch Alarm State Change (ALARM) -> Retrain function
    -> a training run of the newest dataset, unless the cooldown, the daily cap or the episode says no
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from headrace.config import ModelConfig
from headrace.monitoring.retrain import ALARM_STATE_CHANGE, triggers
from headrace.monitoring.retrain_aws import RetrainSettings
from headrace.monitoring.runtime import DriftSettings
from headrace.monitoring.served_files import monitoring_prefix
from headrace.naming import Names
from headrace.serving.rollout import capture_prefix
from headrace.stages import StageSettings
from stacks import nag
from stacks.assets import managed_layers
from stacks.checks import CheckSteps, check_alarm, check_schedule, check_state_machine
from stacks.data_store import DataStore
from stacks.functions import (
    FunctionFactory,
    StepFunction,
    dead_letter_queue,
)
from stacks.wiring import DEFAULT_EVENT_BUS

# The kind of the model alarm a drifted check raises (Names.model_alarm).
DRIFT_ALARM = "drift"


class MonitoringSteps(Construct):
    """The drift check's three functions and the retrain function, shared by every model."""

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
        layers = managed_layers(self)

        def drift_step(
            construct_id: str, folder: str, name: str, description: str, memory: int
        ) -> lambda_.Function:
            return factory.function(
                self,
                StepFunction(
                    construct_id=construct_id,
                    folder=folder,
                    settings=DriftSettings,
                    function_name=name,
                    description=description,
                    memory_mb=memory,
                    timeout=Duration.minutes(10),
                    needs_pandas=True,
                ),
                layers,
            )

        self.window = drift_step(
            "Window",
            "drift_window",
            names.drift_window_function,
            "Lists the captured traffic a drift check reads",
            512,
        )
        self.partial = drift_step(
            "Partial",
            "drift_partial",
            names.drift_partial_function,
            "Counts one batch of captured traffic against the reference",
            2048,
        )
        self.finish = drift_step(
            "Finish",
            "drift_finish",
            names.drift_finish_function,
            "Merges a drift check, publishes its metrics and report",
            1024,
        )
        # Each model's training state machine grants it StartExecution (stacks/model_pipeline.py).
        self.retrain = factory.function(
            self,
            StepFunction(
                construct_id="Retrain",
                folder="retrain",
                settings=RetrainSettings,
                function_name=names.retrain_function,
                description="Starts a retraining run on a drift or quality alarm, within cooldown and cap",
                memory_mb=256,
                timeout=Duration.minutes(1),
                needs_pandas=False,
                invoked_async=True,
            ),
            layers,
        )
        bucket = store.bucket
        for model in models:
            bucket.grant_read(self.window, f"{model.name}/runs/*/output/*")
            nag.accept_object_grants(self.window, bucket, read=[f"{model.name}/runs/*/output/*"])
            for fn in (self.window, self.partial, self.finish):
                bucket.grant_read(fn, f"{monitoring_prefix(model.name)}/*")
                bucket.grant_put(fn, f"{monitoring_prefix(model.name)}/*")
                nag.accept_object_grants(
                    fn,
                    bucket,
                    read=[f"{monitoring_prefix(model.name)}/*"],
                    put=[f"{monitoring_prefix(model.name)}/*"],
                )
            bucket.grant_read(self.partial, f"{capture_prefix(model.name)}/*")
            nag.accept_object_grants(self.partial, bucket, read=[f"{capture_prefix(model.name)}/*"])
        # ListObjectsV2 is a bucket-level action; its prefix condition keeps the window to capture folders.
        self.window.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{capture_prefix(m.name)}/*" for m in models]}},
            )
        )
        for fn in (self.window, self.finish, self.retrain):
            store.ledger.grant_read_write_data(fn)
        # The data key encrypts the ledger and every object these functions put.
        for fn in (self.window, self.partial, self.finish, self.retrain):
            nag.accept_key_grants(fn)
        events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_EVENT_BUS).grant_put_events_to(
            self.retrain
        )
        self.failed_retrains = dead_letter_queue(self, "UndeliveredAlarms", store.key)
        nag.accept(self.failed_retrains, "SQS3", nag.DEAD_LETTER_QUEUE)
        alarm_names = [alarm for model in models for alarm in triggers(model, names)]
        events.Rule(
            self,
            "OnAlarm",
            rule_name=f"{names.prefix}-retrain-on-alarm",
            description="A drift or endpoint quality alarm enters ALARM -> the retrain function decides",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                detail={"alarmName": alarm_names, "state": {"value": ["ALARM"]}},
            ),
            targets=[
                targets.LambdaFunction(
                    self.retrain,
                    dead_letter_queue=self.failed_retrains,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )


class DriftCheck(Construct):
    """A model's drift check: the state machine, its schedule and the drift alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        model: ModelConfig,
        steps: MonitoringSteps,
        store: DataStore,
        stage: StageSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        grant_served_artifact(self, names, model, steps.window)
        self.state_machine = check_state_machine(
            self,
            name=names.drift_state_machine(model.name),
            model=model.name,
            steps=CheckSteps(steps.window, steps.partial, steps.finish),
            item_fields=("reference_prefix",),
            map_comment="One iteration per batch of captured objects; counts merge exactly",
            stage=stage,
            store=store,
        )
        check_schedule(
            self,
            machine=self.state_machine,
            name=names.drift_schedule(model.name),
            expression=model.monitoring.schedule,
            description=f"Drift check of {model.name} on its captured traffic",
            role_description=f"Starts the drift check of Headrace model {model.name}",
        )
        self.alarm = check_alarm(
            self,
            "DriftAlarm",
            names=names,
            model=model,
            kind=DRIFT_ALARM,
            description=(
                f"A drift check of {model.name} found a drifted feature "
                f"(PSI >= {model.monitoring.psi_threshold}, or a p-value < {model.monitoring.ks_pvalue}); "
                "it starts retraining"
            ),
            metric_name="DriftedFeatures",
            publisher=names.drift_finish_function,
        )
        Tags.of(self).add("headrace:model", model.name)


def grant_served_artifact(
    scope: Construct, names: Names, model: ModelConfig, window: lambda_.Function
) -> None:
    """A check's Window finds what the endpoint serves: its config, that config's model, the artifact."""
    stack = Stack.of(scope)
    endpoint = names.endpoint(model.name)
    hosted = f"{endpoint[:44]}-v*"
    versioned = [
        stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name=hosted),
        stack.format_arn(service="sagemaker", resource="model", resource_name=hosted),
    ]
    window.add_to_role_policy(
        iam.PolicyStatement(
            actions=[
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DescribeModel",
            ],
            resources=[
                stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint),
                *versioned,
            ],
        )
    )
    nag.accept_wildcards(window, nag.MODEL_VERSIONS, resources=[nag.flat(scope, a) for a in versioned])
