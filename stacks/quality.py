"""The live-quality check: captured predictions joined with the ground truth that arrived for them, the drift
check's shape (stacks/monitoring.py).

Scheduler (monitoring.quality_schedule) -> quality state machine:
    Window -> Map over batches of captured objects (Distributed: more traffic, more iterations)
           -> Partial (join with the accepted labels, mergeable metrics, to S3)
           -> Finish (merge, judge the gate metric, metrics, ledger, result + report, production dataset)
QualityBreach >= 1 -> live-quality alarm -> the retrain rule (stacks/monitoring.py, retrain.triggers)
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from headrace.config import ModelConfig
from headrace.monitoring.served_files import monitoring_prefix
from headrace.naming import Names
from headrace.quality.check import accepted_labels_prefix, quality_prefix
from headrace.quality.runtime import QualitySettings
from headrace.serving.rollout import capture_prefix
from headrace.stages import StageSettings
from stacks import nag
from stacks.assets import managed_layers
from stacks.checks import CheckSteps, check_alarm, check_schedule, check_state_machine
from stacks.data_store import DataStore
from stacks.functions import FunctionFactory, StepFunction
from stacks.monitoring import grant_served_artifact

# The kind of the model alarm a breached quality check raises (Names.model_alarm; retrain.triggers).
QUALITY_ALARM = "live-quality"


class QualitySteps(Construct):
    """The quality check's three functions, shared by every model."""

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

        def step(
            construct_id: str, folder: str, name: str, description: str, memory: int
        ) -> lambda_.Function:
            return factory.function(
                self,
                StepFunction(
                    construct_id=construct_id,
                    folder=folder,
                    settings=QualitySettings,
                    function_name=name,
                    description=description,
                    memory_mb=memory,
                    timeout=Duration.minutes(10),
                    needs_pandas=True,
                ),
                layers,
            )

        self.window = step(
            "Window",
            "quality_window",
            names.quality_window_function,
            "Lists the captured traffic and ground truth a quality check reads",
            512,
        )
        self.partial = step(
            "Partial",
            "quality_partial",
            names.quality_partial_function,
            "Joins one batch of captured traffic with its ground truth and counts it",
            2048,
        )
        self.finish = step(
            "Finish",
            "quality_finish",
            names.quality_finish_function,
            "Merges a quality check, publishes its metrics, report and labelled rows",
            2048,
        )
        bucket = store.bucket
        for model in models:
            reference = f"{monitoring_prefix(model.name)}/reference/*"
            checks = f"{quality_prefix(model.name)}/*"
            labels = f"{accepted_labels_prefix(model.name)}/*"
            grants = {
                # The served artifact's features.json and evaluation.json, copied once per version.
                self.window: ([f"{model.name}/runs/*/output/*", reference], [reference, checks]),
                self.partial: ([f"{capture_prefix(model.name)}/*", labels, reference, checks], [checks]),
                self.finish: ([labels, checks], [checks, f"{model.name}/incoming/production/*"]),
            }
            for fn, (read, put) in grants.items():
                for pattern in read:
                    bucket.grant_read(fn, pattern)
                for pattern in put:
                    bucket.grant_put(fn, pattern)
                nag.accept_object_grants(fn, bucket, read=read, put=put)
        # ListObjectsV2 is a bucket-level action; its prefix condition keeps the window to capture and
        # accepted ground-truth folders.
        self.window.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={
                    "StringLike": {
                        "s3:prefix": [
                            prefix
                            for m in models
                            for prefix in (
                                f"{capture_prefix(m.name)}/*",
                                f"{accepted_labels_prefix(m.name)}/*",
                            )
                        ]
                    }
                },
            )
        )
        store.ledger.grant_read_write_data(self.finish)
        # The data key encrypts the ledger and every object these functions put.
        for fn in (self.window, self.partial, self.finish):
            nag.accept_key_grants(fn)


class QualityCheck(Construct):
    """A model's quality check: the state machine, its schedule and the live-quality alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        model: ModelConfig,
        steps: QualitySteps,
        store: DataStore,
        stage: StageSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        grant_served_artifact(self, names, model, steps.window)
        self.state_machine = check_state_machine(
            self,
            name=names.quality_state_machine(model.name),
            model=model.name,
            steps=CheckSteps(steps.window, steps.partial, steps.finish),
            item_fields=("reference_prefix", "labels_key"),
            map_comment="One iteration per batch of captured objects, joined with the labels; metrics merge",
            stage=stage,
            store=store,
        )
        check_schedule(
            self,
            machine=self.state_machine,
            name=names.quality_schedule(model.name),
            expression=model.monitoring.quality_schedule,
            description=f"Quality check of {model.name}: captured predictions against their ground truth",
            role_description=f"Starts the quality check of Headrace model {model.name}",
        )
        gate = model.gate
        # One value per check: an episode is one breached check (as the drift alarm's).
        self.alarm = check_alarm(
            self,
            "QualityAlarm",
            names=names,
            model=model,
            kind=QUALITY_ALARM,
            description=(
                f"A quality check of {model.name} found live {gate.metric} past its bound "
                f"(gate.thresholds, or gate.max_regression {gate.max_regression} against the serving "
                "version's own test metric); it starts retraining"
            ),
            metric_name="QualityBreach",
            publisher=names.quality_finish_function,
        )
        Tags.of(self).add("headrace:model", model.name)
