"""The local SageMaker refuses what SageMaker refuses: requests are checked against botocore's service model
and SageMaker's documented rules before moto sees them, over HTTP, with a 400 ValidationException naming the
member. The client sends unvalidated, as Step Functions' service integrations do on the local plane (moto's
interpreter turns botocore's client-side validation off), so the server's check is the one under test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from headrace.config import ModelConfig
from headrace.local.aws import LOCAL_REGION
from headrace.local.lambda_runtime import HandlerRuntime
from headrace.local.network import free_port
from headrace.local.sagemaker.hosting import EndpointHosting
from headrace.local.seams import installed
from headrace.local.seams.sagemaker_rules import step_fits
from headrace.local.targets import EventDelivery
from headrace.naming import Names
from headrace.serving import rollout
from headrace.stages import StageSettings, load_stage
from tests.support.moto import PLANE_CREDENTIALS

ROLE = "arn:aws:iam::123456789012:role/headrace-hosting"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/headrace-serve:1"
# What rollout.deployment_config produced for dev's one-instance endpoints before finding 3 was fixed.
OLD_DEV_CANARY = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 60,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        },
        "TerminationWaitInSeconds": 120,
        "MaximumExecutionTimeoutInSeconds": 1080,
    },
}


@dataclass
class RecordedHosting:
    """Stands in for the endpoint containers: only what the hosting seam hands it is recorded."""

    updates: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)

    def created(self, name: str, config_name: str) -> None:
        pass

    def deleted(self, name: str) -> None:
        pass

    def update(self, name: str, config_name: str, deployment: dict[str, Any] | None) -> None:
        self.updates.append((name, config_name, deployment))


@dataclass
class LocalSageMaker:
    client: Any
    hosting: RecordedHosting


@pytest.fixture(scope="module")
def local() -> Iterator[LocalSageMaker]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "sagemaker",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=LOCAL_REGION,
        aws_access_key_id=PLANE_CREDENTIALS.access_key_id,
        aws_secret_access_key=PLANE_CREDENTIALS.secret_access_key,
        config=Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"}),
    )
    hosting = RecordedHosting()
    # The local plane's own seams (no Lambda or event runs here): the check is part of what it installs.
    unused_runtime, unused_delivery = cast(HandlerRuntime, None), cast(EventDelivery, None)
    try:
        with installed(unused_runtime, unused_delivery, hosting=cast(EndpointHosting, hosting)):
            yield LocalSageMaker(client, hosting)
    finally:
        server.stop()


def refusal(call: Any, **request: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call(**request)
    error = refused.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(error["Error"]["Message"])


def training_request(name: str, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://data/churn/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    return request | changes


def variant(model: str, count: int, instance_type: str = "ml.m5.large") -> dict[str, Any]:
    return {
        "VariantName": rollout.VARIANT,
        "ModelName": model,
        "InstanceType": instance_type,
        "InitialInstanceCount": count,
        "InitialVariantWeight": 1.0,
    }


# --- the service model -----------------------------------------------------------------------------------


def test_a_missing_required_member_is_refused_naming_it(local: LocalSageMaker) -> None:
    request = training_request("no-role")
    del request["RoleArn"]
    assert "RoleArn" in refusal(local.client.create_training_job, **request)


def test_a_name_outside_the_pattern_is_refused_as_sagemaker_words_it(local: LocalSageMaker) -> None:
    message = refusal(
        local.client.create_endpoint_config,
        EndpointConfigName="churn_v1",
        ProductionVariants=[variant("churn-v1", 1)],
    )
    assert "Value 'churn_v1' at 'endpointConfigName' failed to satisfy constraint" in message
    assert "regular expression pattern" in message


def test_an_instance_type_outside_the_enum_is_refused_with_its_path(local: LocalSageMaker) -> None:
    message = refusal(
        local.client.create_endpoint_config,
        EndpointConfigName="churn-enum",
        ProductionVariants=[variant("churn-v1", 1, instance_type="ml.m5.huge")],
    )
    assert "at 'productionVariants.1.member.instanceType'" in message and "enum value set" in message


def test_a_value_over_the_model_s_maximum_is_refused(local: LocalSageMaker) -> None:
    deployment = {"BlueGreenUpdatePolicy": dict(OLD_DEV_CANARY["BlueGreenUpdatePolicy"])}
    deployment["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = 28_801
    message = refusal(
        local.client.update_endpoint,
        EndpointName="any",
        EndpointConfigName="any",
        DeploymentConfig=deployment,
    )
    assert "deploymentConfig.blueGreenUpdatePolicy.maximumExecutionTimeoutInSeconds" in message
    assert "less than or equal to 28800" in message


def test_every_mistyped_member_is_named(local: LocalSageMaker) -> None:
    resources = {"InstanceType": "ml.m5.large", "InstanceCount": "1", "VolumeSizeInGB": 30}
    request = training_request("mistyped", HyperParameters={"eta": 0.3}, ResourceConfig=resources)
    message = refusal(local.client.create_training_job, **request)
    assert "2 validation errors detected" in message
    assert "HyperParameters.eta" in message and "ResourceConfig.InstanceCount" in message


# --- managed spot training (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html)


def test_spot_training_without_a_wait_is_refused(local: LocalSageMaker) -> None:
    request = training_request("spot-no-wait", EnableManagedSpotTraining=True)
    assert "MaxWaitTimeInSeconds is required" in refusal(local.client.create_training_job, **request)


def test_spot_training_that_waits_less_than_it_runs_is_refused(local: LocalSageMaker) -> None:
    stopping = {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 1800}
    request = training_request("spot-short", EnableManagedSpotTraining=True, StoppingCondition=stopping)
    message = refusal(local.client.create_training_job, **request)
    assert (
        "MaxWaitTimeInSeconds (1800) must be equal to or greater than MaxRuntimeInSeconds (3600)" in message
    )


def test_a_wait_without_spot_training_is_refused(local: LocalSageMaker) -> None:
    stopping = {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    request = training_request("wait-on-demand", StoppingCondition=stopping)
    assert "Invalid MaxWaitTimeInSeconds" in refusal(local.client.create_training_job, **request)


def test_a_run_over_28_days_is_refused(local: LocalSageMaker) -> None:
    request = training_request("too-long", StoppingCondition={"MaxRuntimeInSeconds": 28 * 86_400 + 1})
    assert "28 days" in refusal(local.client.create_training_job, **request)


def test_spot_training_with_wait_and_checkpoints_is_accepted(local: LocalSageMaker) -> None:
    request = training_request(
        "spot-ok",
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        CheckpointConfig={"S3Uri": "s3://data/churn/checkpoints/spot-ok", "LocalPath": "/opt/ml/checkpoints"},
    )
    assert local.client.create_training_job(**request)["TrainingJobArn"].endswith("/spot-ok")


# --- volume keys on instance types with local storage ------------------------------------------------------


def test_a_volume_key_on_a_training_instance_with_local_storage_is_refused(local: LocalSageMaker) -> None:
    resources = {
        "InstanceType": "ml.g5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
        "VolumeKmsKeyId": KEY,
    }
    request = training_request("nvme", ResourceConfig=resources)
    assert "VolumeKmsKeyId" in refusal(local.client.create_training_job, **request)


def test_a_volume_key_on_an_endpoint_instance_with_local_storage_is_refused(local: LocalSageMaker) -> None:
    message = refusal(
        local.client.create_endpoint_config,
        EndpointConfigName="nvme-endpoint",
        ProductionVariants=[variant("churn-v1", 1, instance_type="ml.m5d.large")],
        KmsKeyId=KEY,
    )
    assert "KmsKeyId cannot be specified for ml.m5d.large" in message


def test_a_versioned_model_package_may_not_also_be_named(local: LocalSageMaker) -> None:
    message = refusal(
        local.client.create_model_package,
        ModelPackageGroupName="churn",
        ModelPackageName="churn-v1",
        ModelApprovalStatus="PendingManualApproval",
    )
    assert "ModelPackageName is not applicable to a versioned model" in message


# --- blue/green step sizes (API_TrafficRoutingConfig.html, deployment-guardrails-blue-green-canary.html) ----


@pytest.mark.parametrize(
    ("linear", "size", "instances", "fits"),
    [
        (False, {"Type": "CAPACITY_PERCENT", "Value": 10}, 1, False),  # a fleet of one cannot be split
        (False, {"Type": "CAPACITY_PERCENT", "Value": 50}, 1, False),
        (False, {"Type": "CAPACITY_PERCENT", "Value": 10}, 2, True),
        (False, {"Type": "CAPACITY_PERCENT", "Value": 51}, 10, False),  # over half the fleet
        (False, {"Type": "INSTANCE_COUNT", "Value": 1}, 1, False),
        (False, {"Type": "INSTANCE_COUNT", "Value": 1}, 2, True),
        (False, {"Type": "INSTANCE_COUNT", "Value": 2}, 3, False),
        (True, {"Type": "CAPACITY_PERCENT", "Value": 5}, 4, False),  # a linear step is 10-50%
        (True, {"Type": "CAPACITY_PERCENT", "Value": 25}, 4, True),
        (True, {"Type": "CAPACITY_PERCENT", "Value": 25}, 1, False),
        (True, {"Type": "INSTANCE_COUNT", "Value": 1}, 20, False),
        (True, {"Type": "INSTANCE_COUNT", "Value": 2}, 20, True),
    ],
)
def test_a_step_fits_a_fleet_only_in_whole_instances_up_to_half_of_it(
    linear: bool, size: dict[str, Any], instances: int, fits: bool
) -> None:
    assert step_fits(linear, size, instances) is fits


def host(local: LocalSageMaker, model: ModelConfig, names: Names, endpoint: str) -> list[str]:
    """Two versions' Model and EndpointConfig as the deploy workflow makes them; the endpoint on the first."""
    configs = []
    for version in (1, 2):
        name = f"{endpoint}-v{version}-0123abcd"
        local.client.create_model(
            **rollout.model_request(
                model,
                names,
                name=name,
                version=version,
                image=IMAGE,
                model_data_url=f"s3://data/{model.name}/models/v{version}/model.tar.gz",
                role_arn=ROLE,
            )
        )
        local.client.create_endpoint_config(
            **rollout.endpoint_config_request(
                model,
                names,
                name=name,
                version=version,
                capture_uri=f"s3://data/{rollout.capture_prefix(model.name)}",
                key_arn=KEY,
            )
        )
        configs.append(name)
    local.client.create_endpoint(EndpointName=endpoint, EndpointConfigName=configs[0])
    return configs


