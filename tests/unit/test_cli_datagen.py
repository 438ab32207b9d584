"""`headrace data generate`: concept drift, and ground truth for captured requests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner, Result

from headrace.cli.main import app
from headrace.config import load_models
from headrace.local.sagemaker.telemetry import Capture
from headrace.quality.labels import LabelSpec, check_labels

MODELS = Path(__file__).resolve().parents[2] / "models"


def headrace(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [*args, "--models-dir", str(MODELS)])


def test_concept_drift_writes_the_same_features_with_other_labels(tmp_path: Path) -> None:
    assert (
        headrace("data", "generate", "churn", "--rows", "2000", "--out", str(tmp_path / "a.csv")).exit_code
        == 0
    )
    done = headrace(
        "data",
        "generate",
        "churn",
        "--rows",
        "2000",
        "--concept-drift",
        "1",
        "--out",
        str(tmp_path / "b.csv"),
    )
    assert done.exit_code == 0, done.stderr
    base, drifted = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(base.drop(columns="churned"), drifted.drop(columns="churned"))
    assert (base["churned"] != drifted["churned"]).mean() > 0.2


def test_labels_for_a_capture_folder_are_a_ground_truth_file_the_ingest_accepts(tmp_path: Path) -> None:
    capture = Capture.of(
        {
            "EnableCapture": True,
            "DestinationS3Uri": "s3://bucket/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }
    )
    assert capture is not None
    hour = tmp_path / "capture" / "headrace-dev-churn" / "AllTraffic" / "2025" / "01" / "02" / "03"
    hour.mkdir(parents=True)
    request = b"3,49.5,,month-to-month,card,4,north,false\n7,12.0,80,two-year,invoice,0,south,true\n"
    records = [
        capture.line(request, "text/csv", b'{"predictions": [0.5, 0.5]}', "application/json", f"order-{i}")
        for i in range(3)
    ]
    (hour / "00-00-000-x.jsonl").write_text("\n".join(records) + "\n")
    out = tmp_path / "truth.jsonl"
    done = headrace(
        "data", "generate", "churn", "--labels-for-capture", str(tmp_path / "capture"), "--out", str(out)
    )
    assert done.exit_code == 0, done.stderr
    assert "6 labels for 3 captured requests" in done.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["eventMetadata"]["eventId"] for line in lines] == ["order-0", "order-1", "order-2"]
    model = next(m for m in load_models(MODELS) if m.name == "churn")
    checked = check_labels(out.name, out.read_bytes(), LabelSpec.of(model))
    assert checked.accepted and checked.labels == 6


def test_labels_for_a_place_without_capture_files_exit_2_naming_it(tmp_path: Path) -> None:
    done = headrace("data", "generate", "churn", "--labels-for-capture", str(tmp_path), "--out", "t.jsonl")
    assert done.exit_code == 2
    assert f"no capture files (*.jsonl) at '{tmp_path}'" in done.stderr
