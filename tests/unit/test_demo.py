"""The demo's pieces that need no plane: its model configs, the share a rollout gives the new fleet, the
broken artifact, a failing step named, and the report as one offline page."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pandas as pd
import pytest
import yaml

from headrace.config import DEFAULT_MODELS_DIR, load_model_file
from headrace.demo import report, summary
from headrace.demo.batch import BATCH_FILE_ROWS, batch_text, score_batch
from headrace.demo.models import write_demo_models
from headrace.demo.plane import DemoPlane, broken_artifact
from headrace.demo.progress import DemoFailed, Progress, Stopwatch
from headrace.demo.record import (
    BatchRecord,
    DatasetUse,
    DemoRecord,
    DriftCheckRecord,
    GroundTruthRecord,
    QualityCheckRecord,
    QuarantineProblem,
    RolloutTrace,
    StepRecord,
    VersionRecord,
)
from headrace.demo.story import auc
from headrace.demo.traffic import new_fleet_share
from headrace.ledger import BatchItem, RejectionItem

V1, V2 = "headrace-dev-churn-v1-0123abcd", "headrace-dev-churn-v2-89abcdef"


def _record() -> DemoRecord:
    psi = {"tenure_months": 0.02, "contract": 0.01}
    return DemoRecord(
        model="churn",
        rows=20_000,
        started=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        models_dir=".headrace/demo/models",
        settings="canary 10% for 6 s",
        steps=[StepRecord(title="Start the local plane", status="done", seconds=14.0)],
        versions=[
            VersionRecord(
                version=1,
                origin="the dropped dataset",
                metrics={"auc": 0.89, "rows": 4000.0},
                serving_from=23,
                serving_until=39,
                recent=0.64,
            ),
            VersionRecord(
                version=2,
                origin="retraining",
                metrics={"auc": 0.87},
                canary_at=32,
                serving_from=39,
                datasets=[
                    DatasetUse(sha256="a" * 64, source="upload", rows=1000),
                    DatasetUse(
                        sha256="b" * 64,
                        source="production",
                        rows=3000,
                        lineage_uri="s3://data/churn/monitoring/quality/q1/lineage.json",
                    ),
                ],
                holdout_rows=600,
                recent=0.87,
            ),
            VersionRecord(version=3, origin="broken copy", canary_at=46, rolled_back_at=51),
        ],
        checks=[
            DriftCheckRecord(
                label="like training",
                check_id="c1",
                at=26,
                status="stable",
                rows=600,
                psi=psi,
                psi_threshold=0.2,
            ),
        ],
        quality=[
            QualityCheckRecord(
                label="after the concept drift",
                check_id="q1",
                at=28,
                status="breach",
                labelled_rows=3000,
                unknown_labels=0,
                metric="auc",
                value=0.64,
                error_bound=0.0004,
                threshold=0.7,
                baseline=0.89,
                reasons=["live auc 0.64 is below the threshold 0.7 (gate.thresholds.auc)"],
            )
        ],
        ground_truth=[
            GroundTruthRecord(
                source_key="churn/ground-truth/incoming/demo-outcomes.jsonl",
                accepted_key="churn/ground-truth/accepted/2026/01/02/03/x.csv",
                labels=3000,
                inferences=30,
            )
        ],
        rollouts=[
            RolloutTrace(
                version=3,
                outcome="rolled_back",
                started_at=46,
                ended_at=53,
                shares=[(45.0, 0.0), (46.0, 0.1), (51.0, 0.0)],
                calls=138,
                failed_at=[47.5, 48.0],
                errors=["PredictionError: (500)"],
            )
        ],
        batches=[
            BatchRecord(
                job_name="churn-batch-0123abcd-20260102030420",
                input_key="churn/batch/incoming/demo-scoring.csv",
                rows=20_000,
                version=1,
                output_uri="s3://data/churn/batch/output/churn-batch-0123abcd-20260102030420/",
                output_objects=1,
                dropped_at=24,
                ended_at=29,
                sampled=100,
                max_difference=0.0,
                drift_status="stable",
            )
        ],
        quarantined=[QuarantineProblem(rule="range", column="monthly_charges", message="36 values <0")],
        marks={"dropped": 15, "v1 serving": 23, "concept drift": 26, "quality alarm": 28, "v2 serving": 39},
        seconds=55,
    )


def test_the_demo_models_are_the_shipped_churn_with_short_rollouts(tmp_path: Path) -> None:
    shipped_path = DEFAULT_MODELS_DIR / "churn.yaml"
    before = shipped_path.read_bytes()
    (tmp_path / "stale.yaml").write_text("name: stale\n")
    demo = write_demo_models(tmp_path)
    shipped = load_model_file(shipped_path)
    assert shipped_path.read_bytes() == before
    assert [p.name for p in tmp_path.glob("*.yaml")] == ["churn.yaml"]
    assert (demo.rollout.wait_interval_s, demo.rollout.bake_s) == (6, 3)
    assert demo.rollout.canary_percent == shipped.rollout.canary_percent
    assert (demo.monitoring.min_rows, demo.monitoring.cooldown_minutes) == (200, 60)
    # A retraining keeps the newest rows: the demo's minutes of labelled traffic can outweigh v1's data.
    assert demo.monitoring.retrain_data.max_rows == 4_000
    assert demo.batch.instance_count == 1
    assert (demo.data, demo.trainer, demo.gate) == (shipped.data, shipped.trainer, shipped.gate)
    assert yaml.safe_load((tmp_path / "churn.yaml").read_text())["name"] == "churn"


@pytest.mark.parametrize(
    ("described", "last", "share"),
    [
        ({"EndpointStatus": "InService", "EndpointConfigName": V1}, 0.0, 0.0),
        ({"EndpointStatus": "Updating", "EndpointConfigName": V1}, 0.0, 0.0),
        (
            {
                "EndpointStatus": "Updating",
                "EndpointConfigName": V1,
                "PendingDeploymentSummary": {
                    "EndpointConfigName": V2,
                    "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentWeight": 0.1}],
                },
            },
            0.0,
            0.1,
        ),
        # After the bake, while the old fleet retires: no step pending, the config not yet switched.
        ({"EndpointStatus": "Updating", "EndpointConfigName": V1}, 1.0, 1.0),
        ({"EndpointStatus": "InService", "EndpointConfigName": V2}, 1.0, 1.0),
        ({"EndpointStatus": "InService", "EndpointConfigName": V1}, 0.1, 0.0),
    ],
)
def test_the_new_fleet_s_share_is_read_from_describe_endpoint(
    described: dict[str, object], last: float, share: float
) -> None:
    assert new_fleet_share(described, 2, last) == share


def test_the_broken_artifact_asks_for_5xx_and_keeps_the_model() -> None:
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w:gz") as tar:
        for name, data in {"model.json": b"{}", "features.json": b'{"features": ["a"]}'}.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    with tarfile.open(fileobj=io.BytesIO(broken_artifact(good.getvalue())), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert files["model.json"] == b"{}"
    assert json.loads(files["features.json"]) == {"features": ["a"], "fault": "5xx"}


def test_auc_ranks_positives_above_negatives() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_a_step_that_does_not_happen_stops_the_demo_naming_it() -> None:
    record = _record()
    progress = Progress(record, Stopwatch(), ["Endpoint serving v1", "Predictions"])

    def never() -> str:
        raise TimeoutError("timed out after 240s waiting for:\ndeployment 1 to end")

    with pytest.raises(DemoFailed, match="demo step 'Endpoint serving v1' did not happen: timed out"):
        progress.run(0, never)
    assert [s.status for s in record.steps] == ["failed", "pending"]
    assert record.failed_step == "Endpoint serving v1"
    assert record.steps[0].detail == "timed out after 240s waiting for: … deployment 1 to end"


def test_the_summary_says_what_served_when_and_how_long_each_span_took() -> None:
    record = _record()
    columns, rows = summary.versions(record)
    assert columns == ["version", "came from", "auc", "auc recent", "gate", "approval", "served"]
    # Both versions' figures on the recent holdout, beside each one's own test split.
    assert [row[2:4] for row in rows] == [["0.890", "0.640"], ["0.870", "0.870"], ["-", "-"]]
    served = [row[-1] for row in rows]
    assert served == ["all 0:23 → 0:39", "canary 0:32, all 0:39 → end", "canary 0:46, rolled back 0:51"]
    detailed, _ = summary.versions(record, detail=True)
    assert detailed == ["version", "came from", "auc", "auc recent", "gate", "approval", "served", "note"]
    timings = {(a, b): s for a, b, s in summary.timing_rows(record)}
    assert timings[("data dropped", "v1 serving")] == "8.0"
    assert timings[("concept drift", "quality alarm")] == "2.0"
    assert timings[("quality alarm", "v2 serving (all traffic)")] == "11.0"
    assert timings[("v3 canary", "v3 rolled back")] == "5.0"
    assert timings[("batch file dropped", "batch scored (20,000 rows)")] == "5.0"


def test_the_report_is_one_offline_page_with_its_charts(tmp_path: Path) -> None:
    path = report.write(_record(), tmp_path)
    page = path.read_text()
    assert path.name == "report.html"
    # Metrics per version, the gate metric from own test to live to the recent holdout, PSI per feature,
    # one rollout.
    assert page.count("<svg") == 4
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "every step happened, in 55 s" in page
    assert "rolled back by the 5xx alarm; 2 of 138 calls failed" in page
    assert "headrace local up --detach" in page
    # Quality beside drift, in time order: the stable drift check, then the breached quality check.
    assert page.index("<td>drift</td><td>like training</td><td>stable") < page.index(
        "<td>quality</td><td>after the concept drift</td><td>breach"
    )
    assert "live auc 0.640 ±0.0004, own test 0.890" in page
    assert "v2 recent holdout" in page and "s3://data/churn/monitoring/quality/q1/lineage.json" in page
    # The batch job: rows, seconds from the drop, rows a second, where the output is, the endpoint's word.
    assert (
        "<td>churn-batch-0123abcd-20260102030420</td><td>churn/batch/incoming/demo-scoring.csv</td>"
        "<td>20,000</td><td>v1</td><td>5.0</td><td>4,000</td>"
        "<td>s3://data/churn/batch/output/churn-batch-0123abcd-20260102030420/ (1 object)</td>"
        "<td>100 rows, max |batch - endpoint| 0</td><td>stable</td>"
    ) in page
    assert DemoRecord.model_validate_json((tmp_path / "record.json").read_text()) == _record()


class _BatchPlane:
    """The part of DemoPlane the batch step uses: a drop, the ledger's ending, the job's output."""

    def __init__(self, ended: BatchItem | RejectionItem, score: str = "0.25") -> None:
        self.model = load_model_file(DEFAULT_MODELS_DIR / "churn.yaml")
        self.ended, self.score = ended, score
        self.dropped: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        self.dropped[key] = body

    def batch_ended(self, key: str) -> BatchItem | RejectionItem | None:
        return self.ended if key in self.dropped else None

    def output_lines(self, uri: str) -> tuple[int, list[bytes]]:
        # What the transform job writes: the input in the model's order, a comma, the container's answer.
        frame = pd.read_csv(io.BytesIO(next(iter(self.dropped.values()))))
        features = [c.name for c in self.model.data.features]
        lines = frame[features].to_csv(index=False, header=False).encode().splitlines()
        return 1, [line + b"," + self.score.encode() for line in lines]


def _batch_item(status: str = "Completed") -> BatchItem:
    return BatchItem.model_validate(
        {
            "model": "churn",
            "job_name": "churn-batch-0123abcd-20260102030420",
            "input_key": "churn/batch/incoming/demo-scoring.csv",
            "sha256": "c" * 64,
            "rows": BATCH_FILE_ROWS,
            "version": 1,
            "status": status,
            "output_uri": "s3://data/churn/batch/output/churn-batch-0123abcd-20260102030420/"
            if status == "Completed"
            else None,
            "failure_reason": None if status == "Completed" else "ClientError: the container exited",
            "drift_status": "stable",
            "started_at": "2026-01-02T03:04:20.000000",
        }
    )


def _score(plane: _BatchPlane, online: float = 0.25) -> BatchRecord:
    sent: list[list[str]] = []

    def score_online(lines: list[str]) -> list[float]:
        sent.append(lines)
        return [online] * len(lines)

    ticks = iter([10.0, 14.0])
    batch = score_batch(cast(DemoPlane, plane), lambda: next(ticks), lambda _: None, score_online)
    # One InvokeEndpoint call of the sampled rows, each the input's features alone (no score).
    assert len(sent) == 1 and len(sent[0]) == BATCH_FILE_ROWS // 200
    assert all(line.count(",") == len(plane.model.data.features) - 1 for line in sent[0])
    return batch


def test_the_batch_step_drops_the_table_and_checks_its_output_against_the_endpoint() -> None:
    plane = _BatchPlane(_batch_item())
    batch = _score(plane)
    (key,) = plane.dropped
    assert key == "churn/batch/incoming/demo-scoring.csv"
    dropped = pd.read_csv(io.BytesIO(plane.dropped[key]))
    assert len(dropped) == BATCH_FILE_ROWS and "churned" not in dropped.columns
    assert (batch.rows, batch.version, batch.seconds, batch.sampled) == (BATCH_FILE_ROWS, 1, 4.0, 100)
    assert batch.max_difference == 0.0 and batch.drift_status == "stable"
    assert batch_text(batch).startswith(
        "20,000 rows with v1 in 4.0s from the drop (5,000 rows/s) → "
        "churn/batch/output/churn-batch-0123abcd-20260102030420/; 100 sampled rows score as on the endpoint"
    )


@pytest.mark.parametrize(
    ("plane", "online", "message"),
    [
        (_BatchPlane(_batch_item()), 0.26, "differs from the endpoint's for the same row by 0.01"),
        (_BatchPlane(_batch_item("Failed")), 0.25, "ended Failed: ClientError: the container exited"),
        (_BatchPlane(_batch_item(), score="0.25,0.75"), 0.25, "is not its 8 inputs and a score"),
    ],
)
def test_the_batch_step_fails_when_a_score_or_the_job_is_wrong(
    plane: _BatchPlane, online: float, message: str
) -> None:
    with pytest.raises(RuntimeError, match=message):
        _score(plane, online)


def test_the_batch_step_fails_when_the_table_is_quarantined() -> None:
    rejection = RejectionItem.model_validate(
        {
            "model": "churn",
            "sha256": "c" * 64,
            "bucket": "data",
            "key": "churn/batch/incoming/demo-scoring.csv",
            "version_id": None,
            "size_bytes": 10,
            "quarantine_key": "churn/quarantine/x/demo-scoring.csv",
            "reason_key": "churn/quarantine/x/reason.json",
            "rules": ["columns"],
            "received_at": "2026-01-02T03:04:20.000000",
            "recorded_at": "2026-01-02T03:04:21.000000",
        }
    )
    with pytest.raises(RuntimeError, match=r"quarantined \(columns\): churn/quarantine/x/reason.json"):
        _score(_BatchPlane(rejection))
