"""The idle endpoints sweep in the template: built only when a model sets rollout.idle_hours, then one
function, its hourly schedule and grants on the idle models' endpoints only; cdk-nag and cfn-lint clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint_file

from headrace.config import ModelConfig, parse_models_document
from headrace.naming import Names
from headrace.serving.idle import function_name
from stacks.app_builder import build_app
from stacks.idle import SWEEP_SCHEDULE
from tests.infrastructure.test_cfn_lint import IGNORED_CHECKS
from tests.infrastructure.test_nag import _context, _nag
from tests.support.synth import SynthesizedApp, render, stack_template

NAMES = Names("dev")


def _variant(model: ModelConfig, name: str, idle_hours: int | None) -> ModelConfig:
    rollout = model.rollout.model_copy(update={"idle_hours": idle_hours})
    return model.model_copy(update={"name": name, "rollout": rollout})


def _models(synthesized: SynthesizedApp) -> list[ModelConfig]:
    churn = next(m for m in synthesized.models if m.name == "churn")
    return [_variant(churn, "churn", None), _variant(churn, "churn-idle", 48)]


@pytest.fixture(scope="module")
def idle_app(synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Path]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app("dev", _models(synthesized), str(outdir))
    template = stack_template(app, NAMES.pipeline_stack)
    app.synth()
    return template, outdir


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_logical_id}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_without_idle_hours_nothing_is_created(synthesized: SynthesizedApp) -> None:
    assert all(m.rollout.idle_hours is None for m in synthesized.models)
    assert (
        synthesized.pipeline.find_resources(
            "AWS::Scheduler::Schedule", {"Properties": {"Name": function_name(NAMES)}}
        )
        == {}
    )
    assert (
        synthesized.pipeline.find_resources(
            "AWS::Lambda::Function", {"Properties": {"FunctionName": function_name(NAMES)}}
        )
        == {}
    )


def test_an_hourly_schedule_invokes_the_sweep_function(idle_app: tuple[Template, Path]) -> None:
    template, _ = idle_app
    functions = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"FunctionName": function_name(NAMES)}}
    )
    assert len(functions) == 1
    function_id, function = next(iter(functions.items()))
    assert function["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"] == "default"
    schedules = template.find_resources(
        "AWS::Scheduler::Schedule", {"Properties": {"Name": function_name(NAMES)}}
    )
    assert len(schedules) == 1
    schedule = next(iter(schedules.values()))["Properties"]
    assert schedule["ScheduleExpression"] == SWEEP_SCHEDULE == "rate(1 hour)"
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    invoke = _statements(template, schedule["Target"]["RoleArn"]["Fn::GetAtt"][0])
    assert [(s["Action"], s["Resource"]) for s in invoke] == [
        ("lambda:InvokeFunction", {"Fn::GetAtt": [function_id, "Arn"]})
    ]


def test_the_sweep_may_delete_only_the_idle_models_endpoints(idle_app: tuple[Template, Path]) -> None:
    template, _ = idle_app
    _, function = next(
        iter(
            template.find_resources(
                "AWS::Lambda::Function", {"Properties": {"FunctionName": function_name(NAMES)}}
            ).items()
        )
    )
    statements = _statements(template, function["Properties"]["Role"]["Fn::GetAtt"][0])
    grants = {
        (action, render(resource))
        for s in statements
        for action in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }
    account = "${AWS::Region}:${AWS::AccountId}"
    endpoint = f"arn:${{AWS::Partition}}:sagemaker:{account}:endpoint/{NAMES.endpoint('churn-idle')}"
    assert ("sagemaker:DeleteEndpoint", endpoint) in grants
    assert ("sagemaker:DescribeEndpoint", endpoint) in grants
    assert {r for a, r in grants if a == "sagemaker:DeleteEndpoint"} == {endpoint}
    assert {a for a, r in grants if r == "*"} == {"cloudwatch:GetMetricStatistics"}
    assert any(a == "dynamodb:PutItem" for a, _ in grants)
    assert any(a == "events:PutEvents" for a, _ in grants)
    assert not any(a == "dynamodb:Query" or a == "sagemaker:CreateEndpoint" for a, _ in grants)


def test_the_sweep_ships_only_the_idle_models(idle_app: tuple[Template, Path]) -> None:
    _, outdir = idle_app
    [document] = list((outdir / ".staging").glob("*IdleEndpoints-Sweep*/models.json"))
    assert sorted(parse_models_document(document.read_text(encoding="utf-8"))) == ["churn-idle"]


def test_the_idle_app_passes_cdk_nag(synthesized: SynthesizedApp, tmp_path: Path) -> None:
    findings = _nag(build_app("dev", _models(synthesized), str(tmp_path), context=_context()))
    assert not findings, "\n".join(map(str, findings))


def test_the_idle_app_passes_cfn_lint(idle_app: tuple[Template, Path]) -> None:
    _, outdir = idle_app
    template = outdir / f"{NAMES.pipeline_stack}.template.json"
    matches = lint_file(template, ManualArgs(ignore_checks=sorted(IGNORED_CHECKS)))
    assert not matches, "\n".join(f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches)
