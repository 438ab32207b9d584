"""The reference profile: decile bins for PSI, a sorted sample for KS, category frequencies with __other__."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.profile import (
    BINS,
    OTHER,
    SAMPLE_LIMIT,
    CategoricalProfile,
    FeatureInfo,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    numeric_values,
    profile_categorical,
    profile_numeric,
)


def test_numeric_edges_are_the_deciles_and_counts_fill_ten_bins() -> None:
    values = pd.Series(np.arange(1, 1001, dtype=float))
    profile = profile_numeric(values)
    assert len(profile.edges) == BINS - 1
    assert profile.edges == [100.0 * i for i in range(1, BINS)]
    assert profile.counts == [100] * BINS
    assert (profile.mean, profile.min, profile.max) == (500.5, 1.0, 1000.0)
    assert profile.std == pytest.approx(float(np.std(values)))


def test_reference_data_binned_again_gives_the_stored_counts() -> None:
    values = pd.Series(np.random.default_rng(1).gamma(2.0, 3.0, size=5_000))
    profile = profile_numeric(values)
    assert profile.bin_counts(values).tolist() == profile.counts
    assert profile.bin_counts(values.to_numpy()).tolist() == profile.counts


def test_values_outside_the_training_range_land_in_the_end_bins() -> None:
    profile = profile_numeric(pd.Series(np.arange(100, dtype=float)))
    counts = profile.bin_counts(np.array([-1e9, 1e9, np.nan]))
    assert counts[0] == 1 and counts[-1] == 1 and counts.sum() == 2


def test_a_value_on_an_edge_belongs_to_the_bin_below_it() -> None:
    profile = profile_numeric(pd.Series(np.arange(100, dtype=float)))
    edge = profile.edges[3]
    assert profile.bin_counts(np.array([edge])).tolist().index(1) == 3


def test_repeated_values_collapse_duplicate_edges() -> None:
    profile = profile_numeric(pd.Series([0.0] * 90 + [1.0] * 10))
    assert profile.edges == [0.0]
    assert profile.counts == [90, 10]


def test_missing_values_are_counted_apart_from_the_bins() -> None:
    values = pd.Series([1.0, None, 3.0, np.nan, 5.0, np.inf])
    profile = profile_numeric(values)
    assert profile.count == 3
    assert profile.missing_rate == pytest.approx(3 / 6)
    assert sum(profile.counts) == 3
    assert profile.sample == [1.0, 3.0, 5.0]


def test_an_all_missing_column_has_no_statistics() -> None:
    profile = profile_numeric(pd.Series([None, None], dtype=float))
    assert (profile.count, profile.missing_rate, profile.mean, profile.edges, profile.sample) == (
        0,
        1.0,
        None,
        [],
        [],
    )
    assert profile.bin_counts(np.array([1.0, 2.0])).tolist() == [2]


def test_sample_is_sorted_capped_and_drawn_from_the_data() -> None:
    values = pd.Series(np.random.default_rng(2).normal(size=SAMPLE_LIMIT * 2 + 17))
    profile = profile_numeric(values, seed=5)
    assert len(profile.sample) == SAMPLE_LIMIT
    assert profile.sample == sorted(profile.sample)
    assert set(profile.sample) <= set(values.tolist())
    assert profile_numeric(values, seed=5).sample == profile.sample


def test_small_data_keeps_every_value_in_the_sample() -> None:
    values = pd.Series([3.0, 1.0, 2.0, 2.0])
    assert profile_numeric(values).sample == [1.0, 2.0, 2.0, 3.0]


def test_booleans_and_true_false_text_are_numbers() -> None:
    assert numeric_values(pd.Series([True, False])).tolist() == [1.0, 0.0]
    text = numeric_values(pd.Series(["True", "false", None, "7", "x"], dtype=object))
    assert text[:2].tolist() == [1.0, 0.0] and text[3] == 7.0
    assert np.isnan(text[2]) and np.isnan(text[4])


def test_category_frequencies_pool_unknown_values_as_other() -> None:
    values = pd.Series(["a", "b", "a", "zzz", None, "a", "c"])
    profile = profile_categorical(values, ["a", "b", "c"])
    assert profile.counts == {"a": 3, "b": 1, "c": 1, OTHER: 1}
    assert profile.frequencies == pytest.approx({"a": 0.5, "b": 1 / 6, "c": 1 / 6, OTHER: 1 / 6})
    assert profile.missing_rate == pytest.approx(1 / 7)
    assert profile.count == 6


def test_categorical_bin_counts_follow_the_bucket_order() -> None:
    profile = profile_categorical(pd.Series(["x", "y"]), ["x", "y"])
    assert profile.buckets == ["x", "y", OTHER]
    assert profile.bin_counts(pd.Series(["y", "y", "q", None])).tolist() == [0, 2, 1]


def test_free_text_columns_keep_their_most_frequent_values() -> None:
    profile = profile_categorical(pd.Series(["b", "a", "b", "c", "a", "b"]))
    assert profile.categories == ["b", "a", "c"]


def test_a_schema_profiles_every_feature_but_the_target(example_model: ModelConfig) -> None:
    frame = generate(example_model, 2_000, seed=11)
    profile = build_profile(frame, example_model.data)
    names = [c.name for c in example_model.data.features]
    assert list(profile.features) == names
    assert example_model.data.target not in profile.features
    assert profile.n == 2_000
    assert isinstance(profile.features["region"], CategoricalProfile)
    assert isinstance(profile.features["tenure_months"], NumericProfile)
    # Booleans are profiled as 0/1 numbers, the way the trainer feeds them to XGBoost.
    senior = profile.features["senior"]
    assert isinstance(senior, NumericProfile)
    assert senior.mean == pytest.approx(frame["senior"].mean())
    # total_charges is nullable: the generator leaves about 2% empty.
    assert 0 < profile.features["total_charges"].missing_rate < 0.05


def test_feature_info_reads_features_json_and_drives_the_profile() -> None:
    info = FeatureInfo.model_validate_json(
        '{"features": ["n", "c"], "categorical": {"c": ["u", "v"]}, "target": "y", "objective": "x"}'
    )
    frame = pd.DataFrame({"n": [1.0, 2.0, 3.0], "c": ["u", "v", "w"], "y": [0, 1, 0]})
    profile = build_profile(frame, info)
    assert list(profile.features) == ["n", "c"]
    assert profile.features["c"].counts == {"u": 1, "v": 1, OTHER: 1}


def test_a_missing_feature_column_is_named() -> None:
    info = FeatureInfo(features=["n", "gone"])
    with pytest.raises(ValueError, match="gone"):
        build_profile(pd.DataFrame({"n": [1.0]}), info)


def test_the_profile_round_trips_through_json_exactly(example_model: ModelConfig) -> None:
    profile = build_profile(generate(example_model, 1_000, seed=3), example_model.data)
    again = ReferenceProfile.model_validate_json(profile.model_dump_json())
    assert again == profile


def test_an_all_missing_category_column_counts_nothing() -> None:
    profile = profile_categorical(pd.Series([None, None], dtype=object), ["a"])
    assert (profile.count, profile.missing_rate, profile.counts) == (0, 1.0, {"a": 0, OTHER: 0})
    assert profile.frequencies == {"a": 0.0, OTHER: 0.0}


def test_category_labels_ignore_surrounding_spaces() -> None:
    profile = profile_categorical(pd.Series([" a", "a ", "b"]), ["a", "b"])
    assert profile.counts == {"a": 2, "b": 1, OTHER: 0}
