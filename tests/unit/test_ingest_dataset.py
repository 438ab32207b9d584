"""Dataset versions: statistics, the content-addressed key, the ledger items and the run input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.ingest.dataset import TOP_VALUES, content_sha256, dataset_key, summarize
from headrace.ingest.problems import Problem, Rule
from headrace.ingest.quarantine import Reason, SourceObject, placement
from headrace.ingest.service import rejection_item
from headrace.ingest.table import Table
from headrace.ingest.validation import inspect
from headrace.ledger import (
    EXECUTION_INPUT_MAX,
    CategoricalStatistics,
    DatasetItem,
    DatasetVersion,
    FileFormat,
    NumericStatistics,
    TrainingInput,
    TrainingInputTooLarge,
)
from headrace.ledger.datasets import upload_digest
from headrace.ledger.kinds import stored_item

RECEIVED = datetime(2026, 11, 23, 10, 15, 32, tzinfo=UTC)


@pytest.fixture
def frame(example_model: ModelConfig) -> pd.DataFrame:
    return generate(example_model, 600, seed=21)


@pytest.fixture
def version(frame: pd.DataFrame, example_model: ModelConfig) -> DatasetVersion:
    data = frame.to_csv(index=False).encode()
    inspection = inspect("customers.csv", data, example_model.data)
    assert inspection.frame is not None
    sha256 = content_sha256(data)
    return DatasetVersion(
        model="churn",
        sha256=sha256,
        bucket="data",
        key="churn/incoming/customers.csv",
        version_id="v1",
        size_bytes=len(data),
        format=FileFormat.CSV,
        rows=inspection.rows,
        columns=inspection.columns,
        schema_fingerprint=example_model.data.fingerprint(),
        statistics=summarize(inspection.frame, example_model.data),
        received_at=RECEIVED,
        dataset_key=dataset_key("churn/datasets/", sha256, FileFormat.CSV),
    )


def test_numeric_statistics_match_pandas(version: DatasetVersion, frame: pd.DataFrame) -> None:
    charges = frame["total_charges"]
    stats = version.statistics["total_charges"]

    assert isinstance(stats, NumericStatistics)
    assert (stats.count, stats.nulls) == (charges.count(), charges.isna().sum())
    assert stats.mean == pytest.approx(charges.mean())
    assert stats.std == pytest.approx(charges.std())
    assert stats.min == pytest.approx(charges.min())
    assert stats.max == pytest.approx(charges.max())


def test_categorical_statistics_count_each_value(version: DatasetVersion, frame: pd.DataFrame) -> None:
    stats = version.statistics["region"]

    assert isinstance(stats, CategoricalStatistics)
    assert stats.counts == frame["region"].value_counts().to_dict()


def test_boolean_statistics_count_true_and_false(version: DatasetVersion, frame: pd.DataFrame) -> None:
    stats = version.statistics["senior"]

    assert isinstance(stats, CategoricalStatistics)
    assert stats.counts == {"false": int((~frame["senior"]).sum()), "true": int(frame["senior"].sum())}


def test_categorical_statistics_keep_the_most_frequent_values_only(example_model: ModelConfig) -> None:
    typed = Table.of({"contract": np.array([f"v{i % 300}" for i in range(900)], dtype=object)})

    stats = summarize(typed, example_model.data)["contract"]

    assert isinstance(stats, CategoricalStatistics)
    assert (len(stats.counts), stats.distinct, stats.count) == (TOP_VALUES, 300, 900)


def test_a_dataset_lives_in_a_folder_named_by_its_hash(version: DatasetVersion) -> None:
    assert version.dataset_key == f"churn/datasets/{version.sha256}/data.csv"
    assert version.dataset_uri == f"s3://data/churn/datasets/{version.sha256}/data.csv"


def test_the_ledger_item_of_a_dataset_is_keyed_by_model_and_hash(version: DatasetVersion) -> None:
    item = stored_item(DatasetItem.started(version, "arn:execution", RECEIVED))

    assert (item["pk"], item["sk"]) == ("model#churn", f"dataset#{version.sha256}")
    assert (item["execution_arn"], item["status"]) == ("arn:execution", "started")
    assert json.loads(item["statistics"])["region"]["kind"] == "categorical"
    assert not any(isinstance(value, float) for value in item.values())  # DynamoDB numbers are not floats


def test_the_ledger_item_of_a_rejection_is_keyed_by_time_hash_and_upload() -> None:
    sha256 = "ab" * 32
    reason = Reason(
        model="churn",
        source=SourceObject(bucket="data", key="churn/incoming/x.csv", version_id=None, size=3),
        sha256=sha256,
        received_at=RECEIVED,
        problems=[Problem(rule=Rule.EMPTY, message="the file is empty; expected rows")],
    )

    where = placement("churn", RECEIVED, sha256, "churn/incoming/x.csv")
    item = stored_item(rejection_item(reason, where, RECEIVED))

    upload = upload_digest("churn/incoming/x.csv", None)
    assert (item["pk"], item["sk"]) == (
        "model#churn",
        f"rejection#2026-11-23T10:15:32.000000Z#{sha256[:12]}#{upload}",
    )
    assert (item["quarantine_key"], item["rules"]) == (
        f"churn/quarantine/2026-11-23/101532.000000-{sha256[:12]}-fc24f23a/x.csv",
        ["empty"],
    )


def test_the_run_input_drops_statistics_that_would_not_fit_step_functions(version: DatasetVersion) -> None:
    wide = CategoricalStatistics(count=1, nulls=0, distinct=1, counts={"x" * 1000: 1})
    huge = version.model_copy(update={"statistics": {f"c{i}": wide for i in range(300)}})

    payload = TrainingInput.of(huge).to_json()

    assert len(payload.encode()) <= EXECUTION_INPUT_MAX
    assert json.loads(payload)["dataset"]["statistics"] == {}


def test_a_run_input_too_large_even_without_statistics_is_refused(version: DatasetVersion) -> None:
    huge = version.model_copy(update={"columns": [f"column_{i:06d}" for i in range(30_000)]})

    with pytest.raises(TrainingInputTooLarge, match="over Step Functions' 262144-byte limit"):
        TrainingInput.of(huge).to_json()


def test_the_run_input_is_the_model_and_its_dataset_version(version: DatasetVersion) -> None:
    payload = json.loads(TrainingInput.of(version).to_json())

    assert payload == {"model": "churn", "dataset": version.model_dump(mode="json"), "extra": []}
    assert DatasetVersion.model_validate(payload["dataset"]) == version
