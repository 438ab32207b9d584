"""Batch scoring on the local plane: a file dropped under `<model>/batch/incoming/` (or handed to `headrace
batch --wait`) is validated, scored by a SageMaker transform job through the batch state machine CDK
synthesized, and every output row carries its inputs and the serving version's own score; a bad file is
quarantined with its reason; `headrace batches` lists the jobs; a batch of drifted inputs raises the
model's drift alarm."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.datagen import generate
from headrace.ledger import BatchItem, DynamoLedger
from headrace.ledger.batches import FINISHED_BATCH
from headrace.naming import Names
from headrace.serving.rollout import version_of
from headrace.waiting import wait_for

from .conftest import RunningPlane
from .test_cli_and_state import headrace
from .test_serving import _artifact, _deployment, _drop, _in_process, _package

pytestmark = pytest.mark.e2e

NAMES = Names("dev")
MODEL = "shop"
ROWS = 100_000


def _ledger(plane: RunningPlane) -> DynamoLedger:
    return DynamoLedger(plane.clients.client("dynamodb"), plane.deployment.ledger_table)


def _ended(plane: RunningPlane, key: str, timeout_s: float = 180) -> BatchItem:
    def ended() -> BatchItem | None:
        mine = [b for b in _ledger(plane).batches(MODEL) if b.input_key == key]
        return mine[0] if mine and mine[0].status in FINISHED_BATCH else None

    return wait_for(ended, f"the batch job of {key} to end", timeout_s=timeout_s, interval_s=0.5)


def _output(plane: RunningPlane, uri: str) -> pd.DataFrame:
    """The job's output objects in input order, parsed: the model's features, then the score."""
    bucket, prefix = uri.removeprefix("s3://").split("/", 1)
    s3 = plane.clients.s3
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    assert keys and all(k.endswith(".csv.out") for k in keys), keys
    features = [c.name for c in plane.models[MODEL].data.features]
    return pd.concat(
        [
            pd.read_csv(
                io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()),
                header=None,
                names=[*features, "score"],
                float_precision="round_trip",
            )
            for k in keys
        ],
        ignore_index=True,
    )


def _assert_scored(
    plane: RunningPlane, item: BatchItem, frame: pd.DataFrame, serving: tuple[int, dict[str, bytes]]
) -> None:
    version, files = serving
    assert item.status == "Completed", item
    assert (item.rows, item.version) == (len(frame), version)
    assert item.output_uri is not None
    output = _output(plane, item.output_uri)
    assert len(output) == len(frame)
    # Each output row is its input row (JoinSource Input), in the input's order...
    for column in plane.models[MODEL].data.features:
        got, sent = output[column.name], frame[column.name].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(sent) or pd.api.types.is_bool_dtype(sent):
            # Ingest's CSV parser may land a decimal on the neighbouring double: within an ulp or two.
            np.testing.assert_allclose(
                got.to_numpy(float), sent.to_numpy(float), rtol=1e-12, err_msg=column.name
            )
        else:
            assert got.astype(str).tolist() == sent.astype(str).tolist(), column.name
    # ... followed by the serving version's own score for it.
    np.testing.assert_allclose(output["score"].to_numpy(), _in_process(files, frame), rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def serving(plane: RunningPlane) -> tuple[int, dict[str, bytes]]:
    """The serving version and its model artifact's files (the booster the batch must agree with). The same
    drop as test_serving's first: shop's v1, trained once whichever test comes first."""
    _drop(plane, MODEL, seed=101)
    execution = _deployment(plane, MODEL, 1)
    assert execution["status"] == "SUCCEEDED", execution
    config = plane.clients.client("sagemaker").describe_endpoint(EndpointName=NAMES.endpoint(MODEL))
    version = version_of(config["EndpointConfigName"])
    assert version is not None, config
    url = _package(plane, MODEL, version)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    return version, _artifact(plane, url)


def test_a_dropped_batch_file_is_scored_with_its_inputs_and_the_serving_versions_scores(
    plane: RunningPlane, serving: tuple[int, dict[str, bytes]]
) -> None:
    model = plane.models[MODEL]
    frame = generate(model, ROWS, seed=302).drop(columns=[model.data.target])
    # The schema's columns in any order, with a header; the target left out.
    body = frame[list(reversed(frame.columns))].to_csv(index=False)
    info = plane.deployment.model(MODEL)
    key = f"{MODEL}/batch/incoming/customers.csv"
    plane.clients.s3.put_object(Bucket=info.data_bucket, Key=key, Body=body)

    item = _ended(plane, key)
    _assert_scored(plane, item, frame, serving)
    assert item.output_uri == f"s3://{info.data_bucket}/{MODEL}/batch/output/{item.job_name}/"
    # Two transform instances: the input was split in two, each part scored on its own instance.
    listed = plane.clients.s3.list_objects_v2(
        Bucket=info.data_bucket, Prefix=f"{MODEL}/batch/input/{item.sha256}/"
    )
    assert len(listed["Contents"]) == model.batch.instance_count == 2
    job = plane.clients.client("sagemaker").describe_transform_job(TransformJobName=item.job_name)
    assert job["TransformJobStatus"] == "Completed"
    assert job["DataProcessing"] == {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": "$"}
    assert item.drift_status == "stable", item


def test_the_cli_scores_a_file_and_lists_the_jobs(
    plane: RunningPlane, serving: tuple[int, dict[str, bytes]], tmp_path: Path
) -> None:
    model = plane.models[MODEL]
    frame = generate(model, 3000, seed=303).drop(columns=[model.data.target])
    source = tmp_path / "march.csv"
    frame.to_csv(source, index=False)
    models = ("--models-dir", str(plane.models_dir))
    done = headrace("batch", MODEL, str(source), "--wait", "--json", *models, plane=plane)
    assert done.returncode == 0, done.stdout + done.stderr
    item = BatchItem.model_validate(json.loads(done.stdout))
    assert item.input_key == f"{MODEL}/batch/incoming/march.csv"
    _assert_scored(plane, item, frame, serving)

    listed = headrace("batches", MODEL, "--json", *models, plane=plane)
    assert listed.returncode == 0, listed.stderr
    jobs = {j["job_name"]: j for j in json.loads(listed.stdout)}
    assert jobs[item.job_name]["status"] == "Completed"
    assert (jobs[item.job_name]["rows"], jobs[item.job_name]["output_uri"]) == (3000, item.output_uri)
    table = headrace("batches", MODEL, *models, plane=plane)
    assert table.returncode == 0 and item.job_name in table.stdout, table.stdout + table.stderr


def test_a_bad_batch_file_is_quarantined_with_its_reason(
    plane: RunningPlane, serving: tuple[int, dict[str, bytes]], tmp_path: Path
) -> None:
    model = plane.models[MODEL]
    frame = generate(model, 500, seed=304).drop(columns=[model.data.target, "contract"])
    source = tmp_path / "no-contract.csv"
    frame.to_csv(source, index=False)
    done = headrace(
        "batch", MODEL, str(source), "--wait", "--json", "--models-dir", str(plane.models_dir), plane=plane
    )
    assert done.returncode == 1, done.stdout + done.stderr
    rejection = json.loads(done.stdout)
    reason_key = rejection["reason_key"]
    bucket = plane.deployment.model(MODEL).data_bucket
    reason = json.loads(plane.clients.s3.get_object(Bucket=bucket, Key=reason_key)["Body"].read())
    assert any("contract" in json.dumps(p) for p in reason["problems"]), reason
    # Nothing was scored, nothing is lost: the original stays where it was dropped.
    assert not [b for b in _ledger(plane).batches(MODEL) if b.input_key.endswith("no-contract.csv")]
    plane.clients.s3.head_object(Bucket=bucket, Key=f"{MODEL}/batch/incoming/no-contract.csv")


def test_a_batch_of_drifted_inputs_raises_the_drift_alarm(
    plane: RunningPlane, serving: tuple[int, dict[str, bytes]]
) -> None:
    model = plane.models[MODEL]
    alarm = NAMES.model_alarm(MODEL, "drift")
    cloudwatch = plane.clients.client("cloudwatch")
    assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] != "ALARM"
    frame = generate(model, 1000, seed=305, drift=1.0).drop(columns=[model.data.target])
    key = f"{MODEL}/batch/incoming/drifted.csv"
    bucket = plane.deployment.model(MODEL).data_bucket
    plane.clients.s3.put_object(Bucket=bucket, Key=key, Body=frame.to_csv(index=False))

    item = _ended(plane, key)
    assert item.status == "Completed", item
    assert item.drift_status == "drifted" and item.drifted_features, item
    assert item.drift_report_uri is not None
    report_key = item.drift_report_uri.removeprefix(f"s3://{bucket}/")
    assert b"drifted" in plane.clients.s3.get_object(Bucket=bucket, Key=report_key)["Body"].read()

    def alarmed() -> dict[str, Any] | None:
        found = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
        return dict(found) if found["StateValue"] == "ALARM" else None

    wait_for(alarmed, f"{alarm} in ALARM", timeout_s=60, interval_s=0.5)
