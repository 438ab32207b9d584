"""The drift check's steps over in-memory ports: Window picks the traffic since the last check, Partial
counts each batch against the serving version's reference, Finish publishes, reports and records."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from headrace.config import ColumnType, ModelConfig
from headrace.datagen import generate
from headrace.drift import DriftResult
from headrace.ledger import DriftCheckItem, MemoryLedger
from headrace.monitoring.check import count_batch, finish_check, plan_window
from headrace.monitoring.payloads import (
    CheckOutcome,
    FinishRequest,
    PartialRequest,
    Window,
    WindowRequest,
)
from headrace.monitoring.ports import DriftPorts
from headrace.monitoring.window import BATCH_OBJECTS
from headrace.naming import Names
from headrace.profile import FeatureInfo, build_profile
from headrace.steps import Execution
from tests import fakes

NAMES = Names("dev")
BUCKET = "data"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MODEL_DATA_URL = f"s3://{BUCKET}/churn/runs/job-1/output/model.tar.gz"
CONFIG = "headrace-dev-churn-v1-0123abcd"
CAPTURED = "churn/capture/headrace-dev-churn/AllTraffic"
ROWS_PER_OBJECT = 50
DRIFT_EXECUTIONS = "arn:aws:states:us-east-1:123456789012:execution:headrace-dev-churn-drift"


class FakeStore(fakes.FakeStore):
    """The shared store, with SageMaker's data capture writing into it."""

    def capture(self, at: datetime, body: bytes, name: str = "capture") -> str:
        """A data-capture file written at `at`, in the hour folder data capture uses."""
        key = f"{CAPTURED}/{at:%Y/%m/%d/%H}/{name}-{at:%M%S%f}.jsonl"
        self.objects[(BUCKET, key)] = (body, "application/jsonlines", at)
        return key

    def text(self, key: str) -> str:
        return self.read(BUCKET, key).decode()


class FakeServing:
    def __init__(self, served: tuple[str, str] | None) -> None:
        self.served = served

    def artifact(self, endpoint: str) -> tuple[str, str] | None:
        assert endpoint == "headrace-dev-churn"
        return self.served


class FakeMetrics:
    """The drift metrics (DriftMetrics), as published."""

    def __init__(self) -> None:
        self.published: list[DriftResult] = []
        self.rows_seen: list[int] = []

    def publish(self, model: str, result: DriftResult) -> None:
        self.published.append(result)

    def rows(self, model: str, rows: int) -> None:
        self.rows_seen.append(rows)


def _model_tar(model: ModelConfig) -> bytes:
    """model.tar.gz as the trainer leaves it: the booster beside features.json and profile.json."""
    training = generate(model, 2000, seed=3)
    categorical = {
        c.name: list(c.categories or []) for c in model.data.features if c.type is ColumnType.CATEGORY
    }
    features = [c.name for c in model.data.features]
    info = FeatureInfo(features=features, categorical=categorical)
    files = {
        "model.json": b"{}",
        "features.json": json.dumps(
            {"features": features, "categorical": categorical, "target": model.data.target, "objective": "x"}
        ).encode(),
        "profile.json": build_profile(training, info, seed=3).model_dump_json().encode(),
    }
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, body in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(body)
            tar.addfile(member, io.BytesIO(body))
    return archive.getvalue()


@pytest.fixture(scope="module")
def model_tar(example_model: ModelConfig) -> bytes:
    return _model_tar(example_model)


@pytest.fixture
def store(model_tar: bytes) -> FakeStore:
    store = FakeStore(now=NOW)
    store.put(BUCKET, _key(MODEL_DATA_URL), model_tar, "application/gzip")
    return store


def _capture_body(frame: pd.DataFrame) -> bytes:
    """One capture file: a CSV request (no header, feature order) per line."""
    lines = []
    for start in range(0, len(frame), 10):
        data = frame.iloc[start : start + 10].to_csv(header=False, index=False)
        lines.append(
            json.dumps(
                {
                    "captureData": {
                        "endpointInput": {
                            "observedContentType": "text/csv",
                            "mode": "INPUT",
                            "data": data,
                            "encoding": "CSV",
                        }
                    },
                    "eventVersion": "0",
                }
            )
        )
    return "\n".join(lines).encode()


def _traffic(store: FakeStore, model: ModelConfig, rows: int, drift: float) -> list[str]:
    """`rows` rows of served traffic in capture files written during the hour before NOW."""
    frame = generate(model, rows, seed=11, drift=drift)[[c.name for c in model.data.features]]
    return [
        store.capture(
            NOW - timedelta(minutes=50) + timedelta(seconds=i),
            _capture_body(frame.iloc[s : s + ROWS_PER_OBJECT]),
        )
        for i, s in enumerate(range(0, rows, ROWS_PER_OBJECT))
    ]


def _execution(name: str) -> Execution:
    return Execution(name=name, id=f"{DRIFT_EXECUTIONS}:{name}")


