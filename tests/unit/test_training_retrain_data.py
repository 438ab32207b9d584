"""Retraining that learns from production: what retraining picks, how Prepare gathers and splits it, the
champion channel, and the gate's comparison on the recent holdout."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from headrace.config import GateConfig, ModelConfig
from headrace.datagen import generate
from headrace.ledger import DatasetItem, DatasetVersion, FileFormat, MemoryLedger
from headrace.monitoring.retrain import training_data
from headrace.training.champion import write_champion_channel
from headrace.training.evaluation import Evaluation
from headrace.training.gate import judge
from headrace.training.gather import DatasetMismatch, gather
from headrace.training.layout import RunLayout
from headrace.training.payloads import ChampionInfo, HoldoutMetrics
from headrace.training.splits import read_dataset, split_dataset
from tests.fakes import FakeStore

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BUCKET = "data"


def _version(
    model: ModelConfig, store: FakeStore, body: bytes, received_at: datetime, source: str = "upload"
) -> DatasetVersion:
    sha = hashlib.sha256(body).hexdigest()
    key = f"churn/datasets/{sha}/data.csv"
    store.put(BUCKET, key, body, "text/csv")
    lineage = (
        f"s3://{BUCKET}/churn/monitoring/quality/{sha[:8]}/lineage.json" if source == "production" else None
    )
    return DatasetVersion.model_validate(
        {
            "model": "churn",
            "sha256": sha,
            "bucket": BUCKET,
            "key": f"churn/incoming/{source}/{sha[:8]}.csv",
            "version_id": None,
            "size_bytes": len(body),
            "format": FileFormat.CSV,
            "rows": body.count(b"\n") - 1,
            "columns": [c.name for c in model.data.columns],
            "schema_fingerprint": "f" * 16,
            "statistics": {},
            "received_at": received_at,
            "dataset_key": key,
            "source": source,
            "lineage_uri": lineage,
        }
    )


def _csv(model: ModelConfig, rows: int, seed: int, concept_drift: float = 0.0) -> bytes:
    return generate(model, rows, seed=seed, concept_drift=concept_drift).to_csv(index=False).encode()


# --- what retraining trains on ----------------------------------------------------------------------------


def test_retraining_takes_the_newest_upload_and_recent_datasets_production_included(
    example_model: ModelConfig,
) -> None:
    store, ledger = FakeStore(), MemoryLedger()
    old_upload = _version(example_model, store, _csv(example_model, 50, 1), NOW - timedelta(days=90))
    upload = _version(example_model, store, _csv(example_model, 50, 2), NOW - timedelta(days=10))
    production = _version(
        example_model, store, _csv(example_model, 50, 3), NOW - timedelta(days=1), "production"
    )
    for version in (old_upload, upload, production):
        ledger.record_dataset(DatasetItem.started(version, "arn:ingest", version.received_at))

    chosen = training_data(example_model, ledger, NOW)

    assert chosen is not None
    assert chosen.dataset.sha256 == upload.sha256  # the newest upload, though production came later
    assert [v.sha256 for v in chosen.extra] == [
        production.sha256
    ]  # the 90-day-old upload is out of the window
    assert chosen.extra[0].lineage_uri == production.lineage_uri

    uploads_only = example_model.model_copy(
        update={
            "monitoring": example_model.monitoring.model_copy(
                update={
                    "retrain_data": example_model.monitoring.retrain_data.model_copy(
                        update={"production": False}
                    )
                }
            )
        }
    )
    assert training_data(uploads_only, ledger, NOW).extra == []  # type: ignore[union-attr]


def test_production_data_alone_is_not_a_training_set(example_model: ModelConfig) -> None:
    store, ledger = FakeStore(), MemoryLedger()
    production = _version(example_model, store, _csv(example_model, 50, 3), NOW, "production")
    ledger.record_dataset(DatasetItem.started(production, "arn:ingest", NOW))
    assert training_data(example_model, ledger, NOW) is None


# --- Prepare's gathering and splits -----------------------------------------------------------------------


def test_a_single_upload_is_split_exactly_as_before(example_model: ModelConfig) -> None:
    store = FakeStore()
    body = _csv(example_model, 1_000, 7)
    version = _version(example_model, store, body, NOW)

    gathered = gather(store, version, [], example_model)

    expected = split_dataset(
        read_dataset(body, FileFormat.CSV, example_model.data), example_model, version.sha256
    )
    for split in ("train", "validation", "test"):
        assert gathered.splits.part(split) == expected.part(split)
    assert gathered.holdout is None
    assert [(d.sha256, d.rows, d.source) for d in gathered.datasets] == [(version.sha256, 1_000, "upload")]


def test_with_production_data_the_test_split_is_recent_production_rows_only(
    example_model: ModelConfig,
) -> None:
    store = FakeStore()
    upload = _version(example_model, store, _csv(example_model, 1_000, 7), NOW - timedelta(days=2))
    old_production = _version(
        example_model, store, _csv(example_model, 400, 8, 1.0), NOW - timedelta(days=1), "production"
    )
    production_body = _csv(example_model, 600, 9, 1.0)
    production = _version(example_model, store, production_body, NOW, "production")

    gathered = gather(store, upload, [production, old_production], example_model)

    produced = read_dataset(production_body, FileFormat.CSV, example_model.data)
    test = gathered.splits.test
    # Every test row is a row of the newest production dataset, and its share is the configured one.
    assert set(test.rows) <= set(produced.rows)
    assert len(test) == pytest.approx(600 * example_model.trainer.held_out_fraction, abs=2)
    assert sum(gathered.splits.rows().values()) == 2_000
    assert gathered.holdout is not None and gathered.holdout.sha256 == production.sha256
    assert [d.sha256 for d in gathered.datasets] == [upload.sha256, old_production.sha256, production.sha256]


def test_the_row_cap_keeps_the_newest_rows(example_model: ModelConfig) -> None:
    capped = example_model.model_copy(
        update={
            "monitoring": example_model.monitoring.model_copy(
                update={
                    "retrain_data": example_model.monitoring.retrain_data.model_copy(update={"max_rows": 700})
                }
            )
        }
    )
    store = FakeStore()
    upload = _version(capped, store, _csv(capped, 1_000, 7), NOW - timedelta(days=2))
    production = _version(capped, store, _csv(capped, 500, 9), NOW, "production")

    gathered = gather(store, upload, [production], capped)

    assert sum(gathered.splits.rows().values()) == 700
    assert [(d.source, d.rows) for d in gathered.datasets] == [("upload", 200), ("production", 500)]


def test_a_changed_dataset_file_is_refused_by_name(example_model: ModelConfig) -> None:
    store = FakeStore()
    upload = _version(example_model, store, _csv(example_model, 200, 7), NOW - timedelta(days=1))
    production = _version(example_model, store, _csv(example_model, 200, 9), NOW, "production")
    store.put(BUCKET, production.dataset_key, b"tampered", "text/csv")
    with pytest.raises(DatasetMismatch, match=production.dataset_key):
        gather(store, upload, [production], example_model)


# --- the champion channel ---------------------------------------------------------------------------------


def test_the_champion_channel_holds_a_copy_of_the_champions_artifact() -> None:
    store = FakeStore()
    layout = RunLayout(BUCKET, "churn", "job-2")
    artifact = "churn/runs/job-1/output/job-1/output/model.tar.gz"
    store.put(BUCKET, artifact, b"tar bytes", "application/gzip")
    champion = ChampionInfo(version=3, arn="arn:v3", metrics={}, model_data_url=f"s3://{BUCKET}/{artifact}")

    version, said = write_champion_channel(store, layout, champion)

    assert version == 3 and "version 3" in said
    assert store.read(BUCKET, "churn/runs/job-2/splits/champion/model.tar.gz") == b"tar bytes"


@pytest.mark.parametrize(
    ("champion", "why"),
    [
        (None, "no approved version yet"),
        (ChampionInfo(version=2, arn="arn:v2", metrics={}), "no ModelDataUrl"),
        (
            ChampionInfo(version=2, arn="arn:v2", metrics={}, model_data_url="s3://elsewhere/m/model.tar.gz"),
            "not a training output of this model",
        ),
    ],
)
def test_without_a_readable_champion_the_channel_says_why(champion: ChampionInfo | None, why: str) -> None:
    store = FakeStore()
    layout = RunLayout(BUCKET, "churn", "job-2")
    version, _ = write_champion_channel(store, layout, champion)
    assert version is None
    document = json.loads(store.read(BUCKET, "churn/runs/job-2/splits/champion/none.json"))
    assert document["champion"] is None and why in document["reason"]


# --- the gate on the recent holdout -----------------------------------------------------------------------


def _gate(model: ModelConfig) -> GateConfig:
    return model.gate.model_copy(update={"slice_by": []})  # these evaluations have no slices


def _evaluation(auc: float) -> Evaluation:
    return Evaluation(metric="auc", metrics={"auc": auc, "rows": 812})


def _champion(registered: float, on_holdout: float) -> ChampionInfo:
    return ChampionInfo(
        version=1,
        arn="arn:v1",
        metrics={"auc": registered},
        holdout=HoldoutMetrics(metrics={"auc": on_holdout}, rows=812),
    )


def test_a_retrain_that_does_not_beat_the_champion_on_recent_data_is_rejected_with_both_figures(
    example_model: ModelConfig,
) -> None:
    decision = judge(_gate(example_model), _evaluation(0.741), _champion(0.70, 0.803), recent_holdout=True)
    assert not decision.passed
    assert decision.reasons == [
        "auc 0.741 on the 812-row recent holdout does not beat the champion's 0.803 (v1)"
    ]


def test_a_retrain_that_beats_the_champion_on_recent_data_passes_and_says_by_what(
    example_model: ModelConfig,
) -> None:
    # The registry's figure (0.95, on the champion's own old test split) would have failed max_regression.
    decision = judge(_gate(example_model), _evaluation(0.85), _champion(0.95, 0.62), recent_holdout=True)
    assert decision.passed, decision.reasons
    assert "auc 0.85 on the 812-row recent holdout beats the champion's 0.62 (v1)" in decision.notes


def test_min_improvement_is_the_margin_to_beat(example_model: ModelConfig) -> None:
    gate = _gate(example_model).model_copy(update={"min_improvement": 0.05})
    decision = judge(gate, _evaluation(0.84), _champion(0.8, 0.80), recent_holdout=True)
    assert not decision.passed
    assert "by more than 0.05 (gate.min_improvement)" in decision.reasons[0]
    assert judge(gate, _evaluation(0.86), _champion(0.8, 0.80), recent_holdout=True).passed


def test_without_production_data_the_registry_rule_still_applies(example_model: ModelConfig) -> None:
    # Same figures as above, but the test split is not a production holdout: max_regression vs 0.95.
    decision = judge(_gate(example_model), _evaluation(0.85), _champion(0.95, 0.62), recent_holdout=False)
    assert not decision.passed
    assert "worse than the champion's 0.95" in decision.reasons[0]
