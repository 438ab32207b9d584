"""The quality check over in-memory ports: captured records read back, the breach decision, Window's choice of
captures and label files, and Partial + Finish joining, judging, recording and writing the production rows."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from headrace.config import ModelConfig
from headrace.ledger import MemoryLedger
from headrace.naming import Names
from headrace.quality.captured import read_captured
from headrace.quality.check import (
    QualityResult,
    count_batch,
    finish_check,
    judge,
    plan_window,
)
from headrace.quality.labels import accepted_key
from headrace.quality.payloads import QualityFinishRequest, QualityPartRequest, QualityWindow, WindowRequest
from headrace.quality.ports import QualityPorts
from headrace.steps import Execution
from tests import fakes

NAMES = Names("dev")
BUCKET = "data"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MODEL_DATA_URL = f"s3://{BUCKET}/churn/runs/job-1/output/model.tar.gz"
CONFIG = "headrace-dev-churn-v1-0123abcd"
CAPTURED = "churn/capture/headrace-dev-churn/AllTraffic"
FEATURES = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract",
    "payment_method",
    "support_calls",
    "region",
    "senior",
]
OWN_AUC = 0.89


def _record(rows: list[list[Any]], scores: list[Any], *, inference_id: str | None = None, **meta: str) -> str:
    metadata = {"eventId": meta.get("event_id", "ev-" + str(abs(hash(str(rows))))), "inferenceTime": "x"}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": "\n".join(",".join(str(v) for v in r) for r in rows),
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": json.dumps({"predictions": scores}),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        }
    )


ROW = [12, 70.5, 846.0, "one-year", "card", 1, "north", "false"]


# --- captured records ----------------------------------------------------------------------------------


def test_a_record_joins_by_its_inference_id_and_else_by_its_event_id() -> None:
    captured = read_captured(
        [_record([ROW], [0.2], inference_id="req-1"), _record([ROW, ROW], [0.3, 0.9], event_id="ev-2")],
        FEATURES,
        1,
    )
    assert captured.keys.tolist() == [b"req-1", b"ev-2", b"ev-2"]  # key_array: the join's form
    assert list(captured.rows) == [0, 0, 1]
    assert captured.scores.tolist() == [0.2, 0.3, 0.9]
    assert captured.column("region").tolist() == ["north"] * 3


def test_csv_answers_and_json_requests_are_read_too() -> None:
    record = json.loads(_record([ROW], [0.0], inference_id="a"))
    record["captureData"]["endpointInput"] = {
        "observedContentType": "application/json",
        "encoding": "JSON",
        "data": json.dumps({"instances": [dict(zip(FEATURES, ROW, strict=True))] * 2}),
    }
    record["captureData"]["endpointOutput"] = {
        "observedContentType": "text/csv",
        "encoding": "BASE64",
        "data": base64.b64encode(b"0.25\n0.75\n").decode(),
    }
    captured = read_captured([json.dumps(record)], FEATURES, 1)
    assert captured.scores.tolist() == [0.25, 0.75]
    assert captured.column("contract").tolist() == ["one-year", "one-year"]


def test_multi_class_answers_give_k_scores_per_row() -> None:
    captured = read_captured(
        [_record([ROW, ROW], [[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], inference_id="m")], FEATURES, 3
    )
    assert captured.scores.shape == (2, 3)
    assert captured.scores[1].tolist() == [0.6, 0.3, 0.1]


def test_records_without_a_prediction_per_row_are_skipped_and_counted() -> None:
    refused = json.loads(_record([ROW], [0.5], inference_id="r"))
    refused["captureData"]["endpointOutput"]["data"] = json.dumps({"error": "bad row"})
    lines = [
        json.dumps(refused),
        _record([ROW, ROW], [0.5], inference_id="short"),  # two rows, one score
        _record([ROW[:-1]], [0.5], inference_id="narrow"),  # a feature missing
        "not json",
        _record([ROW], [0.4], inference_id="good"),
    ]
    captured = read_captured(lines, FEATURES, 1)
    assert captured.keys.tolist() == [b"good"]
    assert (captured.inferences, captured.skipped) == (5, 4)


# --- the breach decision --------------------------------------------------------------------------------


def test_live_auc_below_the_threshold_is_a_breach(example_model: ModelConfig) -> None:
    (reason,) = judge(example_model, 0.65, baseline=0.66)
    assert "below the threshold 0.7" in reason


def test_live_auc_regressing_past_max_regression_from_its_own_test_is_a_breach(
    example_model: ModelConfig,
) -> None:
    (reason,) = judge(example_model, 0.85, baseline=OWN_AUC)
    assert "0.04 worse than the serving version's own test auc 0.89" in reason
    assert judge(example_model, 0.885, baseline=OWN_AUC) == []


def test_lower_is_better_metrics_breach_upwards(example_model: ModelConfig) -> None:
    model = example_model.model_copy(
        update={"gate": example_model.gate.model_copy(update={"metric": "rmse", "thresholds": {"rmse": 3.0}})}
    )
    assert judge(model, 2.0, baseline=2.0) == []
    assert len(judge(model, 3.5, baseline=2.0)) == 2


def test_an_undefined_live_metric_is_no_breach(example_model: ModelConfig) -> None:
    assert judge(example_model, None, baseline=OWN_AUC) == []


# --- the steps over in-memory ports ---------------------------------------------------------------------


class Serving:
    def __init__(self, served: tuple[str, str] | None) -> None:
        self.served = served

    def artifact(self, endpoint: str) -> tuple[str, str] | None:
        assert endpoint == NAMES.endpoint("churn")
        return self.served


class Metrics:
    def __init__(self) -> None:
        self.published: list[tuple[dict[str, float | None], bool]] = []
        self.labelled_rows: list[int] = []

    def publish(self, model: str, metrics: Any, breach: bool) -> None:
        self.published.append((dict(metrics), breach))

    def labelled(self, model: str, rows: int) -> None:
        self.labelled_rows.append(rows)


def _model_tar() -> bytes:
    files = {
        "features.json": json.dumps({"features": FEATURES, "categorical": {}, "target": "churned"}).encode(),
        "evaluation.json": json.dumps({"metric": "auc", "metrics": {"auc": OWN_AUC, "rows": 400}}).encode(),
    }
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, body in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(body)
            tar.addfile(member, io.BytesIO(body))
    return archive.getvalue()


def _ports(store: fakes.FakeStore, served: bool = True) -> QualityPorts:
    return QualityPorts(
        store=store,
        serving=Serving((CONFIG, MODEL_DATA_URL) if served else None),
        ledger=MemoryLedger(),
        metrics=Metrics(),
        clock=fakes.fixed_clock(NOW),
    )


def _capture(store: fakes.FakeStore, at: datetime, lines: list[str], name: str) -> str:
    key = f"{CAPTURED}/{at:%Y/%m/%d/%H}/{name}.jsonl"
    store.objects[(BUCKET, key)] = ("\n".join(lines).encode(), "application/jsonlines", at)
    return key


def _labels(store: fakes.FakeStore, at: datetime, labels: dict[str, int], tag: str) -> str:
    key = accepted_key("churn", at, (tag * 64)[:64])
    body = "inference_id,row,label\n" + "".join(f"{k},0,{v}\n" for k, v in labels.items())
    store.objects[(BUCKET, key)] = (body.encode(), "text/csv", at)
    return key


def _traffic(n: int, seed: int, *, good: bool) -> tuple[list[str], dict[str, int]]:
    """n one-row inferences and their labels: scores that rank the labels well (good) or backwards."""
    rng = np.random.default_rng(seed)
    lines, labels = [], {}
    for i in range(n):
        label = int(rng.integers(0, 2))
        noise = float(rng.uniform(0, 0.45))
        score = (0.5 + noise if label else 0.5 - noise) if good else (0.5 - noise if label else 0.5 + noise)
        row = [*ROW[:6], ["north", "south"][i % 2], ROW[7]]
        lines.append(_record([row], [score], inference_id=f"s{seed}-{i}"))
        labels[f"s{seed}-{i}"] = label
    return lines, labels


def _window(model: ModelConfig, ports: QualityPorts) -> QualityWindow:
    execution = Execution(name="check-1", id="arn:aws:states:us-east-1:123456789012:execution:q:check-1")
    return plan_window(
        WindowRequest(model="churn", execution=execution), model, ports, names=NAMES, bucket=BUCKET
    )


def _run(model: ModelConfig, ports: QualityPorts) -> tuple[QualityWindow, Any]:
    window = _window(model, ports)
    assert window.reference_prefix is not None and window.labels_key is not None
    partials = [
        count_batch(
            QualityPartRequest(
                model="churn",
                check_id=window.check_id,
                index=i,
                reference_prefix=window.reference_prefix,
                labels_key=window.labels_key,
                keys=keys,
            ),
            model,
            ports,
            bucket=BUCKET,
        )
        for i, keys in enumerate(window.batches)
    ]
    return window, finish_check(
        QualityFinishRequest(window=window, partials=partials), model, ports, bucket=BUCKET
    )


@pytest.fixture
def store() -> fakes.FakeStore:
    store = fakes.FakeStore(now=NOW)
    store.put(BUCKET, MODEL_DATA_URL.removeprefix(f"s3://{BUCKET}/"), _model_tar(), "application/gzip")
    return store


def test_window_reads_the_window_hours_of_captures_and_every_label_file_since_in_arrival_order(
    example_model: ModelConfig, store: fakes.FakeStore
) -> None:
    hours = example_model.monitoring.quality_window_hours
    old = _capture(
        store, NOW - timedelta(hours=hours + 2), [_record([ROW], [0.5], inference_id="old")], "old"
    )
    recent = _capture(store, NOW - timedelta(hours=3), [_record([ROW], [0.5], inference_id="new")], "new")
    later = _labels(store, NOW - timedelta(hours=1), {"new": 1}, "b")
    earlier = _labels(store, NOW - timedelta(hours=2), {"new": 0}, "a")
    ports = _ports(store)
    window = _window(example_model, ports)
    assert window.batches == [[recent]]
    assert old not in window.batches[0]
    assert window.baseline == OWN_AUC
    assert window.since == NOW - timedelta(hours=hours)
    assert window.labels_key is not None
    assert json.loads(store.read(BUCKET, window.labels_key))["files"] == [earlier, later]


def test_a_model_not_serving_is_recorded_as_not_serving(
    example_model: ModelConfig, store: fakes.FakeStore
) -> None:
    ports = _ports(store, served=False)
    window = _window(example_model, ports)
    assert window.batches == [] and window.reference_prefix is None
    outcome = finish_check(
        QualityFinishRequest(window=window, partials=[]), example_model, ports, bucket=BUCKET
    )
    assert outcome.status == "not_serving"
    assert isinstance(ports.ledger, MemoryLedger)
    assert [c.status for c in ports.ledger.quality_checks("churn", 5)] == ["not_serving"]


def test_good_predictions_are_ok_and_become_a_production_dataset(
    example_model: ModelConfig, store: fakes.FakeStore
) -> None:
    lines, labels = _traffic(300, seed=1, good=True)
    _capture(store, NOW - timedelta(hours=5), lines[:150], "a")
    _capture(store, NOW - timedelta(hours=4), lines[150:], "b")
    labels["never-served"] = 1
    _labels(store, NOW - timedelta(hours=1), labels, "c")
    ports = _ports(store)
    # 300 rows make a dataset where the schema asks for no more (churn's own min_rows is 500).
    model = example_model.model_copy(update={"data": example_model.data.model_copy(update={"min_rows": 300})})
    _, outcome = _run(model, ports)
    assert outcome.status == "ok"
    assert (outcome.labelled_rows, outcome.unknown_labels) == (300, 1)
    assert outcome.value is not None and outcome.value > 0.95
    metrics = ports.metrics
    assert isinstance(metrics, Metrics)
    assert metrics.labelled_rows == [300] and metrics.published[0][1] is False
    key = outcome.production_dataset_key
    assert key is not None and key.startswith("churn/incoming/production/")
    written = store.read(BUCKET, key)
    # The retrain decision waits for this content as a dataset version (headrace/monitoring/retrain.py).
    assert ports.ledger.quality_checks("churn", 1)[0].production_sha256 == hashlib.sha256(written).hexdigest()
    body = written.decode().splitlines()
    assert body[0] == ",".join(c.name for c in example_model.data.columns)
    assert len(body) == 301
    first = body[1].split(",")
    assert first[-1] == str(labels["s1-0"])  # the label, in the target's own values (integer 0/1)
    folder = key.removeprefix("churn/incoming/production/").removesuffix(".csv")
    lineage = json.loads(store.read(BUCKET, f"churn/monitoring/quality/{folder}/lineage.json"))
    assert lineage["rows"] == 300 and len(lineage["label_files"]) == 1
    result = QualityResult.model_validate_json(
        store.read(BUCKET, f"churn/monitoring/quality/{folder}/result.json")
    )
    assert set(result.metrics["slices"]["region"]) == {"north", "south"}
    assert b"Quality beside drift" in store.read(BUCKET, f"churn/monitoring/quality/{folder}/report.html")


def test_predictions_gone_wrong_breach_and_publish_the_breach(
    example_model: ModelConfig, store: fakes.FakeStore
) -> None:
    lines, labels = _traffic(300, seed=2, good=False)
    _capture(store, NOW - timedelta(hours=5), lines, "a")
    _labels(store, NOW - timedelta(hours=1), labels, "c")
    ports = _ports(store)
    _, outcome = _run(example_model, ports)
    assert outcome.status == "breach"
    assert isinstance(ports.metrics, Metrics) and ports.metrics.published[0][1] is True
    assert isinstance(ports.ledger, MemoryLedger)
    (item,) = ports.ledger.quality_checks("churn", 5)
    assert item.status == "breach" and item.baseline == OWN_AUC
    assert any("below the threshold" in r for r in item.reasons)


def test_a_later_label_file_wins_a_repeated_label(example_model: ModelConfig, store: fakes.FakeStore) -> None:
    lines, labels = _traffic(300, seed=3, good=True)
    _capture(store, NOW - timedelta(hours=5), lines, "a")
    _labels(store, NOW - timedelta(hours=3), {k: 1 - v for k, v in labels.items()}, "a")  # wrong, replaced
    _labels(store, NOW - timedelta(hours=1), labels, "b")
    _, outcome = _run(example_model, _ports(store))
    assert outcome.status == "ok" and outcome.labelled_rows == 300


def test_labelled_rows_below_the_schema_s_min_rows_are_judged_but_make_no_dataset(
    example_model: ModelConfig, store: fakes.FakeStore
) -> None:
    lines, labels = _traffic(300, seed=1, good=True)
    _capture(store, NOW - timedelta(hours=5), lines, "a")
    _labels(store, NOW - timedelta(hours=1), labels, "c")
    ports = _ports(store)
    _, outcome = _run(example_model, ports)  # min_rows 500: ingest would quarantine 300 rows
    assert outcome.status == "ok" and outcome.labelled_rows == 300
    assert outcome.production_dataset_key is None
    assert ports.ledger.quality_checks("churn", 1)[0].production_sha256 is None
    assert not [k for k in store.objects if "/incoming/production/" in k[1]]


def test_too_few_labels_judge_nothing_and_publish_no_breach(
    example_model: ModelConfig, store: fakes.FakeStore
) -> None:
    lines, labels = _traffic(300, seed=4, good=False)
    _capture(store, NOW - timedelta(hours=5), lines, "a")
    _labels(store, NOW - timedelta(hours=1), dict(list(labels.items())[:50]), "c")
    ports = _ports(store)
    _, outcome = _run(example_model, ports)
    assert outcome.status == "too_few_labels" and outcome.labelled_rows == 50
    assert outcome.production_dataset_key is None
    assert isinstance(ports.metrics, Metrics)
    assert ports.metrics.published == [] and ports.metrics.labelled_rows == [50]
