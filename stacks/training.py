"""Training: one state machine per model, over Lambda steps and the training and serving images.

Built-in (xgboost) models share one training and one serving image; a custom model gets its own pair, built
from the same Dockerfiles with its folder's code in the context (stacks/assets.py stage_usercode), and its
training jobs and registered versions name those.

    Prepare -> Train (SageMaker, .sync) -> Evaluate -> Gate --passed--> Register -> Registered
                                                          \\--failed--> Rejected
    any task's error -> RunFailed -> Failed

The payloads at each JSON path are documented in headrace/training/payloads.py. CDK's
SageMakerCreateTrainingJob (2.275) renders no EnableManagedSpotTraining, CheckpointConfig or
MaxWaitTimeInSeconds, so Train is a CustomState with the createTrainingJob.sync request written out here,
and its permissions are granted below, no wider than its jobs. A training job that fails is not retried: it
goes to RunFailed with SageMaker's FailureReason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, Duration, Stack, Tags
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names, training_job_name_glob, tuning_job_name_glob, tuning_trial_name_glob
from headrace.stages import NetworkSettings, StageSettings
from headrace.training.gate import direction
from headrace.training.instances import has_instance_storage
from headrace.training.layout import CHAMPION, EVALUATION_KEYS, LINEAGE_KEYS, OUTPUT_KEYS, SPLIT_KEYS, SPLITS
from headrace.training.settings import (
    BucketStepSettings,
    RegisterSettings,
    RunFailedSettings,
    TuningResultSettings,
)
from headrace.training.splits import check_fractions
from headrace.training.tuning import tuning_job_config
from headrace.training_job import hyperparameters_for, static_hyperparameters_for
from stacks import nag
from stacks.assets import (
    SERVE_IMAGE_FILES,
    SERVE_IMAGE_SOURCE,
    TRAIN_IMAGE_FILES,
    TRAIN_IMAGE_SOURCE,
    managed_layers,
    stage_image_context,
    staging_directory,
)
from stacks.data_store import DataStore
from stacks.functions import FunctionFactory, StepFunction, execution_payload, invoke_step
from stacks.sagemaker import SageMakerServiceRole, sagemaker_task
from stacks.stage import logged_state_machine
from stacks.wiring import DEFAULT_EVENT_BUS

DATASET_KEYS = "*/datasets/*"
# The training job's EBS volume (instances with local NVMe storage use that instead, whatever its size).
TRAINING_VOLUME_GB = 30
# SageMaker syncs this container folder with CheckpointConfig.S3Uri (containers/train/CONTRACT.md).
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# Step Functions' managed rule for `.sync` SageMaker training jobs
# (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html).
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
# ... and for `.sync` tuning jobs (same page, "CreateHyperParameterTuningJob").
TUNING_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTuningJobsRule"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@dataclass(frozen=True)
class TuningStates:
    """A tuned model's training part of the workflow: where it starts (the warm-start Choice), the state
    whose output is `$.training` (TuningResult), and every task in between (each caught into RunFailed)."""

    start: sfn.Choice
    result: tasks.LambdaInvoke
    tasks: list[sfn.TaskStateBase | sfn.CustomState]


@dataclass(frozen=True)
class ModelImages:
    """A training image and the serving image that runs what it trains."""

    train: ecr_assets.DockerImageAsset
    serve: ecr_assets.DockerImageAsset


def image_assets(scope: Construct, staging: Path, model: ModelConfig | None = None) -> ModelImages:
    """The TrainImage and ServeImage assets in `scope`, their contexts staged under `staging`; with `model`
    (framework custom), each context carries that model's code.

    A training job runs exactly the one image its AlgorithmSpecification.TrainingImage names
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AlgorithmSpecification.html), and a
    version's container its InferenceSpecification's Image: so a custom model's code travels inside its
    own pair of images, and a change to that code is a new image tag."""

    def asset(construct_id: str, context: Path) -> ecr_assets.DockerImageAsset:
        # SageMaker's training and hosting instances (ml.m5, ml.g5, ...) are x86_64.
        return ecr_assets.DockerImageAsset(
            scope, construct_id, directory=str(context), platform=ecr_assets.Platform.LINUX_AMD64
        )

    return ModelImages(
        train=asset(
            "TrainImage", stage_image_context(TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, staging / "train", model)
        ),
        serve=asset(
            "ServeImage", stage_image_context(SERVE_IMAGE_SOURCE, SERVE_IMAGE_FILES, staging / "serve", model)
        ),
    )


def check_trainable(model: ModelConfig) -> None:
    """Config the training workflow cannot run with fails the synth, naming the field."""
    check_fractions(model.trainer)
    direction(model.gate.metric)
    for name in model.gate.thresholds:
        direction(name)


def metric_definitions(model: ModelConfig) -> list[dict[str, str]]:
    """What SageMaker scrapes from the trainer's log (containers/train/CONTRACT.md, Outputs)."""
    metric = model.gate.metric
    return [
        {"Name": f"{split}:{metric}", "Regex": f"{split}-{metric}=([0-9.eE+-]+);"}
        for split in ("validation", "test")
    ]


