"""`headrace quality` at the command line, and how a quality check reads to people: the verdict, the gate
metric live against its threshold and the version's own test metric, error bounds, slices, reasons; a result
document that is missing or malformed exits 1 naming it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rich.console import Console
from typer.testing import CliRunner, Result

from headrace.cli.main import app
from headrace.cli.quality import QualityDocument, render, status_table
from headrace.cli.target import Target
from headrace.config import ModelConfig
from headrace.deployment import DeploymentInfo, describe
from headrace.ledger.quality import QualityCheckItem
from headrace.naming import Names, Outputs
from headrace.status import QualityCheckRow

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:headrace-dev-churn-quality"
RESULT_URI = "s3://data/churn/monitoring/quality/20261206T100000Z-cli-1/result.json"
REPORT_URI = "s3://data/churn/monitoring/quality/20261206T100000Z-cli-1/report.html"
METRICS: dict[str, Any] = {
    "objective": "binary:logistic",
    "rows": 812,
    "metrics": {"auc": 0.7123, "logloss": 0.58, "accuracy": 0.69, "error": 0.31},
    "error_bounds": {"auc": 0.00012},
    "slices": {
        "region": {
            "north": {"rows": 400, "metrics": {"auc": 0.64, "logloss": 0.7}, "error_bounds": {"auc": 0.003}},
            "south": {"rows": 412, "metrics": {"auc": 0.78, "logloss": 0.5}, "error_bounds": {"auc": 0.002}},
        }
    },
}
BREACH: dict[str, Any] = {
    "model": "churn",
    "check_id": "2026-12-06T10:00:00Z#cli-1",
    "since": "2026-11-29T10:00:00+00:00",
    "until": "2026-12-06T10:00:00+00:00",
    "endpoint_config": "headrace-dev-churn-v1",
    "captured_rows": 1_000,
    "max_regression": 0.01,
    "status": "breach",
    "labelled_rows": 812,
    "unknown_labels": 3,
    "min_labels": 200,
    "metric": "auc",
    "value": 0.7123,
    "threshold": 0.75,
    "baseline": 0.894,
    "metrics": METRICS,
    "reasons": ["auc 0.712 is below the threshold 0.75 (gate.thresholds.auc)"],
    "production_dataset_key": "churn/incoming/production/20261206T100000Z-cli-1.csv",
}


def shown(parts: list[Any]) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    for part in parts:
        console.print(part)
    return console.export_text()


def row(text: str, first: str, second: str | None = None) -> list[str]:
    """The cells of the table row whose first (and second) cell are these."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells[:1] == [first] and (second is None or cells[1:2] == [second]):
            return cells
    raise AssertionError(f"no row {first} {second or ''} in:\n{text}")


def test_a_breach_shows_the_gate_metric_live_against_threshold_and_own_test_with_its_bound() -> None:
    text = shown(render("churn", QualityDocument.model_validate(BREACH)))
    assert "churn: breach: auc 0.7123 ±0.00012 (threshold ≥ 0.75, own test 0.894)" in text
    assert "812 labelled rows, 3 labels with no captured inference" in text
    assert "• auc 0.712 is below the threshold 0.75 (gate.thresholds.auc)" in text
    assert "labelled production rows: churn/incoming/production/20261206T100000Z-cli-1.csv" in text


def test_each_metric_says_whether_it_is_exact_or_its_error_bound() -> None:
    text = shown(render("churn", QualityDocument.model_validate(BREACH)))
    assert row(text, "auc") == ["auc", "0.7123", "0.00012", "≥ 0.75", "0.894"]
    assert row(text, "logloss") == ["logloss", "0.58", "exact", "", ""]


def test_the_slice_table_has_a_row_per_value_with_its_rows_and_metrics() -> None:
    text = shown(render("churn", QualityDocument.model_validate(BREACH)))
    assert row(text, "region", "north") == ["region", "north", "400", "0.64 ±0.003", "0.7", "-", "-"]
    assert row(text, "region", "south")[:4] == ["region", "south", "412", "0.78 ±0.002"]


def test_a_lower_is_better_gate_metric_shows_its_threshold_as_a_ceiling() -> None:
    doc = QualityDocument(
        status="ok", labelled_rows=500, metric="rmse", value=3.2, threshold=4.0, baseline=3.0
    )
    assert "rmse 3.2 (threshold ≤ 4, own test 3)" in shown(render("price", doc))


