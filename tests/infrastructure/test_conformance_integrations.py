"""Every service-integration Task of every stage asks for what the service's API takes: its Parameters checked
against botocore's input shape for the operation (tests/infrastructure/botocore_shapes.py).

cfn-lint and asl-validator read a Task's Parameters as free-form JSON; SageMaker reads them as a
CreateTrainingJob or UpdateEndpoint request and refuses the execution at that state, after training ran.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infrastructure.asl_definitions import StackTemplates, state_machines, states
from tests.infrastructure.botocore_shapes import Operation, operation_for, problems
from tests.support.synth import STAGE_VARIANTS, stage_variant

# The calls the workflows make through Step Functions' integrations (each stage makes all of them).
EXPECTED_OPERATIONS = {
    ("sagemaker", "CreateTrainingJob"),
    ("sagemaker", "CreateEndpoint"),
    ("sagemaker", "UpdateEndpoint"),
    ("sagemaker", "DescribeEndpoint"),
    ("sagemaker", "CreateTransformJob"),
}


def integration_tasks(request: pytest.FixtureRequest, variant: str) -> list[tuple[str, Operation, Any]]:
    """(machine/state, operation, parameters) for every Task of the stage that calls a service API."""
    app = stage_variant(request, variant)
    machines = state_machines(StackTemplates(data=app.data.to_json(), pipeline=app.pipeline.to_json()))
    found = []
    for machine, definition in machines.items():
        for path, state in states(definition):
            operation = operation_for(state["Resource"]) if state["Type"] == "Task" else None
            if operation is not None:
                parameters = state.get("Parameters", state.get("Arguments", {}))
                found.append((f"{machine}/{path}", operation, parameters))
    return found


@pytest.mark.parametrize("variant", sorted(STAGE_VARIANTS))
def test_every_service_integration_sends_a_request_its_api_accepts(
    request: pytest.FixtureRequest, variant: str
) -> None:
    tasks = integration_tasks(request, variant)
    assert {(operation.service, operation.name) for _, operation, _ in tasks} >= EXPECTED_OPERATIONS
    refused = {state: problems(operation, parameters) for state, operation, parameters in tasks}
    assert not {state: found for state, found in refused.items() if found}, refused


CREATE_ENDPOINT = Operation("sagemaker", "CreateEndpoint")


def test_a_misspelled_member_is_refused() -> None:
    found = problems(CREATE_ENDPOINT, {"EndpointName.$": "$.name", "EndpointConfig.$": "$.config"})
    assert found == [
        "CreateEndpoint.EndpointConfig: not a member of CreateEndpointInput",
        "CreateEndpoint.EndpointConfigName: required by CreateEndpointInput, missing",
    ]


def test_a_value_of_the_wrong_type_is_refused_where_it_is_static() -> None:
    found = problems(
        CREATE_ENDPOINT,
        {"EndpointName.$": "$.name", "EndpointConfigName.$": "$.config", "Tags": {"stage": "dev"}},
    )
    assert found == ["CreateEndpoint.Tags: expected a list, got dict"]


def test_a_nested_member_is_checked_against_its_own_shape() -> None:
    training = Operation("sagemaker", "CreateTrainingJob")
    parameters = {
        "TrainingJobName.$": "$.name",
        "RoleArn": "arn:aws:iam::123456789012:role/training",
        "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "Fast"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": "1", "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    assert problems(training, parameters) == [
        "CreateTrainingJob.AlgorithmSpecification.TrainingInputMode: 'Fast' is not one of "
        "TrainingInputMode's values ['Pipe', 'File', 'FastFile']",
        "CreateTrainingJob.ResourceConfig.InstanceCount: expected integer, got str '1'",
    ]


def test_a_lambda_function_arn_is_not_a_service_integration() -> None:
    assert operation_for("arn:aws:lambda:us-east-1:123456789012:function:prepare") is None


def test_an_sdk_integration_and_an_optimized_one_name_the_same_operation() -> None:
    optimized = operation_for("arn:aws:states:::sagemaker:createTrainingJob.sync")
    sdk = operation_for("arn:aws:states:::aws-sdk:sagemaker:createTrainingJob")
    assert optimized == sdk == Operation("sagemaker", "CreateTrainingJob")