def _key(uri: str | None) -> str:
    """The key of an s3:// URI in the data bucket."""
    assert uri is not None and uri.startswith(f"s3://{BUCKET}/")
    return uri.removeprefix(f"s3://{BUCKET}/")


def _ports(
    store: FakeStore,
    ledger: MemoryLedger,
    metrics: FakeMetrics | None = None,
    served: tuple[str, str] | None = (CONFIG, MODEL_DATA_URL),
    at: datetime = NOW,
) -> DriftPorts:
    return DriftPorts(
        store=store,
        serving=FakeServing(served),
        ledger=ledger,
        metrics=metrics or FakeMetrics(),
        clock=fakes.fixed_clock(at),
    )


def _window(
    model: ModelConfig,
    store: FakeStore,
    ledger: MemoryLedger,
    served: tuple[str, str] | None = (CONFIG, MODEL_DATA_URL),
) -> Window:
    request = WindowRequest(
        model="churn",
        execution=_execution("check-1"),
    )
    return plan_window(request, model, _ports(store, ledger, served=served), names=NAMES, bucket=BUCKET)


def _check(
    model: ModelConfig, store: FakeStore, ledger: MemoryLedger, metrics: FakeMetrics, window: Window
) -> CheckOutcome:
    partials = [
        count_batch(
            PartialRequest(
                model="churn",
                check_id=window.check_id,
                index=i,
                reference_prefix=window.reference_prefix or "-",
                keys=keys,
            ),
            _ports(store, ledger, metrics),
            bucket=BUCKET,
        )
        for i, keys in enumerate(window.batches)
    ]
    return finish_check(
        FinishRequest(window=window, partials=partials), model, _ports(store, ledger, metrics), bucket=BUCKET
    )


def _run(model: ModelConfig, store: FakeStore, ledger: MemoryLedger, metrics: FakeMetrics) -> CheckOutcome:
    return _check(model, store, ledger, metrics, _window(model, store, ledger))


def test_a_window_after_a_previous_check_starts_at_its_until(
    example_model: ModelConfig, store: FakeStore
) -> None:
    ledger = MemoryLedger()
    ledger.record(
        DriftCheckItem(model="churn", check_id="earlier", until="2026-11-23T11:30:00+00:00", status="stable")
    )
    store.capture(datetime(2026, 11, 23, 11, 10, tzinfo=UTC), b"{}", name="before")
    after = store.capture(datetime(2026, 11, 23, 11, 40, tzinfo=UTC), b"{}", name="after")

    window = _window(example_model, store, ledger)

    assert (window.since, window.until) == (datetime(2026, 11, 23, 11, 30, tzinfo=UTC), NOW)
    assert (window.batches, window.objects) == ([[after]], 1)


def test_a_first_window_looks_back_one_day(example_model: ModelConfig, store: FakeStore) -> None:
    recent = store.capture(NOW - timedelta(hours=23), b"{}", name="recent")
    store.capture(NOW - timedelta(hours=25), b"{}", name="old")

    window = _window(example_model, store, MemoryLedger())

    assert window.since is None
    assert window.batches == [[recent]]


def test_the_window_copies_the_serving_versions_reference_out_of_its_artifact(
    example_model: ModelConfig, store: FakeStore
) -> None:
    window = _window(example_model, store, MemoryLedger())

    assert window.reference_prefix is not None
    assert window.reference_prefix.startswith("churn/monitoring/reference/")
    assert json.loads(store.text(f"{window.reference_prefix}/features.json"))["target"] == "churned"
    assert json.loads(store.text(f"{window.reference_prefix}/profile.json"))["n"] == 2000


def test_batches_hold_at_most_batch_objects_each(example_model: ModelConfig, store: FakeStore) -> None:
    for i in range(BATCH_OBJECTS + 1):
        store.capture(NOW - timedelta(minutes=30, seconds=i), b"{}", name=f"o{i:04d}")

    window = _window(example_model, store, MemoryLedger())

    assert [len(batch) for batch in window.batches] == [BATCH_OBJECTS, 1]
    assert window.objects == BATCH_OBJECTS + 1


def test_no_endpoint_is_not_serving_and_publishes_no_metrics(
    example_model: ModelConfig, store: FakeStore
) -> None:
    ledger, metrics = MemoryLedger(), FakeMetrics()
    _traffic(store, example_model, 100, drift=0.0)

    window = _window(example_model, store, ledger, served=None)
    outcome = _check(example_model, store, ledger, metrics, window)

    assert (window.batches, window.reference_prefix) == ([], None)
    assert (outcome.status, outcome.rows, outcome.report_uri) == ("not_serving", 0, None)
    assert (metrics.published, metrics.rows_seen) == ([], [])
    assert [item["status"] for item in ledger.items.values()] == ["not_serving"]


