"""Reading a deployment: a stack that is missing and an AWS that does not answer are told apart."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from headrace.config import load_models
from headrace.deployment import DeploymentNotFound, DeploymentUnreachable, deployment_of
from headrace.naming import Names

NAMES = Names("dev")


class Unanswered:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        raise self.error


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
