"""The example data generator: seeded, schema-true, learnable, and drifting on request."""

from __future__ import annotations

import pandas as pd

from headrace.config import ModelConfig
from headrace.datagen import generate


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
