"""Batch scoring: one state machine per model, started by ingest for each validated batch file.

    Resolve (which Model: the serving version's, or the named approved version's)
      -> Transform (SageMaker createTransformJob.sync: the serving container, driven in mini-batches)
      -> Record (ledger, event, metrics) -> Completed? -> Scored | NotScored (Fail)
    Transform's error -> Record (Failed with SageMaker's reason) -> NotScored
    Resolve's error (nothing to score with) -> NotScored, with the reason as the cause

The payloads at each JSON path are documented in headrace/batch/payloads.py. Transform is a CustomState with
the CreateTransformJob request written out (the same helper as the training and deploy workflows); the
conformance tests check it against botocore's CreateTransformJob shape.
"""

from __future__ import annotations

from typing import Any

import botocore.session
from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from headrace.batch.layout import INPUT, batch_prefix
from headrace.batch.runtime import BatchSettings
from headrace.config import ModelConfig
from headrace.monitoring.served_files import monitoring_prefix
from headrace.naming import Names, transform_job_name_glob
from headrace.training.instances import has_instance_storage
from stacks import nag
from stacks.assets import managed_layers
from stacks.data_store import DataStore
from stacks.functions import FunctionFactory, StepFunction, execution_payload, invoke_step
from stacks.monitoring import grant_served_artifact
from stacks.sagemaker import sagemaker_task
from stacks.stage import logged_state_machine
from stacks.wiring import DEFAULT_EVENT_BUS

# Step Functions' managed rule for `.sync` SageMaker transform jobs
# (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html, "CreateTransformJob").
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTransformJobsRule"
# JoinSource Input with CSV: each output line is its input line, a comma, then the model's output for it;
# "$" filters keep the whole input and output
# (https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html).
JOIN_INPUT = {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": "$"}
LIST_MODELS = (
    "sagemaker:ListModels has no resource-level permissions (Service Authorization Reference, Amazon "
    "SageMaker); Resolve lists the models of one version by name."
)


def input_folder(model: str) -> str:
    """Where a model's validated batch inputs live (headrace.batch.layout), with the trailing slash."""
    return f"{batch_prefix(model)}/{INPUT}/"


def transform_instance_types() -> list[str]:
    """What CreateTransformJob's TransformResources.InstanceType takes (botocore's SageMaker model)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return list(model.shape_for("TransformInstanceType").enum)


def check_scorable(model: ModelConfig) -> None:
    """Config the batch workflow cannot run with fails the synth, naming the field."""
    if model.batch.instance_type not in transform_instance_types():
        raise ValueError(
            f"batch.instance_type: '{model.batch.instance_type}' is not a transform instance type "
            "(CreateTransformJob's TransformResources.InstanceType)"
        )


def transform_job_request(model: ModelConfig, names: Names, *, key_arn: str) -> dict[str, Any]:
    """CreateTransformJob's parameters; `.$` keys take the job name, Model and S3 locations from
    `$.resolved`."""
    batch = model.batch
    resources: dict[str, Any] = {"InstanceType": batch.instance_type, "InstanceCount": batch.instance_count}
    # SageMaker refuses a volume key for instance types with local storage, which their hardware encrypts.
    if not has_instance_storage(batch.instance_type):
        resources["VolumeKmsKeyId"] = key_arn
    request: dict[str, Any] = {
        "TransformJobName.$": "$.resolved.job_name",
        "ModelName.$": "$.resolved.model_name",
        "BatchStrategy": batch.batch_strategy,
        "MaxPayloadInMB": batch.max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": "$.resolved.input_uri"}},
            "ContentType": "text/csv",
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath.$": "$.resolved.output_uri",
            "Accept": "text/csv",
            "AssembleWith": "Line",
            "KmsKeyId": key_arn,
        },
        "TransformResources": resources,
        "DataProcessing": dict(JOIN_INPUT),
        "Tags": [
            {"Key": "headrace:stage", "Value": names.stage},
            {"Key": "headrace:model", "Value": model.name},
        ],
    }
    # 0 leaves SageMaker's default (MaxConcurrentTransforms is optional).
    if batch.max_concurrent_transforms:
        request["MaxConcurrentTransforms"] = batch.max_concurrent_transforms
    return request


class BatchSteps(Construct):
    """The two functions every model's batch scoring calls."""

    def __init__(
        self, scope: Construct, construct_id: str, *, names: Names, store: DataStore, factory: FunctionFactory
    ) -> None:
        super().__init__(scope, construct_id)
        layers = managed_layers(self)

        def build(
            construct_id: str, folder: str, name: str, description: str, *, monitors: bool = False
        ) -> Any:
            return factory.function(
                self,
                StepFunction(
                    construct_id=construct_id,
                    folder=folder,
                    settings=BatchSettings,
                    function_name=name,
                    description=description,
                    # Record counts the batch's inputs against the version's profile (the drift
                    # statistics), one input object at a time: the drift Partial step's memory and time.
                    memory_mb=2048 if monitors else 256,
                    timeout=Duration.minutes(10 if monitors else 1),
                    needs_pandas=monitors,
                ),
                layers,
            )

        self.resolve = build(
            "Resolve",
            "batch_resolve",
            names.batch_resolve_function,
            "Finds the SageMaker Model a batch is scored with and names its transform job",
        )
        self.record = build(
            "Record",
            "batch_record",
            names.batch_record_function,
            "Records how a batch transform job ended and checks its inputs for drift",
            monitors=True,
        )
        for function in (self.resolve, self.record):
            store.ledger.grant_read_write_data(function)
            nag.accept_key_grants(function)
        events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_EVENT_BUS).grant_put_events_to(
            self.record
        )
        # ListModelPackages and ListModels have no resource-level permissions: '*' or nothing.
        self.resolve.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages", "sagemaker:ListModels"], resources=["*"]
            )
        )
        nag.accept_unscoped(self.resolve, f"{nag.LIST_MODEL_PACKAGES} {LIST_MODELS}")