def _job_definition(model: ModelConfig, *, image_uri: str, role_arn: str, key_arn: str) -> dict[str, Any]:
    """What a single training job and every trial of a tuning job share: the role, the image and its metric
    definitions, the run's channels, the output, the resources, the stopping condition, spot, the network.
    In the order CreateTrainingJob's request writes them (a synthesized template stays as it was)."""
    trainer = model.trainer
    resources: dict[str, Any] = {
        "InstanceType": trainer.instance_type,
        "InstanceCount": trainer.instance_count,
        "VolumeSizeInGB": TRAINING_VOLUME_GB,
    }
    # SageMaker refuses a volume key for instance types with local storage, which their hardware encrypts.
    if not has_instance_storage(trainer.instance_type):
        resources["VolumeKmsKeyId"] = key_arn
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": trainer.max_runtime_s}
    if trainer.use_spot:
        stopping["MaxWaitTimeInSeconds"] = trainer.max_wait_s
    return {
        "RoleArn": role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(model),
        },
        "InputDataConfig": [
            {
                "ChannelName": split,
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri.$": f"$.run.{split}_uri",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for split in SPLITS
        ]
        + [
            {
                # The champion's model.tar.gz or none.json (training.champion), scored on the same test split.
                "ChannelName": CHAMPION,
                "ContentType": "application/x-gzip",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri.$": "$.run.champion_uri",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath.$": "$.run.output_uri", "KmsKeyId": key_arn},
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": trainer.use_spot,
    }


def _tags(model: ModelConfig, names: Names, run_path: str) -> list[dict[str, str]]:
    return [
        {"Key": "headrace:stage", "Value": names.stage},
        {"Key": "headrace:model", "Value": model.name},
        {"Key": "headrace:run", "Value.$": run_path},
    ]


def training_job_request(
    model: ModelConfig,
    names: Names,
    *,
    image_uri: str,
    role_arn: str,
    key_arn: str,
    network: NetworkSettings,
) -> dict[str, Any]:
    """CreateTrainingJob's parameters; `.$` keys take the job name and S3 locations from Prepare's `$.run`."""
    definition = _job_definition(model, image_uri=image_uri, role_arn=role_arn, key_arn=key_arn)
    role = definition.pop("RoleArn")
    algorithm = definition.pop("AlgorithmSpecification")
    return {
        "TrainingJobName.$": "$.run.job_name",
        "RoleArn": role,
        "AlgorithmSpecification": algorithm,
        "HyperParameters": hyperparameters_for(model),
        **definition,
        "CheckpointConfig": {"S3Uri.$": "$.run.checkpoint_uri", "LocalPath": CHECKPOINT_LOCAL_PATH},
        # The stage's: no network for the container at all, and/or the stage's own subnets.
        **network.request_fields(),
        "Tags": _tags(model, names, "$.run.job_name"),
    }


def tuning_job_request(
    model: ModelConfig,
    names: Names,
    *,
    image_uri: str,
    role_arn: str,
    key_arn: str,
    network: NetworkSettings,
    warm_start: bool,
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob's parameters for a tuned model: the tuning config (headrace.training.
    tuning) and a TrainingJobDefinition made of the very pieces a single training job is, with the static
    hyperparameters; `warm_start` adds the parent Prepare found (`$.run.parent_tuning_job`).

    No CheckpointConfig: the trials of one tuning job would share its S3 URI, and a trial must never resume
    from another trial's checkpoint (an interrupted spot trial starts over instead)."""
    definition = _job_definition(model, image_uri=image_uri, role_arn=role_arn, key_arn=key_arn)
    request: dict[str, Any] = {
        "HyperParameterTuningJobName.$": "$.run.tuning_job_name",
        "HyperParameterTuningJobConfig": tuning_job_config(model),
        "TrainingJobDefinition": {
            **definition,
            "StaticHyperParameters": static_hyperparameters_for(model),
            # HyperParameterTrainingJobDefinition takes EnableNetworkIsolation and VpcConfig as
            # CreateTrainingJob does (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
            # API_HyperParameterTrainingJobDefinition.html).
            **network.request_fields(),
        },
    }
    if warm_start:
        # The data changes between runs (each run is a new dataset version), which is what TransferLearning
        # is for; IdenticalDataAndAlgorithm requires the same input data
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-warm-start.html).
        request["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName.$": "$.run.parent_tuning_job"}],
            "WarmStartType": "TransferLearning",
        }
    request["Tags"] = _tags(model, names, "$.run.job_name")
    return request


