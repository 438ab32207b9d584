"""Reading a deployment: a stack that is missing and an AWS that does not answer are told apart."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from headrace.config import load_models
from headrace.deployment import DeploymentNotFound, DeploymentUnreachable, deployment_of
from headrace.naming import Names, Outputs

NAMES = Names("dev")


class Unanswered:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        raise self.error


class Deployed:
    """DescribeStacks answering with fixed outputs per stack."""

    def __init__(self, outputs: dict[str, dict[str, str]]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        listed = [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs[StackName].items()]
        return {"Stacks": [{"Outputs": listed}]}


def _outputs(**pipeline: str) -> dict[str, dict[str, str]]:
    data = {Outputs.DATA_BUCKET: "bucket", Outputs.LEDGER_TABLE: "table"}
    required = {Outputs.INGEST_FUNCTION: "ingest", Outputs.training_state_machine("churn"): "arn:training"}
    return {NAMES.data_stack: data, NAMES.pipeline_stack: required | pipeline}


def test_a_missing_stack_is_not_found_and_says_how_to_create_it() -> None:
    missing = ClientError(
        {"Error": {"Code": "ValidationError", "Message": "does not exist"}}, "DescribeStacks"
    )
    with pytest.raises(DeploymentNotFound, match="headrace local up"):
        deployment_of(Unanswered(missing), NAMES, load_models())


def test_an_endpoint_that_does_not_answer_is_unreachable() -> None:
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    with pytest.raises(DeploymentUnreachable, match="cannot reach AWS"):
        deployment_of(Unanswered(down), NAMES, load_models())


def test_a_model_s_serving_image_is_read_from_the_pipeline_stack_s_outputs() -> None:
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets:" + "d" * 64
    outputs = _outputs(
        **{Outputs.serving_image("churn"): image, Outputs.serving_image_digest("churn"): "d" * 64}
    )

    churn = deployment_of(Deployed(outputs), NAMES, load_models()).model("churn")

    assert churn.serving_image is not None
    assert (churn.serving_image.uri, churn.serving_image.digest) == (image, "d" * 64)


def test_a_stack_deployed_before_the_serving_image_outputs_names_no_image() -> None:
    churn = deployment_of(Deployed(_outputs()), NAMES, load_models()).model("churn")

    assert churn.serving_image is None