def test_each_batch_counts_the_rows_of_its_capture_files(
    example_model: ModelConfig, store: FakeStore
) -> None:
    keys = _traffic(store, example_model, 120, drift=0.0)
    window = _window(example_model, store, MemoryLedger())
    assert window.reference_prefix is not None

    partial = count_batch(
        PartialRequest(
            model="churn",
            check_id=window.check_id,
            index=3,
            reference_prefix=window.reference_prefix,
            keys=keys,
        ),
        _ports(store, MemoryLedger()),
        bucket=BUCKET,
    )

    assert partial.rows == 120
    assert partial.key == f"churn/monitoring/checks/{window.check_id}/partials/00003.npz"
    assert store.exists(BUCKET, partial.key)


def test_drifted_traffic_is_reported_as_drifted_and_published(
    example_model: ModelConfig, store: FakeStore
) -> None:
    ledger, metrics = MemoryLedger(), FakeMetrics()
    _traffic(store, example_model, 400, drift=1.0)

    outcome = _run(example_model, store, ledger, metrics)

    assert (outcome.status, outcome.rows) == ("drifted", 400)
    assert {"tenure_months", "monthly_charges", "contract"} <= set(outcome.drifted_features)
    ((published,),) = [metrics.published]
    assert published.drifted_features == outcome.drifted_features
    assert metrics.rows_seen == [400]


def test_a_drifted_check_writes_its_result_and_report(example_model: ModelConfig, store: FakeStore) -> None:
    _traffic(store, example_model, 400, drift=1.0)

    outcome = _run(example_model, store, MemoryLedger(), FakeMetrics())

    folder = f"s3://{BUCKET}/churn/monitoring/checks/{outcome.check_id.replace('#', '-')}"
    assert (outcome.result_uri, outcome.report_uri) == (f"{folder}/result.json", f"{folder}/report.html")
    result = DriftResult.model_validate_json(store.text(_key(outcome.result_uri)))
    assert (result.status, result.drifted_features) == ("drifted", outcome.drifted_features)
    assert store.objects[(BUCKET, _key(outcome.report_uri))][1] == "text/html"


def test_the_ledger_keeps_each_features_psi(example_model: ModelConfig, store: FakeStore) -> None:
    ledger = MemoryLedger()
    _traffic(store, example_model, 400, drift=1.0)

    outcome = _run(example_model, store, ledger, FakeMetrics())

    item = ledger.items[("model#churn", f"drift#{outcome.check_id}")]
    psi = json.loads(item["psi"])
    assert (item["kind"], item["status"], item["rows"]) == ("drift", "drifted", 400)
    assert set(psi) == {c.name for c in example_model.data.features}
    assert psi["tenure_months"] >= example_model.monitoring.psi_threshold
    assert item["until"] == NOW.isoformat()


def test_the_report_draws_every_feature_and_names_the_drifted_ones(
    example_model: ModelConfig, store: FakeStore
) -> None:
    _traffic(store, example_model, 400, drift=1.0)

    outcome = _run(example_model, store, MemoryLedger(), FakeMetrics())

    html = store.text(_key(outcome.report_uri))
    sections = html.split("<section>")[1:]
    assert len(sections) == len(example_model.data.features)
    assert all("<svg" in section for section in sections)
    for name in outcome.drifted_features:
        assert f"<h3>{name} — drifted</h3>" in html
    assert f"drifted: {', '.join(outcome.drifted_features)}" in html


def test_traffic_like_the_training_data_is_stable(example_model: ModelConfig, store: FakeStore) -> None:
    metrics = FakeMetrics()
    _traffic(store, example_model, 400, drift=0.0)

    outcome = _run(example_model, store, MemoryLedger(), metrics)

    assert (outcome.status, outcome.drifted_features) == ("stable", [])
    assert [len(result.drifted_features) for result in metrics.published] == [0]


def test_too_little_traffic_is_recorded_but_not_published_as_drift(
    example_model: ModelConfig, store: FakeStore
) -> None:
    ledger, metrics = MemoryLedger(), FakeMetrics()
    rows = example_model.monitoring.min_rows - ROWS_PER_OBJECT
    _traffic(store, example_model, rows, drift=1.0)

    outcome = _run(example_model, store, ledger, metrics)

    assert (outcome.status, outcome.rows, outcome.drifted_features) == ("too_little_traffic", rows, [])
    assert metrics.published == []
    assert metrics.rows_seen == [rows]
    assert [item["status"] for item in ledger.items.values()] == ["too_little_traffic"]


def test_the_next_check_starts_where_this_one_ended(example_model: ModelConfig, store: FakeStore) -> None:
    ledger = MemoryLedger()
    _traffic(store, example_model, 400, drift=1.0)
    _run(example_model, store, ledger, FakeMetrics())

    later = plan_window(
        WindowRequest(
            model="churn",
            execution=_execution("check-2"),
        ),
        example_model,
        _ports(store, ledger, at=NOW + timedelta(hours=1)),
        names=NAMES,
        bucket=BUCKET,
    )

    assert later.since == NOW
    assert later.objects == 0
