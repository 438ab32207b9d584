"""Batch files (`<model>/batch/incoming/`) through the ingest flow, with in-memory fakes: validated against
the schema minus the target, written header-less in the model's feature order for the transform job, the
batch state machine started once per content and version; bad files quarantined as bad datasets are."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace

import pandas as pd
import pytest

from headrace.batch.layout import asked_version, input_keys
from headrace.batch.payloads import BatchInput
from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.ingest import IngestResult, ObjectCreated, Outcome, ingest
from headrace.ingest.batch import batch_execution_name
from headrace.ingest.ports import IngestPorts
from headrace.ingest.routing import RouteKind, route
from tests.unit import test_ingest_service
from tests.unit.test_ingest_service import BUCKET, RECEIVED, FakeRuns, World

world = test_ingest_service.world


@pytest.fixture
def batches() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
def scoring(example_model: ModelConfig) -> pd.DataFrame:
    """Rows to score: the features only, in a shuffled column order."""
    frame = generate(example_model, 300, seed=9).drop(columns=[example_model.data.target])
    return frame[list(reversed(frame.columns))]


def _drop(world: World, batches: FakeRuns, key: str, body: bytes) -> IngestResult:
    world.store.objects[(BUCKET, key)] = body
    ports: IngestPorts = replace(world.ports, batches=batches)
    notice = ObjectCreated(
        bucket=BUCKET, key=key, version_id=None, size=len(body), etag="", time=RECEIVED, event_id="1"
    )
    return ingest(notice, world.models, ports)


def test_batch_keys_route_to_batch_scoring_and_its_output_is_ignored(example_model: ModelConfig) -> None:
    models = {"churn": example_model}
    assert route("churn/batch/incoming/may.csv", models).kind is RouteKind.BATCH
    assert route("churn/batch/incoming/v3/may.csv", models).kind is RouteKind.BATCH
    assert route("churn/batch/input/abc/input.csv", models).kind is RouteKind.IGNORE
    assert route("churn/batch/output/job/input.csv.out", models).kind is RouteKind.IGNORE
    misplaced = route("churn/batch/may.csv", models)
    assert misplaced.kind is RouteKind.MISPLACED and "churn/batch/incoming/may.csv" in misplaced.reason


def test_a_version_folder_names_the_version_to_score_with() -> None:
    assert asked_version("churn/batch/incoming/v12/may.csv") == 12
    assert asked_version("churn/batch/incoming/may.csv") is None
    assert asked_version("churn/batch/incoming/v0/may.csv") is None


def test_a_good_batch_is_written_header_less_in_feature_order_and_starts_one_execution(
    world: World, batches: FakeRuns, scoring: pd.DataFrame, example_model: ModelConfig
) -> None:
    body = scoring.to_csv(index=False).encode()
    result = _drop(world, batches, "churn/batch/incoming/may.csv", body)

    sha256 = hashlib.sha256(body).hexdigest()
    assert (result.outcome, result.sha256) == (Outcome.STARTED, sha256)
    [key] = input_keys("churn", sha256, 1)
    features = [c.name for c in example_model.data.features]
    written = pd.read_csv(io.BytesIO(world.store.objects[(BUCKET, key)]), header=None, names=features)
    assert len(written) == 300
    assert written["tenure_months"].tolist() == pytest.approx(scoring["tenure_months"].astype(float).tolist())
    name = batch_execution_name("churn", sha256, None)
    started = BatchInput.model_validate_json(batches.started[name])
    assert (started.rows, started.version, started.source_key) == (300, None, "churn/batch/incoming/may.csv")
    assert world.runs.started == {}  # no training run


def test_the_same_batch_again_is_a_duplicate_and_another_version_is_not(
    world: World, batches: FakeRuns, scoring: pd.DataFrame
) -> None:
    body = scoring.to_csv(index=False).encode()
    first = _drop(world, batches, "churn/batch/incoming/may.csv", body)
    again = _drop(world, batches, "churn/batch/incoming/may-again.csv", body)
    named = _drop(world, batches, "churn/batch/incoming/v2/may.csv", body)

    assert (first.outcome, again.outcome, named.outcome) == (
        Outcome.STARTED,
        Outcome.DUPLICATE,
        Outcome.STARTED,
    )
    assert len(batches.started) == 2
    assert (
        BatchInput.model_validate_json(
            batches.started[batch_execution_name("churn", first.sha256 or "", 2)]
        ).version
        == 2
    )


def test_a_batch_with_the_target_or_a_missing_feature_is_quarantined_with_reasons(
    world: World, batches: FakeRuns, scoring: pd.DataFrame, example_model: ModelConfig
) -> None:
    bad = scoring.drop(columns=["tenure_months"]).assign(**{example_model.data.target: 1})
    result = _drop(world, batches, "churn/batch/incoming/bad.csv", bad.to_csv(index=False).encode())

    assert result.outcome is Outcome.QUARANTINED and result.quarantine_key is not None
    reason_key = result.quarantine_key.rsplit("/", 1)[0] + "/reason.json"
    rules = [p["rule"] for p in json.loads(world.store.objects[(BUCKET, reason_key)])["problems"]]
    assert rules == ["missing_columns", "unexpected_columns"]
    assert batches.started == {}
    assert not [k for _, k in world.store.objects if "/batch/input/" in k]


def test_large_batches_are_split_into_one_file_per_transform_instance(
    world: World, batches: FakeRuns, scoring: pd.DataFrame, example_model: ModelConfig
) -> None:
    model = example_model.model_copy(
        update={"batch": example_model.batch.model_copy(update={"instance_count": 3})}
    )
    world.models["churn"] = model
    body = scoring.to_csv(index=False).encode()
    result = _drop(world, batches, "churn/batch/incoming/may.csv", body)

    keys = input_keys("churn", result.sha256 or "", 3)
    sizes = [len(world.store.objects[(BUCKET, k)].splitlines()) for k in keys]
    assert sizes == [100, 100, 100]
