"""The quality check in the synthesized pipeline stack: its state machine, schedule, alarm and functions'
permissions, and the retrain rule listening to its alarm."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from headrace.config import ModelConfig
from headrace.monitoring.retrain import ALARM_STATE_CHANGE
from headrace.naming import Outputs
from tests.support.synth import SynthesizedApp, render


def _churn(synthesized: SynthesizedApp) -> ModelConfig:
    return next(m for m in synthesized.models if m.name == "churn")


def _definition(synthesized: SynthesizedApp, name: str) -> dict[str, Any]:
    machines = synthesized.pipeline.find_resources(
        "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": name}}
    )
    assert len(machines) == 1, sorted(machines)
    body = next(iter(machines.values()))["Properties"]["DefinitionString"]
    return dict(json.loads(render(body)))


def _function_statements(synthesized: SynthesizedApp, function_name: str) -> list[dict[str, Any]]:
    functions = synthesized.pipeline.find_resources(
        "AWS::Lambda::Function", {"Properties": {"FunctionName": function_name}}
    )
    assert len(functions) == 1, function_name
    role = next(iter(functions.values()))["Properties"]["Role"]["Fn::GetAtt"][0]
    return synthesized.role_statements(role)


def test_each_model_has_a_quality_state_machine_window_distributed_map_finish(
    synthesized: SynthesizedApp,
) -> None:
    definition = _definition(synthesized, synthesized.names.quality_state_machine("churn"))
    states = definition["States"]
    assert definition["StartAt"] == "Window"
    assert states["Window"]["Next"] == "Batches"
    assert states["Batches"]["Type"] == "Map"
    assert states["Batches"]["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert states["Batches"]["ItemSelector"]["labels_key.$"] == "$.window.labels_key"
    assert states["Batches"]["Next"] == "Finish"


def test_the_quality_check_runs_on_its_own_schedule(synthesized: SynthesizedApp) -> None:
    churn = _churn(synthesized)
    synthesized.pipeline.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "Name": synthesized.names.quality_schedule("churn"),
            "ScheduleExpression": churn.monitoring.quality_schedule,
            "Target": Match.object_like({"Input": json.dumps({"trigger": "schedule"})}),
        },
    )


def test_the_live_quality_alarm_watches_quality_breach_of_the_finish_function(
    synthesized: SynthesizedApp,
) -> None:
    names = synthesized.names
    synthesized.pipeline.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": names.model_alarm("churn", "live-quality"),
            "MetricName": "QualityBreach",
            "Namespace": names.metric_namespace,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Dimensions": Match.array_with(
                [
                    {"Name": "Model", "Value": "churn"},
                    {"Name": "service", "Value": names.quality_finish_function},
                ]
            ),
        },
    )


def test_the_retrain_rule_listens_to_the_live_quality_alarm(synthesized: SynthesizedApp) -> None:
    rules = synthesized.pipeline.find_resources(
        "AWS::Events::Rule", {"Properties": {"Name": f"{synthesized.names.prefix}-retrain-on-alarm"}}
    )
    (rule,) = rules.values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == [ALARM_STATE_CHANGE]
    assert synthesized.names.model_alarm("churn", "live-quality") in pattern["detail"]["alarmName"]


def test_the_quality_state_machine_is_a_stack_output(synthesized: SynthesizedApp) -> None:
    assert Outputs.quality_state_machine("churn") in synthesized.pipeline.find_outputs("*")


def test_only_finish_writes_production_datasets_and_window_lists_only_captures_and_labels(
    synthesized: SynthesizedApp,
) -> None:
    names = synthesized.names

    def puts(function: str) -> set[str]:
        return {
            render(resource)
            for s in _function_statements(synthesized, function)
            if any(
                str(a).startswith("s3:Put")
                for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            )
            for resource in ([s["Resource"]] if not isinstance(s["Resource"], list) else s["Resource"])
        }

    assert any(r.endswith("/churn/incoming/production/*") for r in puts(names.quality_finish_function))
    assert not any("incoming" in r for r in puts(names.quality_partial_function))
    assert not any("incoming" in r for r in puts(names.quality_window_function))
    listing = [
        s
        for s in _function_statements(synthesized, names.quality_window_function)
        if s["Action"] == "s3:ListBucket"
    ]
    assert len(listing) == 1
    assert set(listing[0]["Condition"]["StringLike"]["s3:prefix"]) >= {
        "churn/ground-truth/accepted/*",
    }
