"""`headrace predict`, `endpoints`, `rollback` at the command line: usage errors exit 2 before any AWS call,
a refused row exits 1 naming it."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner, Result

from headrace.cli.main import app
from headrace.cli.target import Target

ROW = "3,49.5,,month-to-month,card,4,north,false"


class NoAws:
    """A Target.client for tests where reaching AWS at all is the bug."""

    def __call__(self, target: Target, service: str) -> Any:
        raise AssertionError(f"the command asked for a {service} client")


class RecordingRuntime:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"Body": io.BytesIO(b'{"predictions": [0.8125]}'), "InvokedProductionVariant": "AllTraffic"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No local plane found through the working directory, the repo's models/, no AWS.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEADRACE_MODELS_DIR", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # nor a plane `local up` started elsewhere
    monkeypatch.setattr(Target, "client", NoAws())


def headrace(*args: str, stdin: str | None = None) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args), input=stdin)


def runtime_answering(monkeypatch: pytest.MonkeyPatch, runtime: Any) -> None:
    monkeypatch.setattr(Target, "client", lambda target, service: runtime)


def test_predict_without_rows_exits_2() -> None:
    done = headrace("predict", "churn")
    assert done.exit_code == 2
    assert "exactly one of --csv FILE and --json" in done.stderr


def test_predict_with_both_csv_and_json_exits_2(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(ROW)
    done = headrace("predict", "churn", "--csv", "rows.csv", "--json", "[[1]]")
    assert done.exit_code == 2
    assert "exactly one of" in done.stderr


def test_predict_for_an_unknown_model_exits_2_naming_the_known_ones() -> None:
    done = headrace("predict", "nosuch", "--json", "[[1]]")
    assert done.exit_code == 2
    assert "no model named 'nosuch'" in done.stderr
    assert "known models: churn" in done.stderr


def test_predict_with_a_csv_file_that_cannot_be_read_exits_2() -> None:
    done = headrace("predict", "churn", "--csv", "missing.csv")
    assert done.exit_code == 2
    assert "cannot read CSV file 'missing.csv'" in done.stderr


def test_predict_with_a_json_file_that_cannot_be_read_exits_2() -> None:
    done = headrace("predict", "churn", "--json", "@missing.json")
    assert done.exit_code == 2
    assert "cannot read JSON file 'missing.json'" in done.stderr


def test_predict_with_json_that_does_not_parse_exits_2() -> None:
    done = headrace("predict", "churn", "--json", "{instances: [")
    assert done.exit_code == 2
    assert "--json is not JSON" in done.stderr


def test_predict_with_json_holding_no_rows_exits_2() -> None:
    done = headrace("predict", "churn", "--json", '{"instances": []}')
    assert done.exit_code == 2
    assert "--json holds no rows" in done.stderr


def test_predict_with_a_csv_row_wider_than_its_header_exits_2_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("tenure_months,region\n3,north\n4,south,extra\n")
    done = headrace("predict", "churn", "--csv", "rows.csv")
    assert done.exit_code == 2
    assert "line 3 of the CSV has 3 values" in done.stderr


def test_a_csv_header_like_data_generates_sends_features_by_name_without_the_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runtime = RecordingRuntime()
    runtime_answering(monkeypatch, runtime)
    (tmp_path / "rows.csv").write_text("region,tenure_months,churned\nnorth,3,1\n")
    done = headrace("predict", "churn", "--csv", "rows.csv", "--json-output")
    assert done.exit_code == 0, done.stderr
    assert json.loads(runtime.requests[0]["Body"]) == {
        "instances": [{"region": "north", "tenure_months": "3"}]
    }


def test_headerless_csv_from_stdin_is_sent_as_text_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = RecordingRuntime()
    runtime_answering(monkeypatch, runtime)
    done = headrace("predict", "churn", "--csv", "-", "--json-output", stdin=ROW + "\n")
    assert done.exit_code == 0, done.stderr
    assert (runtime.requests[0]["ContentType"], runtime.requests[0]["Body"]) == (
        "text/csv",
        (ROW + "\n").encode(),
    )
    assert json.loads(done.stdout)["predictions"] == [0.8125]


def test_predict_sends_the_given_inference_id_and_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = RecordingRuntime()
    runtime_answering(monkeypatch, runtime)
    done = headrace("predict", "churn", "--json", "[[3]]", "--inference-id", "order-17", "--json-output")
    assert done.exit_code == 0, done.stderr
    assert runtime.requests[0]["InferenceId"] == "order-17"
    assert json.loads(done.stdout)["inference_id"] == "order-17"


def test_predict_without_an_inference_id_sends_a_new_uuid4_and_shows_it_in_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = RecordingRuntime()
    runtime_answering(monkeypatch, runtime)
    first, _ = (headrace("predict", "churn", "--csv", "-", stdin=ROW + "\n") for _ in range(2))
    assert first.exit_code == 0, first.stderr
    sent = [r["InferenceId"] for r in runtime.requests]
    assert [uuid.UUID(i).version for i in sent] == [4, 4] and sent[0] != sent[1]
    assert f"inference id {sent[0]}" in first.stdout


def test_predict_help_explains_how_to_send_ground_truth() -> None:
    done = headrace("predict", "--help")
    assert "<model>/ground-truth/incoming/" in done.stdout
    assert "inference_id,row,label" in done.stdout and '"groundTruthData"' in done.stdout


def test_a_row_the_model_refuses_exits_1_naming_row_and_column(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    container = {"error": "'lots' is not a number", "row": 0, "column": "monthly_charges"}
    runtime_answering(monkeypatch, runtime)
    with Stubber(runtime) as stubber:
        stubber.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message="Received client error (400) from primary",
            http_status_code=424,
            modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": json.dumps(container)},
        )
        done = headrace("predict", "churn", "--json", '[[3, "lots"]]')
    assert done.exit_code == 1
    assert "(400): 'lots' is not a number" in done.stderr
    assert "row 0 (counting from 0), column 'monthly_charges'" in done.stderr


@pytest.mark.parametrize("version", ["three", "v0", "v-1"])
def test_rollback_to_something_that_is_not_a_version_exits_2(version: str) -> None:
    done = headrace("rollback", "churn", version)
    assert done.exit_code == 2
    assert f"'{version}' is not a version number" in done.stderr


def test_rollback_of_an_unknown_model_exits_2_naming_the_known_ones() -> None:
    done = headrace("rollback", "nosuch", "v2")
    assert done.exit_code == 2
    assert "known models: churn" in done.stderr


@pytest.mark.parametrize("command", ["predict", "endpoints", "rollback"])
def test_every_serving_command_shows_an_example_in_its_help(command: str) -> None:
    done = headrace(command, "--help")
    assert done.exit_code == 0
    assert f"Example: headrace {command}" in done.stdout or f"&& headrace {command}" in done.stdout
