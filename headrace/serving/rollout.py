"""What a rollout asks SageMaker for, derived from the model config alone: one definition shared by the CDK
app (the DeploymentConfig in the deploy state machine) and the deploy functions (Model, EndpointConfig).

Blue/green on the endpoint itself (UpdateEndpoint's DeploymentConfig): traffic shifts to the new fleet in a
canary or linear steps, the guard alarms are watched throughout and during the bake, and SageMaker rolls
back on its own when one fires. A rollback leaves the endpoint InService on the *old* config, which is why
the deploy workflow verifies the end state instead of trusting the status.

A canary or linear step is whole instances of the new fleet, at most half of it (TrafficRoutingConfig,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html): a fleet of one
cannot be split, and SageMaker refuses a canary on it. A one-instance endpoint (dev's usual size) therefore
shifts all at once, then bakes with the guard alarms watched and rolls back as any rollout does; the model's
canary or linear steps apply wherever the stage runs two instances or more (prod's `min_instance_count`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Final

from headrace.config import ModelConfig, RolloutConfig
from headrace.naming import Names
from headrace.serving.capture import VARIANT as VARIANT  # re-exported: the rollout's users name them here
from headrace.serving.capture import capture_prefix as capture_prefix
from headrace.stages import NetworkSettings
from headrace.training.instances import has_instance_storage

GUARDS: Final = ("5xx", "latency", "quality")
CONTENT_TYPES: Final = {"csv": ["text/csv"], "json": ["application/json"]}
# UpdateEndpoint's BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 600 to 28,800.
MIN_EXECUTION_S: Final = 600
MAX_EXECUTION_S: Final = 28_800
# Headrace's own metrics emitted by the serving container (containers/serve/CONTRACT.md).
QUALITY_METRIC: Final = "InvalidPredictions"
_HOSTED_NAME: Final = re.compile(r"-v(\d+)-[0-9a-f]{8}$")
# The smallest fleet a canary or linear step can be cut from (one instance, at most half the fleet).
MIN_SPLIT_FLEET: Final = 2


def strategy(rollout: RolloutConfig) -> str:
    """The traffic shifting SageMaker can run for this fleet: the model's own; a fleet of one, all at once."""
    return rollout.strategy if rollout.instance_count >= MIN_SPLIT_FLEET else "all_at_once"


def traffic_steps(rollout: RolloutConfig) -> int:
    """How many shifts the new fleet's traffic takes to reach 100%."""
    if strategy(rollout) == "canary":
        return 2
    if strategy(rollout) == "linear":
        return math.ceil(100 / rollout.linear_step_percent)
    return 1


def rollout_seconds(rollout: RolloutConfig) -> int:
    """The longest a rollout may take once the new fleet is up: every wait interval, then the bake."""
    return (traffic_steps(rollout) - 1) * rollout.wait_interval_s + rollout.bake_s


def poll_seconds(rollout: RolloutConfig) -> int:
    """How often the deploy workflow looks at the endpoint: a quarter of the rollout's shortest phase, within
    1-30 s, so a seconds-long local rollout is followed as closely as an hour-long one is cheaply."""
    phases = [s for s in (rollout.wait_interval_s, rollout.bake_s) if s > 0]
    return max(1, min(30, min(phases, default=4) // 4))


def deployment_config(model: ModelConfig, names: Names) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig for `model` (the API's shape, as Step Functions passes it on)."""
    rollout = model.rollout
    shifting = strategy(rollout)
    routing: dict[str, Any] = {"Type": shifting.upper(), "WaitIntervalInSeconds": rollout.wait_interval_s}
    if shifting == "canary":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent}
    elif shifting == "linear":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": rollout.linear_step_percent}
    else:
        # Required by the API model even for one step (TrafficRoutingConfig.WaitIntervalInSeconds).
        routing["WaitIntervalInSeconds"] = 0
    execution = min(MAX_EXECUTION_S, max(MIN_EXECUTION_S, 2 * rollout_seconds(rollout) + 600))
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            # The bake: the old fleet stays up, and the alarms watched, this long after the last shift.
            "TerminationWaitInSeconds": rollout.bake_s,
            "MaximumExecutionTimeoutInSeconds": execution,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [{"AlarmName": names.endpoint_alarm(model.name, guard)} for guard in GUARDS]
        },
    }


