"""The training pipeline on the local plane: drop → trained → gated against the champion → registered with
lineage; a worse dataset rejected with its reason; a trainer crash failing the run and leaving the registry
alone. The state machine executed is the one CDK synthesized; the trainer runs as the container would."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from headrace.datagen import generate
from headrace.naming import Names, execution_name
from headrace.training.lineage import decode_metrics
from headrace.waiting import wait_for

from .conftest import RunningPlane

pytestmark = pytest.mark.e2e


def _finished_execution(plane: RunningPlane, model: str, body: bytes) -> dict[str, Any]:
    sfn = plane.clients.client("stepfunctions")
    machine = plane.deployment.model(model).training_state_machine_arn
    name = execution_name(model, hashlib.sha256(body).hexdigest())
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"

    def finished() -> dict[str, Any] | None:
        try:
            described = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            return None
        return dict(described) if described["status"] != "RUNNING" else None

    return wait_for(finished, f"training run {name} to finish", timeout_s=180, interval_s=0.5)


def _drop(plane: RunningPlane, model: str, key: str, body: bytes) -> dict[str, Any]:
    plane.clients.s3.put_object(Bucket=plane.deployment.data_bucket, Key=f"{model}/incoming/{key}", Body=body)
    return _finished_execution(plane, model, body)


def _packages(plane: RunningPlane, model: str) -> list[dict[str, Any]]:
    sagemaker = plane.clients.client("sagemaker")
    group = Names(plane.info.stage).model_package_group(model)
    try:
        listed = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    except sagemaker.exceptions.ClientError:
        return []
    return [sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in listed]


def _run_record(plane: RunningPlane, model: str, execution_arn: str) -> dict[str, Any]:
    items = plane.clients.client("dynamodb").query(
        TableName=plane.deployment.ledger_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
        ExpressionAttributeValues={":pk": {"S": f"model#{model}"}, ":run": {"S": "run#"}},
    )["Items"]
    for item in items:
        if item.get("execution_arn", {}).get("S") == execution_arn:
            return {k: next(iter(v.values())) for k, v in item.items()}
    raise AssertionError(f"no run record for {execution_arn}")


def test_a_dataset_is_trained_gated_and_registered_with_lineage(plane: RunningPlane) -> None:
    body = generate(plane.models["leads"], 4_000, seed=21).to_csv(index=False).encode()
    execution = _drop(plane, "leads", "first.csv", body)
    assert execution["status"] == "SUCCEEDED", execution
    (package,) = _packages(plane, "leads")
    assert package["ModelApprovalStatus"] == "Approved"  # the leads gate auto-approves
    lineage = package["CustomerMetadataProperties"]
    assert lineage["dataset_sha256"] == hashlib.sha256(body).hexdigest()
    assert lineage["execution_arn"] == execution["executionArn"]
    assert decode_metrics(lineage["metrics"])["auc"] > 0.7
    bucket, key = lineage["lineage_uri"].removeprefix("s3://").split("/", 1)
    full = json.loads(plane.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert "max_depth" in json.dumps(full)
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].startswith("s3://")
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("model.tar.gz")
    assert _run_record(plane, "leads", execution["executionArn"])["status"] == "registered"


def test_a_worse_dataset_is_rejected_by_the_champion_comparison_with_the_reason(plane: RunningPlane) -> None:
    champion = generate(plane.models["leads"], 4_000, seed=31).to_csv(index=False).encode()
    assert _drop(plane, "leads", "champion.csv", champion)["status"] == "SUCCEEDED"
    before = len(_packages(plane, "leads"))
    worse = generate(plane.models["leads"], 4_000, seed=32, label_noise=0.5).to_csv(index=False).encode()
    execution = _drop(plane, "leads", "worse.csv", worse)
    assert execution["status"] == "SUCCEEDED"  # the pipeline worked; its outcome is a rejection
    assert len(_packages(plane, "leads")) == before
    record = _run_record(plane, "leads", execution["executionArn"])
    assert record["status"] == "rejected"
    reasons = " ".join(json.loads(record["gate"])["reasons"])
    assert "champion" in reasons and "auc" in reasons


def test_a_trainer_crash_fails_the_run_with_its_reason_and_registers_nothing(plane: RunningPlane) -> None:
    body = generate(plane.models["fragile"], 1_000, seed=41).to_csv(index=False).encode()
    execution = _drop(plane, "fragile", "data.csv", body)
    assert execution["status"] == "FAILED"
    assert "num_parallel_tree" in (execution.get("cause") or "")
    assert "num_parallel_tree" in json.dumps(_run_record(plane, "fragile", execution["executionArn"]))
    assert _packages(plane, "fragile") == []
    assert _run_record(plane, "fragile", execution["executionArn"])["status"] == "failed"


def _cli(plane: RunningPlane, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **plane.info.environment(), "HEADRACE_MODELS_DIR": str(plane.models_dir)}
    return subprocess.run(
        [sys.executable, "-m", "headrace.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runs_are_tracked_compared_and_versions_approved_or_rejected_from_the_cli(
    plane: RunningPlane,
) -> None:
    body = generate(plane.models["leads"], 3_000, seed=51).to_csv(index=False).encode()
    assert _drop(plane, "leads", "tracked.csv", body)["status"] == "SUCCEEDED"
    listed = _cli(plane, "runs", "leads", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    registered = [r for r in runs if r["status"] == "registered"]
    assert registered and all(r["hyperparameters"] and r["metrics"] for r in registered)
    first, second = registered[-1], registered[0]
    compared = _cli(plane, "runs", "compare", first["job_name"], second["job_name"], "--json")
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["a"]["job_name"] == first["job_name"]

    version = str(second["version"])
    rejected = _cli(plane, "reject", "leads", f"v{version}", "--reason", "worse on a slice")
    assert rejected.returncode == 0, rejected.stderr
    package = next(p for p in _packages(plane, "leads") if str(p["ModelPackageVersion"]) == version)
    assert (package["ModelApprovalStatus"], package["ApprovalDescription"]) == (
        "Rejected",
        "worse on a slice",
    )
    assert _cli(plane, "approve", "leads", f"v{version}").returncode == 0
    after = json.loads(_cli(plane, "runs", "leads", "--json").stdout)
    assert next(r for r in after if r["job_name"] == second["job_name"])["approval_status"] == "Approved"

    missing = _cli(plane, "approve", "leads", "v999")
    assert missing.returncode == 2 and "has no version 999" in missing.stderr