def test_the_old_dev_canary_on_one_instance_is_refused(
    local: LocalSageMaker, example_model: ModelConfig
) -> None:
    """Finding 3: the second dev rollout asked a one-instance fleet for a 10% canary."""
    dev = StageSettings().apply(example_model)
    assert dev.rollout.instance_count == 1
    configs = host(local, dev, Names("dev"), "old-dev")
    message = refusal(
        local.client.update_endpoint,
        EndpointName="old-dev",
        EndpointConfigName=configs[1],
        DeploymentConfig=OLD_DEV_CANARY,
    )
    assert "CanarySize 10 (CAPACITY_PERCENT)" in message and "1 instance(s)" in message


def test_the_dev_rollout_of_a_one_instance_endpoint_is_accepted_all_at_once_with_its_bake(
    local: LocalSageMaker, example_model: ModelConfig
) -> None:
    names = Names("dev")
    dev = StageSettings().apply(example_model)
    configs = host(local, dev, names, "churn-dev")
    deployment = rollout.deployment_config(dev, names)
    local.client.update_endpoint(
        EndpointName="churn-dev", EndpointConfigName=configs[1], DeploymentConfig=deployment
    )
    assert local.hosting.updates[-1] == ("churn-dev", configs[1], deployment)
    policy = deployment["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    assert policy["TerminationWaitInSeconds"] == dev.rollout.bake_s
    assert len(deployment["AutoRollbackConfiguration"]["Alarms"]) == len(rollout.GUARDS)


def test_the_prod_rollout_keeps_the_model_s_canary_and_is_accepted(
    local: LocalSageMaker, example_model: ModelConfig, repo_root: Any
) -> None:
    names = Names("prod")
    prod = load_stage("prod", repo_root / "stages.yaml").apply(example_model)
    assert prod.rollout.instance_count >= rollout.MIN_SPLIT_FLEET
    configs = host(local, prod, names, "churn-prod")
    deployment = rollout.deployment_config(prod, names)
    local.client.update_endpoint(
        EndpointName="churn-prod", EndpointConfigName=configs[1], DeploymentConfig=deployment
    )
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["CanarySize"] == {
        "Type": "CAPACITY_PERCENT",
        "Value": example_model.rollout.canary_percent,
    }


def test_an_all_at_once_routing_without_its_wait_interval_is_refused(local: LocalSageMaker) -> None:
    """What rollout.deployment_config sent for `strategy: all_at_once` before: the API model requires it."""
    deployment = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE"}}}
    message = refusal(
        local.client.update_endpoint,
        EndpointName="any",
        EndpointConfigName="any",
        DeploymentConfig=deployment,
    )
    assert "WaitIntervalInSeconds" in message
