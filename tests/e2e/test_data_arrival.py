"""Data arriving in S3 on the local plane, through plain boto3 over HTTP: validated, versioned, started once;
bad files quarantined with the right reason and nothing lost."""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pandas as pd
import pytest

from headrace.datagen import generate
from headrace.naming import execution_name
from headrace.status import collect
from headrace.waiting import wait_for

from .conftest import E2E_MAX_FILE_MB, RunningPlane

pytestmark = pytest.mark.e2e


def _s3(plane: RunningPlane) -> Any:
    # Plain boto3, as a user's script would call it.
    return boto3.client(
        "s3",
        endpoint_url=plane.info.endpoint,
        region_name=plane.info.region,
        aws_access_key_id=plane.info.credentials.access_key_id,
        aws_secret_access_key=plane.info.credentials.secret_access_key,
    )


def _executions(plane: RunningPlane, model: str) -> list[dict[str, Any]]:
    sfn = plane.clients.client("stepfunctions")
    arn = plane.deployment.model(model).training_state_machine_arn
    return list(sfn.list_executions(stateMachineArn=arn)["executions"])


def _execution_for(plane: RunningPlane, model: str, sha256: str) -> dict[str, Any]:
    name = execution_name(model, sha256)
    return wait_for(
        lambda: next((e for e in _executions(plane, model) if e["name"] == name), None),
        f"execution {name}",
        timeout_s=60,
    )


def _reason_for(plane: RunningPlane, key: str) -> dict[str, Any]:
    s3 = _s3(plane)
    bucket = plane.deployment.data_bucket
    top = key.split("/", 1)[0]

    def find() -> dict[str, Any] | None:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{top}/quarantine/").get("Contents", [])
        for item in listed:
            if item["Key"].endswith("reason.json"):
                doc = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                if doc["source"]["key"] == key:
                    doc["_reason_key"] = item["Key"]
                    return dict(doc)
        return None

    return wait_for(find, f"quarantine reason for {key}", timeout_s=60)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _good(plane: RunningPlane, rows: int = 2_000, seed: int | None = None) -> pd.DataFrame:
    return generate(plane.models["churn"], rows, seed=seed if seed is not None else uuid.uuid4().int % 10_000)


def test_a_good_csv_starts_one_execution_with_the_dataset_version_as_input(plane: RunningPlane) -> None:
    body = _csv(_good(plane))
    sha = hashlib.sha256(body).hexdigest()
    key = "churn/incoming/good.csv"
    version = _s3(plane).put_object(Bucket=plane.deployment.data_bucket, Key=key, Body=body)["VersionId"]
    execution = _execution_for(plane, "churn", sha)
    described = plane.clients.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    dataset = json.loads(described["input"])["dataset"]
    assert (dataset["sha256"], dataset["key"], dataset["version_id"], dataset["rows"]) == (
        sha,
        key,
        version,
        2_000,
    )
    assert dataset["schema_fingerprint"] == plane.models["churn"].data.fingerprint()
    assert [e["name"] for e in _executions(plane, "churn")].count(execution_name("churn", sha)) == 1


def test_a_good_parquet_file_of_the_second_model_starts_that_models_execution(plane: RunningPlane) -> None:
    frame = generate(plane.models["returns"], 300, seed=11)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    body = buffer.getvalue()
    _s3(plane).put_object(
        Bucket=plane.deployment.data_bucket, Key="returns/incoming/batch.parquet", Body=body
    )
    execution = _execution_for(plane, "returns", hashlib.sha256(body).hexdigest())
    assert execution["stateMachineArn"] == plane.deployment.model("returns").training_state_machine_arn


def test_the_same_event_three_times_starts_exactly_one_execution(
    plane: RunningPlane, load_event: Any
) -> None:
    body = _csv(_good(plane))
    sha = hashlib.sha256(body).hexdigest()
    bucket = plane.deployment.data_bucket
    key = "churn/incoming/replayed.csv"
    version = _s3(plane).put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    _execution_for(plane, "churn", sha)
    event = load_event("s3_object_created")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update({"key": key, "size": len(body), "version-id": version})
    lambda_ = plane.clients.lambda_
    for _ in range(3):
        response = lambda_.invoke(FunctionName=plane.deployment.ingest_function, Payload=json.dumps(event))
        assert "FunctionError" not in response, response["Payload"].read()
    # The same bytes under another key are the same dataset version, too.
    _s3(plane).put_object(Bucket=bucket, Key="churn/incoming/copy-of-replayed.csv", Body=body)
    wait_for(lambda: plane_idle(plane), "event delivery", timeout_s=30)
    assert [e["name"] for e in _executions(plane, "churn")].count(execution_name("churn", sha)) == 1


