"""Live quality on the local plane (issue 16's "Done when"): v1 serves; the answers go wrong while the inputs
look the same (concept drift: datagen's label rule turned around, the features unchanged); ground truth for
those requests, keyed by their InferenceIds, is dropped in S3. The drift check says stable; the quality
check says the live AUC fell and writes the labelled rows as a production dataset; the live-quality alarm
starts a retraining run on history plus those rows, whose candidate beats the champion on the recent
holdout and is registered as v2; the same run started again once v2 is champion cannot beat it and is
rejected with both figures."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from headrace.datagen import generate, ground_truth_jsonl, label_captured
from headrace.demo.traffic import send_lines
from headrace.ledger import DynamoLedger, RetrainDecision, RunItem
from headrace.naming import Names, Outputs, execution_name
from headrace.serving.client import EndpointClient
from headrace.serving.rollout import capture_prefix
from headrace.waiting import wait_for

from .conftest import RunningPlane
from .test_cli_and_state import headrace
from .test_monitoring import _ended, _executions

pytestmark = pytest.mark.e2e

NAMES = Names("dev")
MODEL = "renewals"
# Production traffic outnumbers the v1 upload, so a retrain on both learns the new relation.
HISTORY_ROWS, TRAFFIC_ROWS = 1500, 3000


def _json(stdout: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(stdout[stdout.index("{") :])
    return document


def _ledger(plane: RunningPlane) -> DynamoLedger:
    return DynamoLedger(plane.clients.client("dynamodb"), plane.deployment.ledger_table)


def _run_of(plane: RunningPlane, execution_arn: str) -> RunItem:
    """The run's ledger record once its gate has judged it (evaluated, rejected or registered)."""
    return wait_for(
        lambda: next(
            (
                r
                for r in _ledger(plane).runs(MODEL)
                if r.execution_arn == execution_arn and r.gate is not None and r.finished_at is not None
            ),
            None,
        ),
        f"the run record of {execution_arn}",
        timeout_s=60,
    )


@pytest.fixture(scope="module")
def loop(plane: RunningPlane) -> dict[str, Any]:
    model = plane.models[MODEL]
    info = plane.deployment.model(MODEL)
    s3 = plane.clients.s3
    history = generate(model, HISTORY_ROWS, seed=51)
    s3.put_object(
        Bucket=info.data_bucket, Key=f"{info.incoming_prefix}v1.csv", Body=history.to_csv(index=False)
    )
    first = _ended(plane, Outputs.deploy_state_machine(MODEL), 1, timeout_s=300)
    assert first["status"] == "SUCCEEDED", first

    # Same feature distribution as v1's data (no drift): only the labels these rows will get differ.
    features = [c.name for c in model.data.features]
    lines = generate(model, TRAFFIC_ROWS, seed=52)[features].to_csv(index=False, header=False).splitlines()
    client = EndpointClient.for_model(MODEL, runtime=plane.clients.client("sagemaker-runtime"))
    sent = send_lines(client, lines, batch_rows=100)
    prefix = f"{capture_prefix(MODEL)}/{NAMES.endpoint(MODEL)}/"

    def captured() -> list[bytes] | None:
        listed = s3.list_objects_v2(Bucket=info.data_bucket, Prefix=prefix).get("Contents", [])
        records = [
            line
            for o in listed
            for line in s3.get_object(Bucket=info.data_bucket, Key=o["Key"])["Body"].read().splitlines()
            if line.strip()
        ]
        return records if len(records) >= len(sent.inference_ids) else None

    records = wait_for(captured, "every request captured in S3", timeout_s=30)
    labels = label_captured(model, records, concept_drift=1.0)
    assert set(labels.keys) == set(sent.inference_ids)  # joined by the ids the caller sent
    truth_key = f"{MODEL}/ground-truth/incoming/labels.jsonl"
    s3.put_object(Bucket=info.data_bucket, Key=truth_key, Body=ground_truth_jsonl(labels).encode())
    wait_for(
        lambda: [f for f in _ledger(plane).label_files(MODEL) if f.source_key == truth_key] or None,
        "the ground truth accepted",
        timeout_s=120,
    )

    drift = headrace("drift", MODEL, "--json", "--models-dir", str(plane.models_dir), plane=plane)
    assert drift.returncode == 0, drift.stdout + drift.stderr
    quality = headrace("quality", MODEL, "--json", "--models-dir", str(plane.models_dir), plane=plane)
    retrained = _ended(plane, Outputs.deploy_state_machine(MODEL), 2, timeout_s=420)
    return {
        "labels": labels,
        "drift": _json(drift.stdout),
        "quality": quality,
        "retrained": retrained,
    }


def test_the_drift_check_sees_no_feature_drift(loop: dict[str, Any]) -> None:
    check = loop["drift"]["check"]
    assert check["status"] == "stable", check
    assert check["rows"] == TRAFFIC_ROWS


