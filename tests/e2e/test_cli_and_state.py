"""The CLI against a running local plane, state across down/up, and a bad config refused at start-up."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from headrace.datagen import generate
from headrace.ingest.attempts import attempt_execution_name
from headrace.local.control import PlaneError, start_detached, stop_detached
from headrace.naming import execution_name
from headrace.waiting import wait_for

from .conftest import REPO, RunningPlane, write_models

pytestmark = pytest.mark.e2e


def headrace(
    *args: str, plane: RunningPlane | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(plane.info.environment() if plane else {}), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "headrace.cli.main", *args],
        env=env,
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_info_json_gives_a_script_bucket_prefixes_schema_and_state_machines(plane: RunningPlane) -> None:
    done = headrace("info", "--json", "--models-dir", str(plane.models_dir), plane=plane)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    churn = next(m for m in info["models"] if m["name"] == "churn")
    assert churn["data_bucket"] == plane.deployment.data_bucket
    assert (churn["incoming_prefix"], churn["quarantine_prefix"]) == ("churn/incoming/", "churn/quarantine/")
    assert churn["schema"]["target"] == "churned"
    contract = next(c for c in churn["schema"]["columns"] if c["name"] == "contract")
    assert (contract["type"], contract["nullable"]) == ("category", False)
    assert contract["categories"] == ["month-to-month", "one-year", "two-year"]
    tenure = next(c for c in churn["schema"]["columns"] if c["name"] == "tenure_months")
    assert (tenure["min"], tenure["max"]) == (0, 120)
    assert churn["training_state_machine_arn"].endswith(":stateMachine:headrace-dev-churn-training")
    assert churn["endpoint_name"] == "headrace-dev-churn"
    assert {m["name"] for m in info["models"]} == {
        "churn",
        "returns",
        "leads",
        "fragile",
        "shop",
        "reviewed",
        "drifty",
        "renewals",
    }


def test_status_json_lists_datasets_quarantined_files_and_executions(plane: RunningPlane) -> None:
    bucket = plane.deployment.data_bucket
    body = generate(plane.models["churn"], 600, seed=77).to_csv(index=False).encode()
    plane.clients.s3.put_object(Bucket=bucket, Key="churn/incoming/status-good.csv", Body=body)
    plane.clients.s3.put_object(Bucket=bucket, Key="churn/incoming/status-bad.csv", Body=b"")
    sha = hashlib.sha256(body).hexdigest()

    def status() -> dict[str, Any] | None:
        done = headrace("status", "--json", "--models-dir", str(plane.models_dir), plane=plane)
        assert done.returncode == 0, done.stderr
        report = dict(json.loads(done.stdout))
        seen = any(d["sha256"] == sha for d in report["datasets"]) and any(
            q["key"] == "churn/incoming/status-bad.csv" for q in report["quarantined"]
        )
        return report if seen else None

    report = wait_for(status, "the good and the bad file in `headrace status`", timeout_s=60)
    bad = next(q for q in report["quarantined"] if q["key"] == "churn/incoming/status-bad.csv")
    assert bad["rules"] == ["empty"]
    assert execution_name("churn", sha) in [e["name"] for e in report["executions"]]


def test_status_without_json_prints_tables(plane: RunningPlane) -> None:
    done = headrace("status", "--models-dir", str(plane.models_dir), plane=plane)
    assert done.returncode == 0, done.stderr
    assert "datasets" in done.stdout and "quarantined" in done.stdout and "executions" in done.stdout


def test_an_unknown_model_name_is_an_error_that_lists_the_known_ones(tmp_path: Path) -> None:
    done = headrace("data", "generate", "churm", "--out", str(tmp_path / "x.csv"))
    assert done.returncode == 2
    assert "no model named 'churm'" in done.stderr and "churn" in done.stderr


def test_local_up_refuses_a_bad_model_config_naming_the_file_and_field(tmp_path: Path) -> None:
    models = write_models(tmp_path / "models")
    raw = yaml.safe_load((models / "churn.yaml").read_text())
    raw["gate"]["approval"] = "sometimes"
    (models / "churn.yaml").write_text(yaml.safe_dump(raw))
    done = headrace(
        "local", "up", "--detach", "--models-dir", str(models), "--work-dir", str(tmp_path / "plane")
    )
    assert done.returncode == 2
    assert "churn.yaml" in done.stderr and "gate.approval" in done.stderr


def test_local_env_prints_export_lines_for_the_running_plane(plane: RunningPlane, tmp_path: Path) -> None:
    done = headrace("local", "env", "--work-dir", str(plane.work_dir))
    assert done.returncode == 0, done.stderr
    assert f"export AWS_ENDPOINT_URL={plane.info.endpoint}" in done.stdout.splitlines()


def test_state_survives_down_and_up_with_a_state_dir(
    tmp_path: Path, e2e_models_dir: Path, load_event: Any
) -> None:
    work_dir, state_dir = tmp_path / "plane", tmp_path / "state"
    info = start_detached(work_dir=work_dir, state_dir=state_dir, models_dir=e2e_models_dir)
    try:
        clients = info.clients()
        bucket = info.outputs["headrace-dev-data"]["DataBucketName"]
        body = (
            generate(RunningPlane(info, e2e_models_dir).models["churn"], 700, seed=8)
            .to_csv(index=False)
            .encode()
        )
        version = clients.s3.put_object(Bucket=bucket, Key="churn/incoming/kept.csv", Body=body)["VersionId"]
        machine = info.outputs["headrace-dev-pipeline"]["TrainingStateMachineChurn"]
        sfn = clients.client("stepfunctions")
        name = execution_name("churn", hashlib.sha256(body).hexdigest())
        wait_for(
            lambda: name in [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]],
            "the execution before down",
        )
    finally:
        stop_detached(work_dir)
    info = start_detached(work_dir=work_dir, state_dir=state_dir, models_dir=e2e_models_dir)
    try:
        clients = info.clients()
        assert (
            clients.s3.get_object(Bucket=bucket, Key="churn/incoming/kept.csv", VersionId=version)[
                "Body"
            ].read()
            == body
        )
        sfn = clients.client("stepfunctions")
        assert name in [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
        # The run interrupted by `down` is resumed or failed on `up` (never left RUNNING); the restored plane
        # still remembers the dataset: the same bytes again are a duplicate after a finished run, and a new
        # attempt after a failed one.
        arn = f"{machine.replace(':stateMachine:', ':execution:')}:{name}"
        wait_for(
            lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING",
            "the interrupted execution to end",
            timeout_s=240,
        )
        ended = sfn.describe_execution(executionArn=arn)["status"]
        if ended != "SUCCEEDED":
            # The re-upload's own S3 event starts the next attempt (a direct call would race it).
            clients.s3.put_object(Bucket=bucket, Key="churn/incoming/kept-again.csv", Body=body)
            retry = attempt_execution_name("churn", hashlib.sha256(body).hexdigest(), 2)
            names = lambda: [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]  # noqa: E731
            wait_for(
                lambda: retry in names(),
                "the second attempt after the failed run",
                timeout_s=120,
            )
            return
        again = clients.s3.put_object(Bucket=bucket, Key="churn/incoming/kept-again.csv", Body=body)[
            "VersionId"
        ]
        event = load_event("s3_object_created")
        event["detail"]["bucket"]["name"] = bucket
        event["detail"]["object"].update(
            {"key": "churn/incoming/kept-again.csv", "size": len(body), "version-id": again}
        )
        response = clients.lambda_.invoke(FunctionName="headrace-dev-ingest", Payload=json.dumps(event))
        assert json.loads(response["Payload"].read())["outcome"] == "duplicate"
    finally:
        stop_detached(work_dir)


def test_a_second_plane_on_the_same_work_dir_is_refused(plane: RunningPlane) -> None:
    with pytest.raises(PlaneError, match="already running"):
        start_detached(work_dir=plane.work_dir or Path(".headrace"))
