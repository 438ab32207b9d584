"""The deploy workflow's ARN and the endpoint's name, as the pipeline stack's outputs give them."""

from __future__ import annotations

from typing import Any

from headrace.config import load_models
from headrace.deployment import describe
from headrace.naming import Names, Outputs

NAMES = Names("dev")
DEPLOY_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:headrace-dev-churn-deploy"


class FakeCloudFormation:
    def __init__(self, pipeline: dict[str, str]) -> None:
        self.outputs = {
            NAMES.data_stack: {Outputs.DATA_BUCKET: "bucket", Outputs.LEDGER_TABLE: "ledger"},
            NAMES.pipeline_stack: {Outputs.INGEST_FUNCTION: "ingest", **pipeline},
        }

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs[StackName].items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


def training_outputs(models: list[str]) -> dict[str, str]:
    return {Outputs.training_state_machine(m): f"arn:training:{m}" for m in models}


def test_each_model_carries_its_deploy_state_machine_from_the_stack_outputs() -> None:
    models = load_models()
    pipeline = training_outputs([m.name for m in models]) | {
        Outputs.deploy_state_machine("churn"): DEPLOY_ARN
    }
    info = describe(FakeCloudFormation(pipeline), NAMES, models)
    assert info.model("churn").deploy_state_machine_arn == DEPLOY_ARN


def test_a_stack_from_before_the_deploy_workflow_still_describes_with_no_deploy_arn() -> None:
    models = load_models()
    info = describe(FakeCloudFormation(training_outputs([m.name for m in models])), NAMES, models)
    churn = info.model("churn")
    assert (churn.deploy_state_machine_arn, churn.endpoint_name) == (None, NAMES.endpoint("churn"))


def test_the_endpoint_name_is_the_one_the_stack_outputs() -> None:
    models = load_models()
    pipeline = training_outputs([m.name for m in models]) | {Outputs.endpoint("churn"): "renamed-endpoint"}
    assert (
        describe(FakeCloudFormation(pipeline), NAMES, models).model("churn").endpoint_name
        == "renamed-endpoint"
    )
