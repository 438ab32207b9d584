"""The synthesized deploy workflow: the rule that starts it on approval, its states, the blue/green
DeploymentConfig with the guard alarms, and what its roles may do."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from headrace.naming import Names
from headrace.serving import rollout
from headrace.serving.deploy import (
    BUSY,
    BUSY_UPDATE_WAIT_S,
    SAGEMAKER_ERROR,
    UPDATE_REFUSED_BUSY,
    update_retries,
)
from tests.support.synth import SynthesizedApp, render

MODEL = "churn"


def _definition(synthesized: SynthesizedApp) -> dict[str, Any]:
    found = synthesized.pipeline.find_resources(
        "AWS::StepFunctions::StateMachine",
        {"Properties": {"StateMachineName": synthesized.names.deploy_state_machine(MODEL)}},
    )
    assert len(found) == 1
    machine = next(iter(found.values()))
    parsed: dict[str, Any] = json.loads(render(machine["Properties"]["DefinitionString"]))
    return parsed


def _statements(synthesized: SynthesizedApp, logical_id: str) -> list[dict[str, Any]]:
    return synthesized.role_statements(logical_id)


def test_an_approved_version_of_the_model_s_group_starts_its_deploy_workflow(
    synthesized: SynthesizedApp,
) -> None:
    synthesized.pipeline.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {
                    "ModelPackageGroupName": [synthesized.names.model_package_group(MODEL)],
                    "ModelApprovalStatus": ["Approved"],
                },
            },
            "Targets": Match.array_with(
                [Match.object_like({"DeadLetterConfig": Match.any_value(), "RetryPolicy": Match.any_value()})]
            ),
        },
    )


def test_the_workflow_plans_rolls_out_watches_and_verifies(synthesized: SynthesizedApp) -> None:
    definition = _definition(synthesized)
    states = definition["States"]
    assert definition["StartAt"] == "Plan"
    assert states["CreateEndpoint"]["Resource"].endswith(":states:::sagemaker:createEndpoint")
    assert states["UpdateEndpoint"]["Resource"].endswith(":states:::sagemaker:updateEndpoint")
    assert states["DescribeEndpoint"]["Resource"].endswith(":states:::aws-sdk:sagemaker:describeEndpoint")
    assert states["RolloutOver"]["Default"] == "Verify"
    assert states["Verify"]["Next"] == "Deployed"
    for task in ("Plan", "CreateEndpoint", "UpdateEndpoint", "DescribeEndpoint", "Verify"):
        assert states[task]["Catch"][-1] == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.error",
            "Next": "DeployFailed",
        }, task
    assert any(r["ErrorEquals"] == ["EndpointBusy"] for r in states["Plan"]["Retry"])


def test_an_update_refused_while_the_endpoint_scales_is_sent_again_a_bounded_number_of_times(
    synthesized: SynthesizedApp, example_model: Any
) -> None:
    """SageMaker's refusal reaches Step Functions as SageMaker.AmazonSageMakerException whatever its code: the
    workflow looks at the endpoint and the cause, and only a busy endpoint gets the update again."""
    states = _definition(synthesized)["States"]
    first, *_ = states["UpdateEndpoint"]["Catch"]
    assert first == {
        "ErrorEquals": [SAGEMAKER_ERROR],
        "ResultPath": "$.error",
        "Next": "DescribeRefusedEndpoint",
    }
    assert states["DescribeRefusedEndpoint"]["Next"] == "RefusedAsBusy"
    choice = states["RefusedAsBusy"]
    assert choice["Default"] == "DeployFailed"
    rendered = json.dumps(choice["Choices"])
    assert all(f'"StringEquals": "{status}"' in rendered for status in BUSY)
    assert UPDATE_REFUSED_BUSY in rendered
    retries = update_retries(rollout.poll_seconds(example_model.rollout))
    assert (
        f'"NumericLessThan": {retries}' in rendered
        and retries * rollout.poll_seconds(example_model.rollout) <= BUSY_UPDATE_WAIT_S
    )
    assert [c["Next"] for c in choice["Choices"]] == ["FirstRefusal", "AnotherRefusal"]
    assert states["AnotherRefusal"]["Parameters"] == {"count.$": "States.MathAdd($.update_refusals.count, 1)"}
    for counted in ("FirstRefusal", "AnotherRefusal"):
        assert states[counted]["Next"] == "WaitToUpdate"
    assert states["WaitToUpdate"] == {
        "Type": "Wait",
        "Comment": states["WaitToUpdate"]["Comment"],
        "SecondsPath": "$.plan.poll_s",
        "Next": "UpdateEndpoint",
    }


def test_the_update_carries_the_model_s_canary_bake_and_guard_alarms(
    synthesized: SynthesizedApp, example_model: Any
) -> None:
    config = _definition(synthesized)["States"]["UpdateEndpoint"]["Parameters"]["DeploymentConfig"]
    assert config == rollout.deployment_config(example_model, Names("dev"))
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    # dev's endpoint is one instance, which no canary can be cut from: all at once, then the bake.
    assert example_model.rollout.instance_count == 1
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    assert config["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == example_model.rollout.bake_s


def test_every_guard_alarm_named_by_the_rollout_exists(
    synthesized: SynthesizedApp, example_model: Any
) -> None:
    alarms = synthesized.pipeline.find_resources("AWS::CloudWatch::Alarm")
    names = {render(a["Properties"]["AlarmName"]) for a in alarms.values()}
    for guard in rollout.GUARDS:
        assert synthesized.names.endpoint_alarm(MODEL, guard) in names
    five_xx = next(
        a for a in alarms.values() if render(a["Properties"]["AlarmName"]).endswith(f"{MODEL}-5xx")
    )
    assert five_xx["Properties"]["Threshold"] == example_model.rollout.max_5xx_rate
    assert five_xx["Properties"]["TreatMissingData"] == "notBreaching"
    expression = next(m for m in five_xx["Properties"]["Metrics"] if "Expression" in m)
    assert expression["Expression"] == "errors / invocations"


def test_the_hosting_role_reads_only_the_model_s_artifacts_and_writes_only_its_capture(
    synthesized: SynthesizedApp,
) -> None:
    roles = synthesized.pipeline.find_resources(
        "AWS::IAM::Role", {"Properties": {"Description": f"Endpoint containers of Headrace model {MODEL}"}}
    )
    assert len(roles) == 1
    statements = _statements(synthesized, next(iter(roles)))
    resources = {
        render(r)
        for s in statements
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    }
    s3_keys = {r.split("/", 1)[1] for r in resources if r.startswith("<import:") and "/" in r}
    # Transform jobs run as the Model's role: a batch's input and output (issue 17).
    assert s3_keys == {
        f"{MODEL}/runs/*/output/*",
        f"{MODEL}/capture/*",
        f"{MODEL}/batch/input/*",
        f"{MODEL}/batch/output/*",
    }
    actions = {
        a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert not any(a.endswith(":*") or a == "*" for a in actions)


def test_no_deploy_permission_uses_a_wildcard_action(synthesized: SynthesizedApp) -> None:
    template: Template = synthesized.pipeline
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), logical_id