def test_too_few_labels_says_how_many_were_needed_and_judges_nothing() -> None:
    doc = QualityDocument(status="too_few_labels", labelled_rows=12, unknown_labels=0, min_labels=200)
    text = shown(render("churn", doc))
    assert (
        "too few labels to judge (12 labelled rows, 0 labels with no captured inference, 200 needed)" in text
    )
    assert "breach" not in text


def test_status_shows_a_check_from_its_ledger_item_with_metrics_parsed() -> None:
    item = QualityCheckItem(
        model="churn",
        check_id="2026-12-06T10:00:00Z#cli-1",
        since="2026-11-29T10:00:00+00:00",
        until="2026-12-06T10:00:00+00:00",
        status="breach",
        labelled_rows=812,
        unknown_labels=3,
        metric="auc",
        value=0.7123,
        threshold=0.75,
        baseline=0.894,
        metrics=json.dumps(METRICS),
        reasons=["auc fell below 0.75"],
    )
    checked = QualityCheckRow.model_validate(item.model_dump())
    assert checked.metrics is not None and checked.metrics["error_bounds"] == {"auc": 0.00012}
    assert row(shown([status_table([checked])]), "churn") == [
        "churn",
        "2026-12-06T10:00:00",
        "breach",
        "812",
        "3",
        "auc 0.7123 ±0.00012 (threshold ≥ 0.75, own test 0.894)",
        "auc fell below 0.75",
    ]


# The command itself, against fakes: no network in unit tests.


class FakeStepFunctions:
    def __init__(self, output: dict[str, Any] | None, status: str = "SUCCEEDED") -> None:
        self.output, self.status = output, status
        self.started: list[dict[str, Any]] = []

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"executionArn": "arn"}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {
            "status": self.status,
            "output": json.dumps(self.output),
            "error": "States.TaskFailed",
            "cause": "boom",
        }


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        uri = f"s3://{Bucket}/{Key}"
        if uri not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no such key"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[uri])}


class FakeCloudFormation:
    def __init__(self, quality: bool) -> None:
        self.quality = quality

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        outputs = {
            Outputs.DATA_BUCKET: "data",
            Outputs.LEDGER_TABLE: "ledger",
            Outputs.INGEST_FUNCTION: "ingest",
            Outputs.training_state_machine("churn"): MACHINE.replace("quality", "training"),
        }
        if self.quality:
            outputs[Outputs.quality_state_machine("churn")] = MACHINE
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}


def outcome(status: str = "breach") -> dict[str, Any]:
    return {
        "check": {
            "model": "churn",
            "check_id": "2026-12-06T10:00:00Z#cli-1",
            "status": status,
            "labelled_rows": 812,
            "unknown_labels": 3,
            "metric": "auc",
            "value": 0.7123,
            "result_uri": RESULT_URI if status != "not_serving" else None,
            "report_uri": REPORT_URI if status != "not_serving" else None,
            "production_dataset_key": None,
        }
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The services the command asks for; a test replaces an entry to change what AWS answers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEADRACE_MODELS_DIR", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    services: dict[str, Any] = {
        "cloudformation": FakeCloudFormation(quality=True),
        "stepfunctions": FakeStepFunctions(outcome()),
        "s3": FakeS3({RESULT_URI: json.dumps(BREACH).encode(), REPORT_URI: b"<html>quality</html>"}),
    }
    monkeypatch.setattr(Target, "client", lambda target, service: services[service])
    return services


