"""The example data generator: seeded, schema-true, learnable, and drifting on request."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from headrace.config import ModelConfig
from headrace.datagen import (
    CapturedLabels,
    LabelRule,
    generate,
    ground_truth_csv,
    ground_truth_jsonl,
    label_captured,
)
from headrace.local.sagemaker.telemetry import Capture
from headrace.quality.labels import LabelSpec, check_labels


def test_the_same_seed_gives_the_same_data(example_model: ModelConfig) -> None:
    pd.testing.assert_frame_equal(generate(example_model, 500, seed=3), generate(example_model, 500, seed=3))


def test_generated_data_respects_the_schema(example_model: ModelConfig) -> None:
    frame = generate(example_model, 5_000)
    assert list(frame.columns) == [c.name for c in example_model.data.columns]
    for column in example_model.data.columns:
        values = frame[column.name].dropna()
        if column.min is not None:
            assert values.min() >= column.min
        if column.max is not None:
            assert values.max() <= column.max
        if column.categories:
            assert set(values) <= set(column.categories)
        if not column.nullable:
            assert frame[column.name].notna().all()


def test_the_label_depends_on_the_features(example_model: ModelConfig) -> None:
    frame = generate(example_model, 20_000)
    by_contract = frame.groupby("contract")["churned"].mean()
    assert by_contract.max() - by_contract.min() > 0.05


def test_drift_moves_the_feature_distributions(example_model: ModelConfig) -> None:
    base, drifted = (
        generate(example_model, 20_000, seed=1),
        generate(example_model, 20_000, seed=1, drift=1.0),
    )
    assert drifted["monthly_charges"].mean() > base["monthly_charges"].mean() * 1.2
    assert (
        drifted["region"].value_counts(normalize=True)["west"]
        > base["region"].value_counts(normalize=True)["west"]
    )


def test_shuffled_labels_keep_the_label_rate(example_model: ModelConfig) -> None:
    base = generate(example_model, 10_000, seed=2)
    shuffled = generate(example_model, 10_000, seed=2, shuffle_labels=True)
    assert abs(base["churned"].mean() - shuffled["churned"].mean()) < 1e-9


def test_label_noise_weakens_the_relation_without_removing_it(example_model: ModelConfig) -> None:
    def spread(frame: pd.DataFrame) -> float:
        by_contract = frame.groupby("contract")["churned"].mean()
        return float(by_contract.max() - by_contract.min())

    clean = generate(example_model, 20_000, seed=4)
    noisy = generate(example_model, 20_000, seed=4, label_noise=0.5)
    assert 0.02 < spread(noisy) < spread(clean)


def test_concept_drift_keeps_the_features_and_changes_the_labels(example_model: ModelConfig) -> None:
    base = generate(example_model, 20_000, seed=5)
    drifted = generate(example_model, 20_000, seed=5, concept_drift=1.0)
    features = [c.name for c in example_model.data.features]
    pd.testing.assert_frame_equal(base[features], drifted[features])
    # The label rate stays where it was; the rule that decides it does not.
    assert abs(base["churned"].mean() - drifted["churned"].mean()) < 0.02
    assert (base["churned"] != drifted["churned"]).mean() > 0.2
    old_rule = LabelRule.of(example_model).logit(base[features])
    assert roc_auc_score(base["churned"], old_rule) - roc_auc_score(drifted["churned"], old_rule) > 0.15


def test_the_strongest_feature_s_effect_is_reversed_at_full_concept_drift(example_model: ModelConfig) -> None:
    rule, turned = LabelRule.of(example_model), LabelRule.of(example_model, concept_drift=1.0)
    changed = [name for name in rule.effects if rule.effects[name] != turned.effects[name]]
    assert len(changed) == 1
    before, after = rule.effects[changed[0]], turned.effects[changed[0]]
    if isinstance(before, dict):
        assert isinstance(after, dict)
        centre = np.mean(list(before.values()))
        assert all(np.isclose(after[k] - centre, centre - before[k]) for k in before)
    else:
        assert after == -before


def _captured(example_model: ModelConfig, frame: pd.DataFrame, per_request: int) -> list[str]:
    """Capture records of `frame`'s features sent `per_request` rows a call, as the local plane writes them;
    every other call without an InferenceId (so keyed by its eventId)."""
    capture = Capture.of(
        {
            "EnableCapture": True,
            "DestinationS3Uri": "s3://bucket/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }
    )
    assert capture is not None
    features = [c.name for c in example_model.data.features]
    lines = frame[features].to_csv(index=False, header=False).splitlines()
    return [
        capture.line(
            ("\n".join(lines[start : start + per_request]) + "\n").encode(),
            "text/csv",
            b'{"predictions": [0.5]}',
            "application/json",
            f"request-{start}" if start % (2 * per_request) == 0 else None,
        )
        for start in range(0, len(lines), per_request)
    ]


def test_labels_for_captured_requests_follow_the_rule_on_their_features(example_model: ModelConfig) -> None:
    frame = generate(example_model, 4_000, seed=8)
    records = _captured(example_model, frame, per_request=4)
    labels = label_captured(example_model, [*records, "not a capture record"])
    assert (labels.inferences, labels.skipped, len(labels.keys)) == (1_001, 1, 4_000)
    assert labels.keys[:5] == ["request-0"] * 4 + [json.loads(records[1])["eventMetadata"]["eventId"]]
    assert labels.rows[:5] == [0, 1, 2, 3, 0]
    features = [c.name for c in example_model.data.features]
    rule = LabelRule.of(example_model).logit(frame[features])
    assert roc_auc_score(labels.labels, rule) > 0.8
    drifted = label_captured(example_model, records, concept_drift=1.0)
    assert drifted.keys == labels.keys
    assert roc_auc_score(drifted.labels, rule) < roc_auc_score(labels.labels, rule) - 0.15


@pytest.mark.parametrize(
    ("name", "write"), [("labels.jsonl", ground_truth_jsonl), ("labels.csv", ground_truth_csv)]
)
def test_ground_truth_files_for_captured_requests_pass_the_ingest_check(
    example_model: ModelConfig, name: str, write: Callable[[CapturedLabels], str]
) -> None:
    labels = label_captured(example_model, _captured(example_model, generate(example_model, 90, seed=2), 3))
    checked = check_labels(name, write(labels).encode(), LabelSpec.of(example_model))
    assert checked.accepted, [p.message for p in checked.problems]
    assert [(r.inference_id, r.row, r.label) for r in checked.rows] == [
        (key, row, float(label))
        for key, row, label in zip(labels.keys, labels.rows, labels.labels, strict=True)
    ]


def test_a_category_label_with_a_comma_is_written_as_a_json_list() -> None:
    labels = CapturedLabels(["a", "a"], [0, 1], ["x,y", "z"], inferences=1, skipped=0)
    record = json.loads(ground_truth_jsonl(labels))
    assert record["groundTruthData"] == {"data": '["x,y", "z"]', "encoding": "JSON"}
    assert record["eventMetadata"] == {"eventId": "a"}
