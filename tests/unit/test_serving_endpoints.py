"""What `headrace endpoints` shows and what `headrace rollback` asks for: endpoints, the deployment ledger,
the rollback target, the rollback request and how a rollback ended."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from headrace.ledger import DeploymentItem
from headrace.naming import Names
from headrace.serving.deploy import read_request
from headrace.serving.endpoints import (
    NOT_DEPLOYED,
    NothingToRollBack,
    list_deployments,
    list_endpoints,
    rollback_execution_name,
    rollback_outcome,
    rollback_target,
    start_rollback,
)
from headrace.serving.payloads import PlanRequest
from headrace.steps import Execution

TABLE = "ledger"
NAMES = Names("dev")
ENDPOINT = NAMES.endpoint("churn")
V2_CONFIG = f"{ENDPOINT}-v2-0123abcd"
V3_CONFIG = f"{ENDPOINT}-v3-4567cdef"
EXECUTION_ARN = (
    "arn:aws:states:us-east-1:123456789012:execution:headrace-dev-churn-deploy:rollback-v2-aaaa1111"
)


def client(service: str) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    sm = client("sagemaker")
    with Stubber(sm) as stubber:
        yield sm, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def dynamodb() -> Iterator[tuple[Any, Stubber]]:
    ddb = client("dynamodb")
    with Stubber(ddb) as stubber:
        yield ddb, stubber
        stubber.assert_no_pending_responses()


def ledger_page(stubber: Stubber, *items: dict[str, Any]) -> None:
    serialize = TypeSerializer().serialize
    stubber.add_response(
        "query",
        {"Items": [{k: serialize(v) for k, v in item.items()} for item in items]},
        {
            "TableName": TABLE,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": "model#churn"}, ":prefix": {"S": "deploy#"}},
            "ScanIndexForward": True,
        },
    )


def deployment_item(
    when: str, status: str, version: int, previous: int | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "pk": "model#churn",
        "sk": f"deploy#{when}#exec-{version}",
        "kind": "deployment",
        "status": status,
        "version": version,
        "endpoint_name": ENDPOINT,
        "previous_version": previous,
        "reason": f"version {version} was Approved",
        **fields,
    }


def in_service(stubber: Stubber, config: str, weight: float = 1.0) -> None:
    stubber.add_response(
        "describe_endpoint",
        {
            "EndpointName": ENDPOINT,
            "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
            "EndpointConfigName": config,
            "EndpointStatus": "InService",
            "CreationTime": "2026-01-01T00:00:00Z",
            "LastModifiedTime": "2026-01-01T00:00:00Z",
            "ProductionVariants": [
                {"VariantName": "AllTraffic", "CurrentWeight": weight, "CurrentInstanceCount": 1}
            ],
        },
        {"EndpointName": ENDPOINT},
    )


def missing(stubber: Stubber) -> None:
    stubber.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message=f'Could not find endpoint "{ENDPOINT}".',
        http_status_code=400,
    )


def record(status: str, version: int, previous: int | None, when: str) -> DeploymentItem:
    return DeploymentItem(
        model="churn", deployment_id=f"{when}#x", status=status, version=version, previous_version=previous
    )


# Endpoints.


def test_a_model_without_an_endpoint_is_not_deployed(
    sagemaker: tuple[Any, Stubber], dynamodb: tuple[Any, Stubber]
) -> None:
    missing(sagemaker[1])
    ledger_page(dynamodb[1])
    [view] = list_endpoints(sagemaker[0], dynamodb[0], TABLE, NAMES, ["churn"])
    assert (view.endpoint_name, view.status, view.version, view.last_deployment) == (
        ENDPOINT,
        NOT_DEPLOYED,
        None,
        None,
    )


def test_the_serving_version_is_read_from_the_endpoint_config_name(
    sagemaker: tuple[Any, Stubber], dynamodb: tuple[Any, Stubber]
) -> None:
    in_service(sagemaker[1], V3_CONFIG)
    ledger_page(dynamodb[1])
    [view] = list_endpoints(sagemaker[0], dynamodb[0], TABLE, NAMES, ["churn"])
    assert (view.status, view.version, view.config_name) == ("InService", 3, V3_CONFIG)


def test_variant_weights_are_the_current_weights(
    sagemaker: tuple[Any, Stubber], dynamodb: tuple[Any, Stubber]
) -> None:
    in_service(sagemaker[1], V3_CONFIG, weight=0.5)
    ledger_page(dynamodb[1])
    [view] = list_endpoints(sagemaker[0], dynamodb[0], TABLE, NAMES, ["churn"])
    assert view.weights == "AllTraffic 0.5"


def test_the_last_deployment_is_the_newest_in_the_ledger_with_its_cause(
    sagemaker: tuple[Any, Stubber], dynamodb: tuple[Any, Stubber]
) -> None:
    in_service(sagemaker[1], V2_CONFIG)
    ledger_page(
        dynamodb[1],
        deployment_item("2026-01-02T00:00:00.000000Z", "serving", 2, 1),
        deployment_item(
            "2026-01-03T00:00:00.000000Z", "rolled_back", 3, 2, cause="v3 was rolled back: alarms: 5xx"
        ),
        deployment_item("2026-01-01T00:00:00.000000Z", "serving", 1),
    )
    [view] = list_endpoints(sagemaker[0], dynamodb[0], TABLE, NAMES, ["churn"])
    assert view.last_deployment is not None
    assert view.last_deployment.summary == "rolled_back v3: v3 was rolled back: alarms: 5xx"


def test_only_deployment_items_are_read_newest_first(dynamodb: tuple[Any, Stubber]) -> None:
    # ledger_page's expected request asks DynamoDB for the `deploy#` sort keys only.
    ledger_page(
        dynamodb[1],
        deployment_item("2026-01-02T00:00:00.000000Z", "serving", 2, 1),
        deployment_item("2026-01-01T00:00:00.000000Z", "serving", 1),
    )
    deployments = list_deployments(dynamodb[0], TABLE, "churn")
    assert [(d.model, d.version, d.previous_version) for d in deployments] == [
        ("churn", 2, 1),
        ("churn", 1, None),
    ]
    assert deployments[0].deployment_id == "2026-01-02T00:00:00.000000Z#exec-2"


def test_an_aws_error_other_than_a_missing_endpoint_is_raised(
    sagemaker: tuple[Any, Stubber], dynamodb: tuple[Any, Stubber]
) -> None:
    sagemaker[1].add_client_error(
        "describe_endpoint", service_error_code="AccessDeniedException", http_status_code=400
    )
    with pytest.raises(ClientError):
        list_endpoints(sagemaker[0], dynamodb[0], TABLE, NAMES, ["churn"])


# The rollback target.


def test_rollback_goes_back_to_the_version_the_serving_deployment_replaced() -> None:
    ledger = [record("serving", 3, 2, "2026-01-03"), record("serving", 2, 1, "2026-01-02")]
    assert rollback_target("churn", ledger) == 2


def test_a_newer_failed_deployment_does_not_move_the_rollback_target() -> None:
    ledger = [record("rolled_back", 4, 3, "2026-01-04"), record("serving", 3, 2, "2026-01-03")]
    assert rollback_target("churn", ledger) == 2


def test_rollback_without_a_serving_deployment_asks_for_a_version() -> None:
    with pytest.raises(NothingToRollBack, match="headrace rollback churn VERSION"):
        rollback_target("churn", [record("failed", 1, None, "2026-01-01")])


def test_rollback_after_only_the_first_deployment_asks_for_a_version() -> None:
    with pytest.raises(NothingToRollBack, match="first version"):
        rollback_target("churn", [record("serving", 1, None, "2026-01-01")])


# Starting a rollback.


class RecordingStepFunctions:
    def __init__(self, executions: list[dict[str, Any]] | None = None) -> None:
        self.started: list[dict[str, Any]] = []
        self.executions = executions or []

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"executionArn": EXECUTION_ARN, "startDate": "2026-01-01T00:00:00Z"}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return self.executions.pop(0)


def test_a_rollback_request_is_one_the_deploy_workflow_reads_as_an_explicit_version() -> None:
    sfn = RecordingStepFunctions()
    start_rollback(sfn, "arn:sm", 2, "v3 mis-scores the south", requested_by="ada")
    request = PlanRequest(
        model="churn",
        execution=Execution(name=sfn.started[0]["name"], id=EXECUTION_ARN),
        hosting_role_arn="arn:role",
        data_key_arn="arn:key",
        input=json.loads(sfn.started[0]["input"]),
    )
    asked = read_request(request, NAMES.model_package_group("churn"))
    assert (asked.version, asked.explicit, asked.reason) == (
        2,
        True,
        "v3 mis-scores the south (requested by ada)",
    )


def test_start_rollback_returns_the_execution_arn_of_the_deploy_state_machine() -> None:
    sfn = RecordingStepFunctions()
    assert start_rollback(sfn, "arn:sm", 2, "why") == EXECUTION_ARN
    assert sfn.started[0]["stateMachineArn"] == "arn:sm"


def test_rollback_execution_names_name_the_version_and_never_repeat() -> None:
    first, second = rollback_execution_name(12), rollback_execution_name(12)
    assert re.fullmatch(r"rollback-v12-[0-9a-f]{8}", first)
    assert first != second


# How a rollback ended.


class FakeSageMaker:
    def __init__(self, config: str | None) -> None:
        self.config = config

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        if self.config is None:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": f"Could not find endpoint {EndpointName}",
                    }
                },
                "DescribeEndpoint",
            )
        return {"EndpointStatus": "InService", "EndpointConfigName": self.config}


def ended(status: str, **fields: Any) -> RecordingStepFunctions:
    return RecordingStepFunctions([{"executionArn": EXECUTION_ARN, "status": status, **fields}])


def test_a_running_rollback_has_no_outcome_yet() -> None:
    assert rollback_outcome(ended("RUNNING"), FakeSageMaker(V3_CONFIG), EXECUTION_ARN, ENDPOINT, 2) is None


def test_a_rollback_serves_once_the_execution_succeeded_and_the_endpoint_runs_the_version() -> None:
    output = json.dumps({"deployed": {"version": 2}})
    outcome = rollback_outcome(
        ended("SUCCEEDED", output=output), FakeSageMaker(V2_CONFIG), EXECUTION_ARN, ENDPOINT, 2
    )
    assert outcome is not None and outcome.serves


def test_a_succeeded_execution_does_not_count_while_the_endpoint_runs_another_version() -> None:
    outcome = rollback_outcome(
        ended("SUCCEEDED", output="{}"), FakeSageMaker(V3_CONFIG), EXECUTION_ARN, ENDPOINT, 2
    )
    assert outcome is not None
    assert (outcome.serves, outcome.serving_version) == (False, 3)


def test_a_skipped_rollback_carries_plans_reason() -> None:
    plan = {
        "model": "churn",
        "action": "skip",
        "reason": "v2 is Rejected: only Approved versions are deployed",
        "version": 2,
        "deployment_id": "2026#rollback-v2-aaaa1111",
        "endpoint_name": ENDPOINT,
    }
    execution = ended("SUCCEEDED", output=json.dumps({"rollback": {"version": 2}, "plan": plan}))
    outcome = rollback_outcome(execution, FakeSageMaker(V3_CONFIG), EXECUTION_ARN, ENDPOINT, 2)
    assert outcome is not None
    assert (outcome.serves, outcome.reason) == (False, plan["reason"])


def test_a_failed_rollback_carries_the_executions_error_and_cause() -> None:
    execution = ended("FAILED", error="DeploymentFailed", cause="v2 was rolled back: alarms: 5xx")
    outcome = rollback_outcome(execution, FakeSageMaker(V3_CONFIG), EXECUTION_ARN, ENDPOINT, 2)
    assert outcome is not None
    assert (outcome.serves, outcome.error, outcome.cause) == (
        False,
        "DeploymentFailed",
        "v2 was rolled back: alarms: 5xx",
    )


def test_a_rollback_that_left_no_endpoint_reports_it_not_deployed() -> None:
    outcome = rollback_outcome(ended("FAILED"), FakeSageMaker(None), EXECUTION_ARN, ENDPOINT, 2)
    assert outcome is not None
    assert (outcome.endpoint_status, outcome.serving_version) == (NOT_DEPLOYED, None)


def test_a_failed_execution_is_a_failed_rollback_even_on_an_endpoint_serving_the_version() -> None:
    execution = ended("FAILED", error="States.Timeout", cause="the execution timed out")
    outcome = rollback_outcome(execution, FakeSageMaker(V2_CONFIG), EXECUTION_ARN, ENDPOINT, 2)
    assert outcome is not None
    assert (outcome.serving_version, outcome.serves) == (2, False)