class Batch(Construct):
    """A model's batch scoring workflow."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        model: ModelConfig,
        store: DataStore,
        steps: BatchSteps,
        stage: Any,
    ) -> None:
        super().__init__(scope, construct_id)
        try:
            check_scorable(model)
        except ValueError as exc:
            raise ValueError(f"model '{model.name}': {exc}") from None
        stack = Stack.of(self)
        grant_served_artifact(self, names, model, steps.resolve)
        self._grant_monitoring(names, model, store, steps.record)
        versions = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{names.model_package_group(model.name)}/*",
        )
        steps.resolve.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[versions])
        )
        nag.accept_wildcards(steps.resolve, nag.MODEL_VERSIONS, resources=[nag.flat(self, versions)])

        batch = sfn.JsonPath.object_at("$.batch")
        resolve = invoke_step(
            self,
            "Resolve",
            steps.resolve,
            {
                "model": model.name,
                "batch": batch,
                "execution": execution_payload(),
                "started": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            },
            "$.resolved",
        )
        transform = sagemaker_task(
            self,
            "Transform",
            action="createTransformJob.sync",
            parameters=transform_job_request(model, names, key_arn=store.key.key_arn),
            comment="A SageMaker transform job over the batch's input; waits for it to end",
            result_path="$.transform",
        )
        record_payload = {
            "batch": batch,
            "resolved": sfn.JsonPath.object_at("$.resolved"),
            "execution": execution_payload(),
        }
        recorded = invoke_step(
            self,
            "Record",
            steps.record,
            {**record_payload, "transform": sfn.JsonPath.object_at("$.transform")},
            "$.recorded",
        )
        recorded_failure = invoke_step(
            self,
            "RecordFailure",
            steps.record,
            {**record_payload, "error": sfn.JsonPath.object_at("$.error")},
            "$.recorded",
        )
        not_scored = sfn.Fail(
            self,
            "NotScored",
            error="BatchNotScored",
            cause="the transform job did not complete (see the ledger)",
        )
        unresolved = sfn.Fail(self, "NothingToScoreWith", error="BatchNotScored", cause_path="$.error.Cause")
        resolve.add_catch(unresolved, errors=[sfn.Errors.ALL], result_path="$.error")
        transform.add_catch(recorded_failure, errors=[sfn.Errors.ALL], result_path="$.error")
        recorded_failure.next(not_scored)
        ended = (
            sfn.Choice(self, "Completed", comment="Did the transform job complete?")
            .when(sfn.Condition.string_equals("$.recorded.status", "Completed"), sfn.Succeed(self, "Scored"))
            .otherwise(not_scored)
        )
        # The execution's input is the batch (BatchInput); every step finds it at $.batch.
        start = sfn.Pass(self, "Start", parameters={"batch": sfn.JsonPath.entire_payload})
        definition = start.next(resolve).next(transform).next(recorded).next(ended)
        name = names.batch_state_machine(model.name)
        self.state_machine = logged_state_machine(self, name, definition, stage, store.key)
        self._grant_transform(stack, transform_job_name_glob(model.name))
        nag.accept_workflow(self.state_machine, [steps.resolve, steps.record])
        Tags.of(self).add("headrace:model", model.name)

    def _grant_monitoring(self, names: Names, model: ModelConfig, store: DataStore, record: Any) -> None:
        """Record's drift check: the Model's artifact (DescribeModel, the profile in it), the batch's input
        objects (listed under the input prefix), the reference copies, results and reports it writes."""
        grant_served_artifact(self, names, model, record)
        bucket = store.bucket
        reads = [
            f"{model.name}/runs/*/output/*",
            f"{input_folder(model.name)}*",
            f"{monitoring_prefix(model.name)}/*",
        ]
        puts = [f"{monitoring_prefix(model.name)}/*"]
        for pattern in reads:
            bucket.grant_read(record, pattern)
        for pattern in puts:
            bucket.grant_put(record, pattern)
        nag.accept_object_grants(record, bucket, read=reads, put=puts)
        # ListObjectsV2 is a bucket-level action; its prefix condition keeps Record to batch inputs.
        record.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{input_folder(model.name)}*"]}},
            )
        )

    def _grant_transform(self, stack: Stack, jobs: str) -> None:
        """What createTransformJob.sync needs: the job calls on this model's jobs and the managed rule Step
        Functions hears a job's end by (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html).
        No iam:PassRole: a transform job runs as its Model's execution role."""
        machine = self.state_machine
        jobs_arn = stack.format_arn(service="sagemaker", resource="transform-job", resource_name=jobs)
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:AddTags",
                ],
                resources=[jobs_arn],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)],
            )
        )
        machine.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:ListTags"], resources=["*"]))
        nag.accept_unscoped(machine.role, nag.SYNC_LIST_TAGS)
        nag.accept_wildcards(machine.role, nag.MODEL_VERSIONS, resources=[nag.flat(self, jobs_arn)])