def plane_idle(plane: RunningPlane) -> bool:
    # Deliveries run one at a time: a probe file's quarantine proves the ones before it were handled.
    key = f"unknown/incoming/probe-{uuid.uuid4().hex}.csv"
    _s3(plane).put_object(Bucket=plane.deployment.data_bucket, Key=key, Body=b"a\n1\n")
    return bool(_reason_for(plane, key))


def _frame_bytes(change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Callable[[RunningPlane], bytes]:
    def build(plane: RunningPlane) -> bytes:
        frame = _good(plane, rows=1_000, seed=5)
        changed = change(frame)
        return _csv(changed if changed is not None else frame)

    return build


def _set(column: str, rows: slice, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value
        return frame

    return change


def _truncated_parquet(plane: RunningPlane) -> bytes:
    buffer = io.BytesIO()
    _good(plane, rows=1_000, seed=5).to_parquet(buffer, index=False)
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def _oversized(plane: RunningPlane) -> bytes:
    frame = _good(plane, rows=40_000, seed=5)
    body = _csv(frame)
    assert len(body) > E2E_MAX_FILE_MB * 1024 * 1024
    return body


def _lines_changed(plane: RunningPlane, change: Callable[[int, bytes], bytes]) -> bytes:
    """A good file with `change(line number, line)` applied to each line (0 is the header)."""
    lines = _csv(_good(plane, rows=1_000, seed=5)).splitlines()
    return b"\n".join(change(n, line) for n, line in enumerate(lines))


BAD_FILES: dict[str, tuple[str, Callable[[RunningPlane], bytes], str]] = {
    # case: (key under the bucket, body, expected rule)
    "wrong columns": (
        "churn/incoming/wrong-columns.csv",
        _frame_bytes(lambda f: f.drop(columns=["support_calls"]).assign(favourite_colour="red")),
        "missing_columns",
    ),
    "wrong types": (
        "churn/incoming/wrong-types.csv",
        _frame_bytes(_set("tenure_months", slice(3, 9), "ten")),
        "type",
    ),
    "empty": ("churn/incoming/empty.csv", lambda _: b"", "empty"),
    "header only": ("churn/incoming/header-only.csv", _frame_bytes(lambda f: f.iloc[:0]), "header_only"),
    "binary": (
        "churn/incoming/binary.csv",
        lambda _: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2048),
        "binary",
    ),
    "non-UTF-8": (
        "churn/incoming/latin1.csv",
        lambda p: _csv(_good(p, rows=1_000, seed=5)).replace(b"north", "n\u00f6rth".encode("latin-1")),
        "encoding",
    ),
    "NaN flood": (
        "churn/incoming/nan-flood.csv",
        _frame_bytes(_set("total_charges", slice(0, 700), None)),
        "null_fraction",
    ),
    "nulls in a required column": (
        "churn/incoming/nulls.csv",
        _frame_bytes(_set("contract", slice(10, 12), None)),
        "nulls",
    ),
    "out of range": (
        "churn/incoming/range.csv",
        _frame_bytes(_set("monthly_charges", slice(0, 4), -3.0)),
        "range",
    ),
    "unknown category": (
        "churn/incoming/category.csv",
        _frame_bytes(_set("region", slice(7, 8), "atlantis")),
        "category",
    ),
    "too few rows": ("churn/incoming/few.csv", _frame_bytes(lambda f: f.iloc[:20]), "min_rows"),
    "truncated parquet": ("churn/incoming/truncated.parquet", _truncated_parquet, "parquet_corrupt"),
    "oversized": ("churn/incoming/oversized.csv", _oversized, "size"),
    "unsupported format": ("churn/incoming/notes.txt", lambda _: b"just some notes\n", "format"),
    "wrong key prefix": ("churm/incoming/typo-in-model.csv", _frame_bytes(lambda f: None), "key_prefix"),
    # issue 14, finding 9: structure explained in a person's words
    "semicolon-separated": (
        "churn/incoming/semicolons.csv",
        lambda p: _good(p, rows=1_000, seed=5).to_csv(index=False, sep=";").encode(),
        "format",
    ),
    "duplicate column": (
        "churn/incoming/duplicate-column.csv",
        _frame_bytes(lambda f: pd.concat([f, f[["region"]]], axis=1)),
        "duplicate_columns",
    ),
    "trailing comma": (
        "churn/incoming/trailing-comma.csv",
        lambda p: _lines_changed(p, lambda n, line: line if n == 0 else line + b","),
        "format",
    ),
    "short row": (
        "churn/incoming/short-row.csv",
        lambda p: _lines_changed(p, lambda n, line: b",".join(line.split(b",")[:3]) if n == 300 else line),
        "format",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_quarantined_with_the_right_reason_and_nothing_is_lost(
    plane: RunningPlane, case: str
) -> None:
    key, build, rule = BAD_FILES[case]
    body = build(plane)
    bucket = plane.deployment.data_bucket
    s3 = _s3(plane)
    version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    reason = _reason_for(plane, key)
    rules = [p["rule"] for p in reason["problems"]]
    assert rule in rules, reason["problems"]
    problem = next(p for p in reason["problems"] if p["rule"] == rule)
    assert problem["message"]
    # Nothing lost: the original is still there, and the quarantined copy is byte-identical.
    assert s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == body
    copy_key = reason["_reason_key"].rsplit("/", 1)[0] + "/" + key.rsplit("/", 1)[-1]
    assert s3.get_object(Bucket=bucket, Key=copy_key)["Body"].read() == body
    assert reason["source"]["version_id"] == version


def test_a_rejection_reaches_cloudwatch_as_a_metric_and_the_log_as_log_events(plane: RunningPlane) -> None:
    key = "churn/incoming/metric-probe.csv"
    _s3(plane).put_object(Bucket=plane.deployment.data_bucket, Key=key, Body=b"")
    _reason_for(plane, key)
    cloudwatch = plane.clients.client("cloudwatch")
    metrics = wait_for(
        lambda: cloudwatch.list_metrics(Namespace="Headrace", MetricName="DatasetsRejected")["Metrics"],
        "the DatasetsRejected metric",
        timeout_s=30,
    )
    assert any({"Name": "model", "Value": "churn"} in m["Dimensions"] for m in metrics)
    logs = plane.clients.client("logs")
    events = logs.filter_log_events(
        logGroupName="/aws/lambda/headrace-dev-ingest", filterPattern="metric-probe"
    )
    assert events["events"], "the handler's log mentions the file it quarantined"


@pytest.mark.parametrize("name", ["red flower.csv", "a+b.csv", "a%20b.csv"])
def test_keys_with_spaces_plus_and_percent_are_ingested(plane: RunningPlane, name: str) -> None:
    # issue 14, finding 6: the plane delivers keys URL-encoded, as S3 does, and ingest decodes them once.
    body = _csv(_good(plane))
    _s3(plane).put_object(Bucket=plane.deployment.data_bucket, Key=f"churn/incoming/{name}", Body=body)
    execution = _execution_for(plane, "churn", hashlib.sha256(body).hexdigest())
    described = plane.clients.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"])["dataset"]["key"] == f"churn/incoming/{name}"


@pytest.mark.parametrize("key", ["stray.csv", "churn/incomming/misspelt.csv"])
def test_a_misplaced_file_is_listed_by_status_with_where_it_belongs(plane: RunningPlane, key: str) -> None:
    # issue 14, finding 10: a file no model reads still gets feedback.
    _s3(plane).put_object(Bucket=plane.deployment.data_bucket, Key=key, Body=b"a,b\n1,2\n")

    def listed() -> list[Any]:
        report = collect(
            plane.clients.client("dynamodb"), plane.clients.client("stepfunctions"), plane.deployment
        )
        return [m for m in report.misplaced if m.key == key]

    [row] = wait_for(listed, f"{key} listed as misplaced", timeout_s=30)
    assert "incoming/" in row.hint