def hosted_name(
    model: ModelConfig,
    names: Names,
    version: int,
    image: str,
    model_data_url: str,
    network: NetworkSettings | None = None,
) -> str:
    """The Model and EndpointConfig name of `version`: same inputs, same name (replays reuse it). A stage
    network other than the default is an input too: switching isolation on makes a new Model."""
    asked: dict[str, Any] = {
        "image": image,
        "model_data_url": model_data_url,
        # idle_hours (when to delete the endpoint) and autoscaling (a scalable target beside the endpoint,
        # registered by the deploy workflow) are not what a config serves: changing them makes no new config.
        "rollout": model.rollout.model_dump(mode="json", exclude={"idle_hours", "autoscaling"}),
    }
    if network is not None and network != NetworkSettings():
        asked["network"] = network.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
    return names.hosted_model(model.name, version, digest)


def version_of(config_name: str) -> int | None:
    """The registry version a Headrace endpoint config serves, read from its name (None: not one of ours)."""
    match = _HOSTED_NAME.search(config_name)
    return int(match[1]) if match else None


def tags(names: Names, model: str, version: int) -> list[dict[str, str]]:
    """On every hosting resource, so cost splits per model and version."""
    return [
        {"Key": "headrace:stage", "Value": names.stage},
        {"Key": "headrace:model", "Value": model},
        {"Key": "headrace:version", "Value": str(version)},
    ]


def model_request(
    model: ModelConfig,
    names: Names,
    *,
    name: str,
    version: int,
    image: str,
    model_data_url: str,
    role_arn: str,
    network: NetworkSettings | None = None,
) -> dict[str, Any]:
    """CreateModel's parameters: the registry version's image and artifacts, run as the hosting role, in the
    stage's network (EnableNetworkIsolation, VpcConfig)."""
    return {
        "ModelName": name,
        "PrimaryContainer": {
            "Image": image,
            "ModelDataUrl": model_data_url,
            "Environment": {
                "HEADRACE_MODEL": model.name,
                "HEADRACE_MODEL_VERSION": str(version),
                "HEADRACE_METRIC_NAMESPACE": names.metric_namespace,
                "HEADRACE_STAGE": names.stage,
            },
        },
        "ExecutionRoleArn": role_arn,
        **(network or NetworkSettings()).request_fields(),
        "Tags": tags(names, model.name, version),
    }


def endpoint_config_request(
    model: ModelConfig, names: Names, *, name: str, version: int, capture_uri: str, key_arn: str
) -> dict[str, Any]:
    """CreateEndpointConfig's parameters: one variant, data capture of requests and responses to S3."""
    rollout = model.rollout
    request: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": VARIANT,
                "ModelName": name,
                "InstanceType": rollout.instance_type,
                "InitialInstanceCount": rollout.instance_count,
                "InitialVariantWeight": 1.0,
            }
        ],
        "DataCaptureConfig": {
            "EnableCapture": rollout.capture_percent > 0,
            "InitialSamplingPercentage": rollout.capture_percent,
            "DestinationS3Uri": capture_uri,
            "KmsKeyId": key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": CONTENT_TYPES["csv"],
                "JsonContentTypes": CONTENT_TYPES["json"],
            },
        },
        "Tags": tags(names, model.name, version),
    }
    # SageMaker refuses a volume key for instance types with local storage, which their hardware encrypts.
    if not has_instance_storage(rollout.instance_type):
        request["KmsKeyId"] = key_arn
    return request
