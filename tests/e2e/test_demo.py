"""`headrace demo` end to end, as `make demo` runs it, on a plane of its own (its own work dir and port, so
the session's plane is not touched): every step happens, the summary is printed and the report written. It
runs with --keep, so that what each step claimed is checked here against the plane's ledger and registry,
not only against what the demo printed; the test stops that plane afterwards.

The story (issue 16): after v1 serves, concept drift arrives; the drift check says stable, the quality check
says the AUC fell, its alarm retrains on the labelled production rows, and v2 beats v1 on the recent holdout
before its canary; a broken v3 is rolled back. While v1 serves, a table is scored in batch (issue 17)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.config import ModelConfig, load_model_file
from headrace.demo.batch import BATCH_FILE_ROWS, SAMPLE_EVERY, batch_frame
from headrace.deployment import DeploymentInfo, describe
from headrace.ledger import DynamoLedger, RetrainDecision
from headrace.local.control import stop_detached
from headrace.local.plane_info import PlaneInfo, read_info
from headrace.monitoring.retrain import EPOCH as DATASETS_SINCE
from headrace.naming import Names
from headrace.serving.rollout import version_of
from headrace.training.payloads import GateResult

from .conftest import REPO
from .test_serving import _in_process

pytestmark = pytest.mark.e2e

# The demo's own budget is about 3 minutes on 2 cores; a loaded machine gets some slack.
DEMO_TIMEOUT_S = 480


@dataclass(frozen=True)
class Demo:
    done: subprocess.CompletedProcess[str]
    work_dir: Path
    record: dict[str, Any]
    info: PlaneInfo | None
    model: ModelConfig

    def plane(self) -> tuple[Any, DeploymentInfo, DynamoLedger]:
        if self.info is None:
            pytest.fail("the demo's plane is not up: " + self.done.stdout[-3000:] + self.done.stderr[-2000:])
        clients = self.info.clients()
        deployment = describe(clients.cloudformation, Names(self.info.stage), [self.model])
        return clients, deployment, DynamoLedger(clients.client("dynamodb"), deployment.ledger_table)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    work_dir = tmp_path_factory.mktemp("demo")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "headrace.cli.main", "demo", "--keep", "--work-dir", str(work_dir)],
            env={**os.environ, "COLUMNS": "200"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT_S,
            check=False,
        )
        record = dict(json.loads((work_dir / "record.json").read_text()))
        model = load_model_file(work_dir / "models" / "churn.yaml")
        yield Demo(done, work_dir, record, read_info(work_dir), model)
    finally:
        stop_detached(work_dir)
        assert read_info(work_dir) is None


def test_every_step_happens_and_the_summary_is_printed(demo: Demo) -> None:
    done, record = demo.done, demo.record
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert record["failed_step"] is None
    assert all(step["status"] == "done" for step in record["steps"])
    assert "versions" in done.stdout and "time to…" in done.stdout
    assert "auc recent" in done.stdout  # v1 and v2 side by side on the recent holdout
    assert "batch scored (20,000 rows)" in done.stdout  # the batch's row in the "time to…" table
    assert "the demo's plane is still up" in done.stdout and "headrace local up --detach" in done.stdout
    print(f"the demo took {record['seconds']:.0f}s")


def test_concept_drift_is_stable_to_the_drift_check_and_a_breach_to_the_quality_check(demo: Demo) -> None:
    _, _, ledger = demo.plane()
    (drift,) = demo.record["checks"]
    (quality,) = demo.record["quality"]
    recorded_drift = {c.check_id: c for c in ledger.drift_checks("churn")}[drift["check_id"]]
    assert (recorded_drift.status, recorded_drift.drifted_features) == ("stable", [])
    recorded = {c.check_id: c for c in ledger.quality_checks("churn")}[quality["check_id"]]
    gate = demo.model.gate
    assert recorded.status == quality["status"] == "breach"
    assert recorded.labelled_rows == quality["labelled_rows"] == 3_000
    assert recorded.value is not None and recorded.baseline is not None
    # Live AUC against the version's own test AUC: fallen past max_regression and below the threshold.
    assert recorded.value < recorded.baseline - gate.max_regression
    assert recorded.value < gate.thresholds["auc"]
    assert (recorded.value, recorded.baseline) == (quality["value"], quality["baseline"])
    assert recorded.production_dataset_key == quality["production_dataset_key"]


def test_the_ground_truth_was_accepted_and_became_production_data(demo: Demo) -> None:
    _, _, ledger = demo.plane()
    (truth,) = demo.record["ground_truth"]
    files = {f.source_key: f for f in ledger.label_files("churn")}
    accepted = files[truth["source_key"]]
    assert (accepted.labels, accepted.accepted_key) == (3_000, truth["accepted_key"])
    (quality,) = demo.record["quality"]
    production = [d for d in ledger.datasets_since("churn", DATASETS_SINCE) if d.source == "production"]
    assert [d.key for d in production] == [quality["production_dataset_key"]]
    assert production[0].execution_arn is None  # production rows start no training run
    assert production[0].lineage_uri and production[0].lineage_uri.endswith("/lineage.json")


def test_v2_retrained_on_production_labels_beats_v1_on_the_recent_holdout(demo: Demo) -> None:
    clients, _, ledger = demo.plane()
    started = [
        d for d in ledger.partition("churn") if isinstance(d, RetrainDecision) and d.decision == "started"
    ]
    alarm = Names(demo.info.stage if demo.info else "").model_alarm("churn", "live-quality")
    assert [d.alarm for d in started] == [alarm]
    (run,) = [r for r in ledger.runs("churn") if r.version == 2]
    assert run.execution_arn == started[0].execution_arn
    datasets = json.loads(run.datasets or "{}")
    production = [d for d in datasets["datasets"] if d["source"] == "production"]
    assert [d["sha256"] for d in production] == [datasets["holdout"]]
    assert production[0]["lineage_uri"]
    gate = GateResult.model_validate_json(run.gate or "{}")
    assert gate.passed and gate.champion is not None and gate.champion.holdout is not None
    ours, theirs = gate.candidate["auc"], gate.champion.holdout.metrics["auc"]
    assert ours is not None and theirs is not None and ours > theirs
    v1, v2, _ = demo.record["versions"]
    assert (v1["recent"], v2["recent"]) == (theirs, ours)
    assert v2["holdout_rows"] == gate.champion.holdout.rows
    assert {d["sha256"] for d in v2["datasets"]} == {d["sha256"] for d in datasets["datasets"]}
    assert v2["origin"] == "retrained on production labels" and v2["gate"] == "passed vs v1"
    package = clients.client("sagemaker").describe_model_package(ModelPackageName=run.model_package_arn)
    assert package["ModelApprovalStatus"] == "Approved"


def test_v2_rolled_out_by_canary_and_the_broken_v3_was_rolled_back(demo: Demo) -> None:
    clients, deployment, ledger = demo.plane()
    endpoint = clients.client("sagemaker").describe_endpoint(
        EndpointName=deployment.model("churn").endpoint_name
    )
    assert version_of(endpoint["EndpointConfigName"]) == 2
    assert {(d.version, d.status) for d in ledger.deployments("churn")} >= {
        (2, "serving"),
        (3, "rolled_back"),
    }
    v1, v2, v3 = demo.record["versions"]
    assert v1["serving_until"] == v2["serving_from"] is not None
    assert v2["serving_until"] is None
    assert v3["serving_from"] is None and v3["rolled_back_at"] > v3["canary_at"]
    canary, rollback = demo.record["rollouts"]
    assert (canary["version"], canary["outcome"], canary["failed_at"]) == (2, "serving", [])
    # A 10% canary of the demo's 2-instance fleet is one whole instance: half the traffic (SageMaker shifts
    # by instances).
    assert 0.5 in [share for _, share in canary["shares"]]
    assert (rollback["version"], rollback["outcome"]) == (3, "rolled_back")
    assert rollback["failed_at"] and max(rollback["failed_at"]) <= rollback["ended_at"]


def test_the_report_holds_the_charts(demo: Demo) -> None:
    page = (demo.work_dir / "report.html").read_text()
    # Metrics per version, the gate metric from v1's own test to live to the recent holdout, PSI per
    # feature, the v2 canary and the v3 rollback.
    assert page.count("<svg") == 5
    assert "Live quality beside drift" in page and "v2 recent holdout" in page
    assert "https://" not in page and "<script" not in page


def test_the_batch_table_was_scored_by_v1_and_every_output_row_carries_its_inputs_and_v1s_score(
    demo: Demo,
) -> None:
    clients, deployment, ledger = demo.plane()
    info = demo.info
    assert info is not None  # demo.plane() failed otherwise
    (batch,) = demo.record["batches"]
    item = {b.job_name: b for b in ledger.batches("churn")}[batch["job_name"]]
    bucket = deployment.model("churn").data_bucket
    assert (item.status, item.input_key, item.rows, item.version) == (
        "Completed",
        batch["input_key"],
        BATCH_FILE_ROWS,
        batch["version"],
    )
    assert batch["version"] == 1  # scored while v1 served
    assert item.output_uri == batch["output_uri"] == f"s3://{bucket}/churn/batch/output/{item.job_name}/"
    assert item.drift_status == batch["drift_status"] == "stable"  # drawn like the training data
    assert batch["sampled"] == BATCH_FILE_ROWS // SAMPLE_EVERY and batch["max_difference"] <= 1e-6
    assert batch["ended_at"] > batch["dropped_at"]

    # The output file: the dropped rows in their order, each followed by v1's booster's own score for it.
    s3 = clients.s3
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"churn/batch/output/{item.job_name}/")["Contents"]
    assert [o["Key"].rsplit("/", 1)[-1] for o in listed] == ["input.csv.out"]
    features = [c.name for c in demo.model.data.features]
    output = pd.read_csv(
        io.BytesIO(s3.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read()),
        header=None,
        names=[*features, "score"],
        float_precision="round_trip",
    )
    frame = batch_frame(demo.model)
    assert len(output) == len(frame) == BATCH_FILE_ROWS
    for name in features:
        got, sent = output[name], frame[name].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(sent) or pd.api.types.is_bool_dtype(sent):
            np.testing.assert_allclose(got.to_numpy(float), sent.to_numpy(float), rtol=1e-12, err_msg=name)
        else:
            assert got.astype(str).tolist() == sent.astype(str).tolist(), name
    group = Names(info.stage).model_package_group("churn")
    package = clients.client("sagemaker").describe_model_package(
        ModelPackageName=f"arn:aws:sagemaker:{info.region}:{info.account}:model-package/{group}/1"
    )
    url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    model_bucket, key = url.removeprefix("s3://").split("/", 1)
    body = s3.get_object(Bucket=model_bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        files = {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    np.testing.assert_allclose(output["score"].to_numpy(), _in_process(files, frame), rtol=0, atol=1e-6)

    page = (demo.work_dir / "report.html").read_text()
    assert "<h2>Batch scoring</h2>" in page and item.job_name in page
    print(f"the demo's batch: {BATCH_FILE_ROWS:,} rows in {batch['ended_at'] - batch['dropped_at']:.1f}s")