def test_the_quality_check_reports_the_breach_and_writes_the_labelled_rows(
    plane: RunningPlane, loop: dict[str, Any]
) -> None:
    done = loop["quality"]
    assert done.returncode == 1, done.stdout + done.stderr  # EXIT_BREACHED
    result = _json(done.stdout)["result"]
    assert result["status"] == "breach", result
    assert result["labelled_rows"] == TRAFFIC_ROWS and result["unknown_labels"] == 0
    assert result["value"] < result["threshold"] and result["value"] < result["baseline"]
    assert any(r.startswith(f"live auc {result['value']:.4g}") for r in result["reasons"]), result["reasons"]
    assert result["production_dataset_key"].startswith(f"{MODEL}/incoming/production/")
    checks = _ledger(plane).quality_checks(MODEL, 1)
    assert (
        checks[0].status == "breach" and checks[0].production_dataset_key == result["production_dataset_key"]
    )
    print(f"live auc {result['value']:.4f} (v1's own test auc {result['baseline']:.4f})")


def test_the_live_quality_alarm_retrains_on_the_labelled_production_rows(
    plane: RunningPlane, loop: dict[str, Any]
) -> None:
    alarm = NAMES.model_alarm(MODEL, "live-quality")
    described = plane.clients.client("cloudwatch").describe_alarms(AlarmNames=[alarm])
    assert described["MetricAlarms"][0]["StateValue"] == "ALARM"
    ledger = _ledger(plane)
    started = [
        d for d in ledger.partition(MODEL) if isinstance(d, RetrainDecision) and d.decision == "started"
    ]
    assert [d.alarm for d in started] == [alarm]
    run = _run_of(plane, str(started[0].execution_arn))
    datasets = json.loads(str(run.datasets))
    production = [d for d in datasets["datasets"] if d["source"] == "production"]
    assert len(production) == 1 and production[0]["rows"] == TRAFFIC_ROWS
    assert datasets["holdout"] == production[0]["sha256"]
    quality = _json(loop["quality"].stdout)["result"]
    bucket, key = production[0]["lineage_uri"].removeprefix("s3://").split("/", 1)
    lineage = json.loads(plane.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert lineage["dataset_key"] == quality["production_dataset_key"]
    window = [datetime.fromisoformat(quality[k]) for k in ("since", "until")]
    assert [datetime.fromisoformat(lineage[k]) for k in ("since", "until")] == window
    accepted = [f.accepted_key for f in ledger.label_files(MODEL)]
    assert lineage["label_files"] == accepted and lineage["rows"] == TRAFFIC_ROWS


def test_the_candidate_beats_the_champion_on_the_recent_holdout_and_rolls_out_as_v2(
    plane: RunningPlane, loop: dict[str, Any]
) -> None:
    started = next(
        d
        for d in _ledger(plane).partition(MODEL)
        if isinstance(d, RetrainDecision) and d.decision == "started"
    )
    run = _run_of(plane, str(started.execution_arn))
    gate = json.loads(str(run.gate))
    holdout = gate["champion"]["holdout"]
    candidate, champion = gate["candidate"]["auc"], holdout["metrics"]["auc"]
    assert gate["passed"] and gate["champion"]["version"] == 1, gate
    assert candidate > champion + plane.models[MODEL].gate.min_improvement
    assert any(
        "beats the champion's" in n and f"{holdout['rows']}-row recent holdout" in n for n in gate["notes"]
    )
    assert (run.status, run.version) == ("registered", 2)
    assert loop["retrained"]["status"] == "SUCCEEDED", loop["retrained"]
    endpoint = plane.clients.client("sagemaker").describe_endpoint(EndpointName=NAMES.endpoint(MODEL))
    assert endpoint["EndpointConfigName"].startswith(f"headrace-dev-{MODEL}-v2-")
    print(f"recent holdout ({holdout['rows']} rows): candidate {candidate:.4f} vs champion v1 {champion:.4f}")


def test_a_retrain_that_cannot_beat_the_champion_is_rejected_with_both_figures(
    plane: RunningPlane, loop: dict[str, Any]
) -> None:
    """The same training input again, once v2 (trained on exactly that) is champion: nothing to gain."""
    sfn = plane.clients.client("stepfunctions")
    machine = plane.info.outputs[NAMES.pipeline_stack][Outputs.training_state_machine(MODEL)]
    retrain = next(
        e for e in _executions(plane, Outputs.training_state_machine(MODEL)) if "retrain-" in e["name"]
    )
    given = sfn.describe_execution(executionArn=retrain["executionArn"])["input"]
    sha = json.loads(given)["dataset"]["sha256"]
    again = sfn.start_execution(
        stateMachineArn=machine, name=execution_name(MODEL, sha, "again"), input=given
    )
    ended = wait_for(
        lambda: (
            (d := sfn.describe_execution(executionArn=again["executionArn"]))["status"] != "RUNNING" and d
        ),
        "the second run",
        timeout_s=300,
    )
    run = _run_of(plane, again["executionArn"])
    assert run.status == "rejected", (run, ended)
    gate = json.loads(str(run.gate))
    holdout = gate["champion"]["holdout"]
    assert gate["champion"]["version"] == 2
    candidate, champion = gate["candidate"]["auc"], holdout["metrics"]["auc"]
    figures = (
        f"auc {candidate:.4g} on the {holdout['rows']}-row recent holdout does not beat the champion's "
        f"{champion:.4g} (v2)"
    )
    assert any(r.startswith(figures) for r in run.reasons or []), run.reasons
    print(f"same data again: candidate auc {candidate:.4f} vs champion v2 {champion:.4f}: rejected")