class TrainingSteps(Construct):
    """The four Lambda functions every model's training workflow calls, and the training image.

    Shared by all models: a function reads the model's config (its asset's models.json) by the payload's
    `model`. Each model's `Training` construct adds the grants for its own registry group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        store: DataStore,
        factory: FunctionFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        layers = managed_layers(self)
        self._names, self._store, self._factory, self._layers = names, store, factory, layers
        self._tuning_result: lambda_.Function | None = None

        def build(step: StepFunction) -> lambda_.Function:
            return factory.function(self, step, layers)

        self.prepare = build(
            StepFunction(
                construct_id="Prepare",
                folder="prepare",
                settings=BucketStepSettings,
                function_name=names.prepare_function,
                description="Splits a dataset version into train/validation/test for its training run",
                # Reading and splitting a file of up to schema.max_file_mb as text; memory also buys CPU.
                memory_mb=3008,
                timeout=Duration.minutes(10),
                # The layer brings numpy (the seeded split) and pyarrow (Parquet datasets only); the function
                # never imports pandas itself (headrace.training.table).
                needs_pandas=True,
            )
        )
        self.evaluate = build(
            StepFunction(
                construct_id="Evaluate",
                folder="evaluate",
                settings=BucketStepSettings,
                function_name=names.evaluate_function,
                description="Judges a trained candidate against the quality gate and the current champion",
                memory_mb=512,
                timeout=Duration.minutes(2),
                needs_pandas=False,
            )
        )
        self.register = build(
            StepFunction(
                construct_id="Register",
                folder="register",
                settings=RegisterSettings,
                function_name=names.register_function,
                description="Registers a candidate that passed the gate as a new model version, with lineage",
                memory_mb=512,
                timeout=Duration.minutes(2),
                needs_pandas=False,
            )
        )
        self.run_failed = build(
            StepFunction(
                construct_id="RunFailed",
                folder="run_failed",
                settings=RunFailedSettings,
                function_name=names.run_failed_function,
                description="Records why a training run failed and announces it on the event bus",
                memory_mb=256,
                timeout=Duration.minutes(1),
                needs_pandas=False,
            )
        )

        bucket, ledger = store.bucket, store.ledger
        bucket.grant_read(self.prepare, DATASET_KEYS)
        bucket.grant_put(self.prepare, SPLIT_KEYS)
        # The champion's artifact, copied into the run's champion channel.
        bucket.grant_read(self.prepare, OUTPUT_KEYS)
        bucket.grant_read(self.evaluate, OUTPUT_KEYS)
        bucket.grant_put(self.evaluate, EVALUATION_KEYS)
        bucket.grant_put(self.register, LINEAGE_KEYS)
        nag.accept_object_grants(self.prepare, bucket, read=[DATASET_KEYS, OUTPUT_KEYS], put=[SPLIT_KEYS])
        nag.accept_object_grants(self.evaluate, bucket, read=[OUTPUT_KEYS], put=[EVALUATION_KEYS])
        nag.accept_object_grants(self.register, bucket, put=[LINEAGE_KEYS])
        for function in (self.prepare, self.evaluate, self.register, self.run_failed):
            ledger.grant_read_write_data(function)
            nag.accept_key_grants(function)
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_EVENT_BUS)
        default_bus.grant_put_events_to(self.run_failed)
        # ListModelPackages has no resource-level permissions: it is allowed on "*" or not at all
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html).
        for function in (self.prepare, self.evaluate, self.register):
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
            )
            nag.accept_unscoped(function, nag.LIST_MODEL_PACKAGES)

        # The built-in trainer's images, shared by every xgboost model. The serving image is registered
        # with each version (its InferenceSpecification) and run by the endpoints.
        images = image_assets(self, staging_directory(self))
        self.image = images.train
        self.serving_image = images.serve

    def tuning_result(self) -> lambda_.Function:
        """The TuningResult function, made for the first tuned model: a deployment without one has none (its
        template stays as it was). Each tuned model's `Training` grants it that model's jobs."""
        if self._tuning_result is None:
            function = self._factory.function(
                self,
                StepFunction(
                    construct_id="TuningResult",
                    folder="tuning_result",
                    settings=TuningResultSettings,
                    function_name=self._names.tuning_result_function,
                    description="Lists a finished tuning job's trials and hands on the best one, with why",
                    memory_mb=256,
                    timeout=Duration.minutes(2),
                    needs_pandas=False,
                ),
                self._layers,
            )
            self._store.ledger.grant_read_write_data(function)
            nag.accept_key_grants(function)
            # ListHyperParameterTuningJobs has no resource-level permissions: it is allowed on "*" or not
            # at all (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html).
            # Prepare looks up the model's newest Completed tuning job to warm-start from.
            self.prepare.add_to_role_policy(
                iam.PolicyStatement(actions=["sagemaker:ListHyperParameterTuningJobs"], resources=["*"])
            )
            nag.accept_unscoped(self.prepare, nag.LIST_TUNING_JOBS)
            self._tuning_result = function
        return self._tuning_result


class Training(Construct):
    """A model's training workflow: its state machine and the SageMaker execution role its jobs run as.

    `images`: the model's training and serving images: the shared ones, or a custom model's own.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        model: ModelConfig,
        store: DataStore,
        steps: TrainingSteps,
        stage: StageSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        try:
            check_trainable(model)
        except ValueError as exc:
            raise ValueError(f"model '{model.name}': {exc}") from None
        stack = Stack.of(self)
        self.model_name = model.name
        name = names.training_state_machine(model.name)
        group = names.model_package_group(model.name)
        self.training_jobs_arn = stack.format_arn(
            service="sagemaker", resource="training-job", resource_name=training_job_name_glob(model.name)
        )
        if model.trainer.framework == "custom":
            self.images = image_assets(self, staging_directory(self), model)
        else:
            self.images = ModelImages(train=steps.image, serve=steps.serving_image)
        self.role = self._execution_role(model, store, self.images.train, stage.network)
        self._grant_registry(steps, group)

        payload_base = {
            "model": sfn.JsonPath.string_at("$.model"),
            "dataset": sfn.JsonPath.object_at("$.dataset"),
        }
        prepare = self._invoke(
            "Prepare",
            steps.prepare,
            {
                **payload_base,
                "extra": sfn.JsonPath.list_at("$.extra"),
                "execution": execution_payload(),
            },
            "$.run",
        )
        tuned = model.trainer.tuning is not None
        artifacts = sfn.JsonPath.string_at("$.training.ModelArtifacts.S3ModelArtifacts")
        evaluate = self._invoke(
            "Evaluate",
            steps.evaluate,
            {**payload_base, "run": sfn.JsonPath.object_at("$.run"), "model_artifacts": artifacts},
            "$.gate",
        )
        register = self._invoke(
            "Register",
            steps.register,
            {
                **payload_base,
                "run": sfn.JsonPath.object_at("$.run"),
                "gate": sfn.JsonPath.object_at("$.gate"),
                "model_artifacts": artifacts,
                "training_job_arn": sfn.JsonPath.string_at("$.training.TrainingJobArn"),
                "image": {"uri": self.images.train.image_uri, "digest": self.images.train.asset_hash},
                "serving_image": {
                    "uri": self.images.serve.image_uri,
                    "digest": self.images.serve.asset_hash,
                },
                **({"tuning": sfn.JsonPath.object_at("$.training.tuning")} if tuned else {}),
            },
            "$.registered",
        )
        run_failed = self._invoke(
            "RunFailed",
            steps.run_failed,
            {
                "state": sfn.JsonPath.entire_payload,
                "execution": execution_payload(),
            },
            "$.failure",
        )
        failed = sfn.Fail(self, "Failed", error="TrainingRunFailed", cause_path="$.failure.cause")
        run_failed.next(failed)
        step_functions: list[lambda_.IFunction] = [
            steps.prepare,
            steps.evaluate,
            steps.register,
            steps.run_failed,
        ]
        if tuned:
            tune = self._tune(model, names, store, steps, stage.network)
            training_tasks = tune.tasks
            step_functions.insert(1, steps.tuning_result())
        else:
            train = self._train(model, names, store, self.images.train, stage.network)
            training_tasks = [train]
        for task in (prepare, *training_tasks, evaluate, register):
            task.add_catch(run_failed, errors=[sfn.Errors.ALL], result_path="$.error")

        gate = (
            sfn.Choice(self, "Gate", comment="Did the candidate pass the quality gate?")
            .when(sfn.Condition.boolean_equals("$.gate.passed", True), register)
            .otherwise(
                sfn.Succeed(
                    self,
                    "Rejected",
                    comment="A rejected candidate is a successful run: Evaluate recorded the reasons",
                )
            )
        )
        register.next(sfn.Succeed(self, "Registered"))
        if tuned:
            # Prepare -> warm or cold tuning job -> TuningResult -> Evaluate -> Gate.
            tune.result.next(evaluate).next(gate)
            definition = prepare.next(tune.start)
        else:
            definition = prepare.next(train).next(evaluate).next(gate)

        self.state_machine = logged_state_machine(self, name, definition, stage, store.key)
        self._grant_training(stack)
        if tuned:
            self._grant_tuning(stack, steps.tuning_result())
        nag.accept_workflow(self.state_machine, step_functions)
        Tags.of(self).add("headrace:model", model.name)

    def _invoke(
        self, construct_id: str, function: lambda_.IFunction, payload: Mapping[str, Any], result_path: str
    ) -> tasks.LambdaInvoke:
        return invoke_step(self, construct_id, function, payload, result_path)

    def _train(
        self,
        model: ModelConfig,
        names: Names,
        store: DataStore,
        image: ecr_assets.DockerImageAsset,
        network: NetworkSettings,
    ) -> sfn.CustomState:
        return sagemaker_task(
            self,
            "Train",
            action="createTrainingJob.sync",
            parameters=training_job_request(
                model,
                names,
                image_uri=image.image_uri,
                role_arn=self.role.role_arn,
                key_arn=store.key.key_arn,
                network=network,
            ),
            comment="A SageMaker training job on the run's splits; waits for it to end",
            result_path="$.training",
        )

    def _tune(
        self,
        model: ModelConfig,
        names: Names,
        store: DataStore,
        steps: TrainingSteps,
        network: NetworkSettings,
    ) -> TuningStates:
        """Choice(a parent tuning job?) -> TuneWarm | TuneCold (createHyperParameterTuningJob.sync, at
        `$.tuning`) -> TuningResult (the best trial, at `$.training`)."""

        def tune(construct_id: str, warm: bool, comment: str) -> sfn.CustomState:
            return sagemaker_task(
                self,
                construct_id,
                action="createHyperParameterTuningJob.sync",
                parameters=tuning_job_request(
                    model,
                    names,
                    image_uri=self.images.train.image_uri,
                    role_arn=self.role.role_arn,
                    key_arn=store.key.key_arn,
                    network=network,
                    warm_start=warm,
                ),
                comment=comment,
                result_path="$.tuning",
            )

        warm = tune(
            "TuneWarm",
            True,
            "A SageMaker tuning job warm-started from the model's previous one; waits for it to end",
        )
        cold = tune("TuneCold", False, "A SageMaker tuning job on the run's splits; waits for it to end")
        result = self._invoke(
            "TuningResult",
            steps.tuning_result(),
            {
                "model": sfn.JsonPath.string_at("$.model"),
                "run": sfn.JsonPath.object_at("$.run"),
                "tuning": sfn.JsonPath.object_at("$.tuning"),
            },
            "$.training",
        )
        warm.next(result)
        cold.next(result)
        parent = "$.run.parent_tuning_job"
        start = (
            sfn.Choice(self, "WarmStart", comment="Has the model a Completed tuning job to start from?")
            .when(
                sfn.Condition.and_(sfn.Condition.is_present(parent), sfn.Condition.is_not_null(parent)), warm
            )
            .otherwise(cold)
        )
        return TuningStates(start=start, result=result, tasks=[warm, cold, result])

    def _execution_role(
        self,
        model: ModelConfig,
        store: DataStore,
        image: ecr_assets.DockerImageAsset,
        network: NetworkSettings,
    ) -> iam.Role:
        """What the model's training jobs may do: read the run's splits, write its output and checkpoints,
        pull the image, log and report metrics. Nothing outside `<model>/runs/`."""
        runs = f"{model.name}/runs/*"
        role = SageMakerServiceRole(
            self,
            "SageMakerRole",
            description=f"Training jobs of Headrace model {model.name}",
            store=store,
            # Checkpoints go both ways: a spot job resumes from what an interrupted attempt wrote.
            read=[f"{runs}/splits/*", f"{runs}/checkpoints/*"],
            put=[f"{runs}/output/*", f"{runs}/checkpoints/*"],
            image=image,
            instance_type=model.trainer.instance_type,
            network=network,
        )
        stack = Stack.of(self)
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=TRAINING_LOG_GROUP,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                # The group's own ARN too: CloudWatch Logs checks group-level actions on it (CloudWatch Logs
                # API reference, LogGroup.logGroupArn: "use this version ... in IAM policies").
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[log_group, f"{log_group}:*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{log_group}:log-stream:*"],
            )
        )
        nag.accept_wildcards(
            role,
            nag.SAGEMAKER_LOGS,
            resources=[nag.flat(role, f"{log_group}{streams}") for streams in (":*", ":log-stream:*")],
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                # PutMetricData has no resource-level permissions; the namespace condition narrows it.
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_LOG_GROUP}},
            )
        )
        nag.accept_unscoped(role, nag.PUT_METRIC_DATA)
        return role

    def _grant_registry(self, steps: TrainingSteps, group: str) -> None:
        stack = Stack.of(self)
        group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group)
        # Versions are model-package/<group, lowercased>/<n>; Headrace's group names are lowercase already.
        versions_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group}/*"
        )
        for function in (steps.prepare, steps.evaluate):
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[versions_arn])
            )
        steps.register.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackageGroup"],
                resources=[group_arn],
            )
        )
        steps.register.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:AddTags",
                ],
                resources=[group_arn, versions_arn],
            )
        )
        for function in (steps.prepare, steps.evaluate, steps.register):
            nag.accept_wildcards(function, nag.MODEL_VERSIONS, resources=[nag.flat(self, versions_arn)])

    def _grant_tuning(self, stack: Stack, tuning_result: lambda_.Function) -> None:
        """What createHyperParameterTuningJob.sync needs besides what `_grant_training` gives (the PassRole,
        ListTags): the tuning calls on this model's tuning jobs, the trials they start, and the managed rule
        Step Functions hears a tuning job's end by (https://docs.aws.amazon.com/step-functions/latest/dg/
        sagemaker-iam.html, "CreateHyperParameterTuningJob"); and TuningResult's reads of the same jobs."""
        machine = self.state_machine
        tuning_jobs = stack.format_arn(
            service="sagemaker",
            resource="hyper-parameter-tuning-job",
            resource_name=tuning_job_name_glob(self.model_name),
        )
        trials = stack.format_arn(
            service="sagemaker",
            resource="training-job",
            resource_name=tuning_trial_name_glob(self.model_name),
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:AddTags",
                ],
                resources=[tuning_jobs],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[trials],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(service="events", resource="rule", resource_name=TUNING_SYNC_RULE)
                ],
            )
        )
        # ListTrainingJobsForHyperParameterTuningJob is checked on the tuning job
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html).
        tuning_result.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                ],
                resources=[tuning_jobs],
            )
        )
        tuning_result.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=[trials])
        )

    def _grant_training(self, stack: Stack) -> None:
        """What the state machine needs for createTrainingJob.sync: the job calls on this model's jobs, the
        role they run as, and the managed EventBridge rule Step Functions uses to hear a job's end."""
        machine = self.state_machine
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[self.training_jobs_arn],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)],
            )
        )
        # Step Functions' documented policy for createTrainingJob.sync grants ListTags on "*"
        # (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html, "Run a Job (.sync)").
        machine.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:ListTags"], resources=["*"]))
        nag.accept_unscoped(machine.role, nag.SYNC_LIST_TAGS)