def headrace(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


def test_quality_help_explains_the_exit_codes_and_shows_an_example() -> None:
    done = headrace("quality", "--help")
    assert done.exit_code == 0
    assert "Example: headrace quality churn" in done.stdout
    assert "--no-wait" in done.stdout


def test_quality_of_an_unknown_model_exits_2_naming_the_known_ones(aws: dict[str, Any]) -> None:
    done = headrace("quality", "nosuch")
    assert done.exit_code == 2
    assert "no model named 'nosuch'" in done.stderr
    assert "known models: churn" in done.stderr
    assert aws["stepfunctions"].started == []


def test_a_breach_exits_1_after_showing_the_check(aws: dict[str, Any]) -> None:
    done = headrace("quality", "churn")
    assert done.exit_code == 1, done.stderr
    assert "churn: breach: auc 0.7123" in done.stdout
    started = aws["stepfunctions"].started
    assert [(s["stateMachineArn"], json.loads(s["input"])) for s in started] == [
        (MACHINE, {"trigger": "cli"})
    ]


def test_json_prints_the_result_document_as_the_check_wrote_it(aws: dict[str, Any]) -> None:
    written = {**BREACH, "a_field_the_cli_does_not_show": [1, 2]}
    aws["s3"].objects[RESULT_URI] = json.dumps(written).encode()
    done = headrace("quality", "churn", "--json")
    assert done.exit_code == 1
    printed = json.loads(done.stdout)
    assert printed["result"] == written
    assert printed["check"]["result_uri"] == RESULT_URI


def test_html_writes_the_report(aws: dict[str, Any], tmp_path: Path) -> None:
    done = headrace("quality", "churn", "--html", str(tmp_path / "q.html"))
    assert done.exit_code == 1
    assert (tmp_path / "q.html").read_bytes() == b"<html>quality</html>"


def test_a_missing_result_document_exits_1_naming_it(aws: dict[str, Any]) -> None:
    del aws["s3"].objects[RESULT_URI]
    done = headrace("quality", "churn")
    assert done.exit_code == 1
    assert f"cannot read the quality check's result {RESULT_URI}" in done.stderr
    assert "NoSuchKey" in done.stderr


def test_a_malformed_result_document_exits_1_naming_it_and_the_field(aws: dict[str, Any]) -> None:
    aws["s3"].objects[RESULT_URI] = json.dumps({**BREACH, "labelled_rows": "many"}).encode()
    done = headrace("quality", "churn")
    assert done.exit_code == 1
    assert f"the quality check's result {RESULT_URI} is malformed: labelled_rows:" in done.stderr


def test_a_result_that_is_not_json_exits_1_naming_it(aws: dict[str, Any]) -> None:
    aws["s3"].objects[RESULT_URI] = b"{not json"
    done = headrace("quality", "churn")
    assert done.exit_code == 1
    assert f"{RESULT_URI} is malformed" in done.stderr


def test_a_failed_execution_exits_1_with_its_error_and_cause(aws: dict[str, Any]) -> None:
    aws["stepfunctions"] = FakeStepFunctions(None, status="FAILED")
    done = headrace("quality", "churn")
    assert done.exit_code == 1
    assert "ended FAILED: States.TaskFailed: boom" in done.stderr


def test_no_endpoint_serving_exits_0_saying_so(aws: dict[str, Any]) -> None:
    aws["stepfunctions"] = FakeStepFunctions(outcome("not_serving"))
    done = headrace("quality", "churn")
    assert done.exit_code == 0
    assert "no endpoint serving yet" in done.stdout


def test_no_wait_starts_the_check_and_prints_its_execution(aws: dict[str, Any]) -> None:
    done = headrace("quality", "churn", "--no-wait", "--json")
    assert done.exit_code == 0
    arn = json.loads(done.stdout)["execution_arn"]
    name = aws["stepfunctions"].started[0]["name"]
    assert arn == MACHINE.replace(":stateMachine:", ":execution:") + f":{name}"


def test_a_stack_without_the_quality_workflow_exits_3_saying_to_deploy(aws: dict[str, Any]) -> None:
    aws["cloudformation"] = FakeCloudFormation(quality=False)
    done = headrace("quality", "churn")
    assert done.exit_code == 3
    assert "has no quality workflow for 'churn'" in done.stderr


def test_the_deployment_reads_the_quality_state_machine_from_the_stack_outputs(
    example_model: ModelConfig,
) -> None:
    found: DeploymentInfo = describe(FakeCloudFormation(quality=True), Names("dev"), [example_model])
    assert found.model("churn").quality_state_machine_arn == MACHINE
    older = describe(FakeCloudFormation(quality=False), Names("dev"), [example_model])
    assert older.model("churn").quality_state_machine_arn is None


def test_drift_shares_the_check_runner_a_missing_drift_result_exits_1_naming_it(
    aws: dict[str, Any],
) -> None:
    drift_machine = MACHINE.replace("quality", "drift")
    drift_result = "s3://data/churn/monitoring/checks/x/result.json"

    class WithDrift(FakeCloudFormation):
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            stacks = super().describe_stacks(StackName)
            stacks["Stacks"][0]["Outputs"].append(
                {"OutputKey": Outputs.drift_state_machine("churn"), "OutputValue": drift_machine}
            )
            return stacks

    aws["cloudformation"] = WithDrift(quality=True)
    aws["stepfunctions"] = FakeStepFunctions({"check": {"status": "stable", "result_uri": drift_result}})
    done = headrace("drift", "churn")
    assert done.exit_code == 1
    assert f"cannot read the drift check's result {drift_result}" in done.stderr
    assert aws["stepfunctions"].started[0]["stateMachineArn"] == drift_machine
