"""Batch scoring in the synthesized pipeline stack: the state machine's steps, the transform job's request,
and permissions no wider than one model's jobs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from headrace.config import ModelConfig
from headrace.naming import Outputs
from stacks.batch import check_scorable
from tests.support.synth import SynthesizedApp, render


def _definition(synthesized: SynthesizedApp, name: str) -> dict[str, Any]:
    machines = synthesized.pipeline.find_resources(
        "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": name}}
    )
    assert len(machines) == 1, sorted(machines)
    body = next(iter(machines.values()))["Properties"]["DefinitionString"]
    return dict(json.loads(render(body)))


def test_each_model_has_a_batch_state_machine_resolve_transform_record(synthesized: SynthesizedApp) -> None:
    definition = _definition(synthesized, synthesized.names.batch_state_machine("churn"))
    states = definition["States"]
    assert definition["StartAt"] == "Start"
    assert [states[s]["Next"] for s in ("Start", "Resolve", "Transform", "Record")] == [
        "Resolve",
        "Transform",
        "Record",
        "Completed",
    ]
    assert states["Transform"]["Resource"].endswith(":states:::sagemaker:createTransformJob.sync")
    assert states["Transform"]["Catch"][0]["Next"] == "RecordFailure"
    assert states["RecordFailure"]["Next"] == "NotScored"
    assert states["Resolve"]["Catch"][0]["Next"] == "NothingToScoreWith"
    assert synthesized.pipeline.find_outputs(Outputs.batch_state_machine("churn"))


def test_the_transform_job_joins_each_input_row_to_its_score_line_by_line(
    synthesized: SynthesizedApp,
) -> None:
    churn = next(m for m in synthesized.models if m.name == "churn")
    states = _definition(synthesized, synthesized.names.batch_state_machine("churn"))["States"]
    request = states["Transform"]["Parameters"]
    assert request["TransformInput"]["SplitType"] == "Line"
    assert request["TransformInput"]["ContentType"] == "text/csv"
    assert request["TransformOutput"]["AssembleWith"] == "Line"
    assert request["DataProcessing"] == {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": "$"}
    assert request["BatchStrategy"] == churn.batch.batch_strategy
    assert request["MaxPayloadInMB"] == churn.batch.max_payload_mb
    assert request["TransformResources"]["InstanceCount"] == churn.batch.instance_count
    assert request["ModelName.$"] == "$.resolved.model_name"


def test_the_batch_state_machine_may_touch_only_its_models_transform_jobs(
    synthesized: SynthesizedApp,
) -> None:
    statements = json.dumps(synthesized.pipeline.to_json())
    assert "StepFunctionsGetEventsForSageMakerTransformJobsRule" in statements
    assert ":transform-job/churn-batch-*" in statements


def test_a_batch_instance_type_transform_jobs_do_not_take_fails_the_synth(example_model: ModelConfig) -> None:
    batch = example_model.batch.model_copy(update={"instance_type": "ml.t3.medium"})
    with pytest.raises(
        ValueError, match=re.escape("batch.instance_type: 'ml.t3.medium' is not a transform instance")
    ):
        check_scorable(example_model.model_copy(update={"batch": batch}))
