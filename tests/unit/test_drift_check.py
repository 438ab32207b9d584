"""Drift checks end to end: a profile from training data, a window of traffic, a report with verdicts."""

from __future__ import annotations

import itertools
import random

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from headrace.config import MonitoringConfig
from headrace.drift import (
    DriftPartial,
    DriftReference,
    compute_drift,
    finish,
    merge,
    partial_from_frame,
)
from headrace.drift.statistics import psi
from headrace.profile import (
    OTHER,
    SAMPLE_LIMIT,
    CategoricalProfile,
    FeatureInfo,
    ReferenceProfile,
    build_profile,
)

COLORS = ["red", "green", "blue"]
NUMERIC = ["normal", "cauchy", "pareto", "ties", "constant", "sparse"]
# The categorical feature first: reports keep the profile's order, though partials hold numeric ones first.
INFO = FeatureInfo(features=["color", *NUMERIC], categorical={"color": COLORS})
MONITORING = MonitoringConfig(min_rows=200)


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sparse = rng.normal(size=rows)
    sparse[rng.random(rows) < 0.3] = np.nan
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1.0, rows),
            "cauchy": rng.standard_cauchy(rows) + shift,
            "pareto": rng.pareto(1.5, rows) * (1.0 + shift),
            "ties": rng.integers(0, 8 + int(10 * shift), rows).astype(float),
            "constant": np.full(rows, 3.0),
            "sparse": sparse,
            "color": rng.choice(COLORS + (["purple"] if shift else []), rows),
        }
    )


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    # More rows than SAMPLE_LIMIT, so KS runs against a drawn sample, not every training value.
    return build_profile(_frame(24_000, seed=1), INFO)


@pytest.fixture(scope="module")
def window() -> pd.DataFrame:
    return _frame(6_000, seed=2, shift=0.05)


def _present(values: pd.Series[float]) -> npt.NDArray[np.float64]:
    array = values.to_numpy(dtype=np.float64)
    present: npt.NDArray[np.float64] = array[np.isfinite(array)]
    return present


@pytest.mark.parametrize("name", ["normal", "cauchy", "pareto", "ties", "sparse"])
def test_ks_statistic_equals_scipy_against_the_profile_sample(
    profile: ReferenceProfile, window: pd.DataFrame, name: str
) -> None:
    result = compute_drift(profile, window, MONITORING).feature(name)
    sample = np.asarray(profile.features[name].sample)  # type: ignore[union-attr]
    expected = stats.ks_2samp(sample, _present(window[name]))
    assert result.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.ks_pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert result.ks_method == "asymp"
    assert result.ks_reference_size == sample.size == min(SAMPLE_LIMIT, profile.features[name].count)


def test_psi_is_on_the_profile_decile_bins(profile: ReferenceProfile, window: pd.DataFrame) -> None:
    result = compute_drift(profile, window, MONITORING)
    for name in ["normal", "cauchy", "pareto", "ties", "sparse"]:
        feature = profile.features[name]
        expected = psi(feature.counts, feature.bin_counts(window[name]))  # type: ignore[arg-type]
        assert result.feature(name).psi == pytest.approx(expected, rel=1e-12)


def test_a_shifted_window_drifts_and_a_fresh_draw_of_training_data_does_not(
    profile: ReferenceProfile,
) -> None:
    shifted = compute_drift(profile, _frame(6_000, seed=3, shift=0.5), MONITORING)
    assert shifted.status == "drifted" and shifted.drifted
    assert {"normal", "cauchy", "pareto", "ties", "color"} <= set(shifted.drifted_features)
    assert shifted.feature("normal").reasons == ["psi", "ks"]
    same = compute_drift(profile, _frame(6_000, seed=4), MONITORING)
    assert same.status == "stable" and same.drifted_features == []


def test_a_constant_column_that_stays_put_has_no_drift(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    constant = compute_drift(profile, window, MONITORING).feature("constant")
    assert (constant.psi, constant.ks_statistic, constant.ks_pvalue) == (0.0, 0.0, 1.0)
    assert not constant.drifted


def test_a_constant_column_that_moves_drifts(profile: ReferenceProfile, window: pd.DataFrame) -> None:
    moved = compute_drift(profile, window.assign(constant=4.0), MONITORING).feature("constant")
    expected = stats.ks_2samp(np.asarray(profile.features["constant"].sample), np.full(len(window), 4.0))  # type: ignore[union-attr]
    assert moved.ks_statistic == pytest.approx(expected.statistic, abs=1e-12) == 1.0
    assert moved.drifted and moved.reasons == ["psi", "ks"]


def test_a_column_missing_from_every_row_reports_its_missing_rate_and_no_statistics(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    feature = compute_drift(profile, window.assign(normal=np.nan), MONITORING).feature("normal")
    assert (feature.values_current, feature.missing_rate_current, feature.missing_rate_change) == (
        0,
        1.0,
        1.0,
    )
    assert feature.psi is None and feature.ks_statistic is None and not feature.drifted
    assert feature.note == "no values in the current window"


def test_a_feature_with_no_training_values_has_no_statistics() -> None:
    training = pd.DataFrame({"x": [np.nan] * 50, "y": np.arange(50.0)})
    reference = build_profile(training, FeatureInfo(features=["x", "y"]))
    feature = compute_drift(reference, pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}), MONITORING).feature(
        "x"
    )
    assert feature.note == "no values in the reference profile" and feature.psi is None


def test_missing_and_infinite_values_count_as_missing(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    frame = window.copy()
    frame.loc[:99, "normal"] = np.nan
    frame.loc[100:149, "normal"] = np.inf
    frame.loc[150:159, "normal"] = -np.inf
    feature = compute_drift(profile, frame, MONITORING).feature("normal")
    assert feature.missing_rate_current == pytest.approx(160 / len(frame))
    assert feature.values_current == len(frame) - 160
    sparse = compute_drift(profile, window, MONITORING).feature("sparse")
    assert sparse.missing_rate_reference == pytest.approx(0.3, abs=0.02)
    assert sparse.missing_rate_change == pytest.approx(
        sparse.missing_rate_current - sparse.missing_rate_reference
    )


def test_unseen_categories_count_as_other_in_chi2_and_js(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    feature = compute_drift(profile, window, MONITORING).feature("color")
    color = profile.features["color"]
    assert isinstance(color, CategoricalProfile)
    reference_counts = [color.counts[b] for b in [*COLORS, OTHER]]
    current_counts = [int((window["color"] == c).sum()) for c in COLORS] + [
        int((window["color"] == "purple").sum())
    ]
    assert reference_counts[-1] == 0 and current_counts[-1] > 0
    expected = stats.chi2_contingency(np.array([reference_counts, current_counts]), correction=False)
    assert feature.chi2_statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert feature.chi2_pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert feature.chi2_dof == 3
    expected_js = jensenshannon(np.array(reference_counts, float), np.array(current_counts, float), base=2)
    assert feature.js_distance == pytest.approx(expected_js, abs=1e-12)
    assert feature.drifted and "chi2" in feature.reasons


def test_too_little_traffic_is_reported_as_such_not_as_drift(profile: ReferenceProfile) -> None:
    small = _frame(150, seed=5, shift=3.0)
    result = compute_drift(profile, small, MONITORING)
    assert result.status == "too_little_traffic"
    assert not result.drifted and result.drifted_features == []
    assert all(not f.drifted and f.reasons == [] for f in result.features)
    # The statistics are still there, for a person to read.
    normal_psi = result.feature("normal").psi
    assert normal_psi is not None and normal_psi > 1.0
    enough = compute_drift(profile, small, MonitoringConfig(min_rows=100))
    assert enough.status == "drifted"


def test_a_one_row_window(profile: ReferenceProfile) -> None:
    row = _frame(1, seed=6)
    result = compute_drift(profile, row, MONITORING)
    assert result.status == "too_little_traffic" and result.rows_current == 1
    sample = np.asarray(profile.features["normal"].sample)  # type: ignore[union-attr]
    expected = stats.ks_2samp(sample, row["normal"].to_numpy())
    assert result.feature("normal").ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.feature("normal").ks_pvalue == pytest.approx(expected.pvalue, rel=1e-9)


def test_chunked_partials_merged_in_any_order_equal_the_one_shot_result(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    whole = partial_from_frame(profile, window)
    bounds = [0, 1, 2, 700, 701, 3_333, 5_999, len(window)]
    parts = [
        partial_from_frame(profile, window.iloc[a:b], chunk_rows=97) for a, b in itertools.pairwise(bounds)
    ]
    random.Random(0).shuffle(parts)
    merged = merge([merge(parts[:3]), merge(parts[3:])])
    assert merged.rows == whole.rows
    assert merged.missing.tolist() == whole.missing.tolist()
    assert all(np.array_equal(a, b) for a, b in zip(merged.numeric, whole.numeric, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(merged.categorical, whole.categorical, strict=True))
    assert finish(profile, merged, MONITORING) == compute_drift(profile, window, MONITORING)


def test_a_window_given_as_chunks_equals_the_window_in_one_frame(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    chunks = (window.iloc[i : i + 1_000] for i in range(0, len(window), 1_000))
    assert compute_drift(profile, chunks, MONITORING, workers=1) == compute_drift(profile, window, MONITORING)


def test_threads_and_chunk_sizes_do_not_change_the_counts(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    one = partial_from_frame(profile, window, workers=1, chunk_rows=10_000)
    many = partial_from_frame(profile, window, workers=4, chunk_rows=64)
    assert finish(profile, one, MONITORING) == finish(profile, many, MONITORING)


def test_a_partial_survives_its_trip_through_s3_bytes(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    partial = partial_from_frame(profile, window)
    again = DriftPartial.from_bytes(partial.to_bytes())
    assert finish(profile, again, MONITORING) == finish(profile, partial, MONITORING)


def test_partials_against_different_profiles_do_not_merge(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    other = build_profile(_frame(1_000, seed=9), INFO)
    ours, theirs = partial_from_frame(profile, window), partial_from_frame(other, window)
    with pytest.raises(ValueError, match="different reference profiles"):
        merge([ours, theirs])
    with pytest.raises(ValueError, match="different reference profile"):
        finish(other, ours, MONITORING)


def test_a_window_without_a_feature_column_is_refused(
    profile: ReferenceProfile, window: pd.DataFrame
) -> None:
    with pytest.raises(ValueError, match="no column ties"):
        partial_from_frame(profile, window.drop(columns=["ties"]))


def test_integer_boolean_and_text_columns_read_as_their_numbers() -> None:
    training = pd.DataFrame({"n": np.arange(300) % 7, "flag": np.arange(300) % 3 == 0})
    reference = build_profile(training, FeatureInfo(features=["n", "flag"]))
    numbers = pd.DataFrame(
        {"n": (np.arange(250) % 9).astype(float), "flag": (np.arange(250) % 2 == 0).astype(float)}
    )
    text = pd.DataFrame(
        {
            "n": (np.arange(250) % 9).astype(str).astype(object),
            "flag": np.where(np.arange(250) % 2 == 0, "true", "False").astype(object),
        }
    )
    integers = numbers.assign(n=numbers["n"].astype(np.int64), flag=numbers["flag"].astype(bool))
    expected = compute_drift(reference, numbers, MONITORING)
    assert compute_drift(reference, text, MONITORING) == expected
    assert compute_drift(reference, integers, MONITORING) == expected


def test_the_compiled_reference_is_kept_per_profile(profile: ReferenceProfile) -> None:
    assert DriftReference.of(profile) is DriftReference.of(profile)
    assert DriftReference.of(DriftReference.of(profile)) is DriftReference.of(profile)


def test_features_are_reported_in_the_profile_order(profile: ReferenceProfile, window: pd.DataFrame) -> None:
    shuffled = window[list(reversed(window.columns))]
    result = compute_drift(profile, shuffled, MONITORING)
    assert [f.name for f in result.features] == list(profile.features)
    assert [f.kind for f in result.features] == ["categorical"] + ["numeric"] * len(NUMERIC)


def _as_captured(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The cells as captured requests hold them: CSV text, with JSON's types, words, blanks and junk."""
    rng = np.random.default_rng(seed)
    cells = frame.astype(object)
    for name in NUMERIC:
        text = [repr(v) if rng.random() < 0.5 else f" {v} " for v in frame[name]]
        cells[name] = [
            text[i] if r < 0.8 else [None, "", "true", "FALSE", "n/a", 1, 2.5, True, "1_0", "1e999"][i % 10]
            for i, r in enumerate(rng.random(len(frame)))
        ]
    cells["color"] = [v if r < 0.9 else [None, " red ", "", 3][i % 4] for i, (v, r) in enumerate(
        zip(frame["color"], rng.random(len(frame)), strict=True)
    )]  # fmt: skip
    return cells


def test_captured_columns_count_as_the_same_cells_in_a_frame(profile: ReferenceProfile) -> None:
    # The Partial step reads captures as numpy columns (no pandas at cold start): same cells, same counts.
    cells = _as_captured(_frame(3_000, seed=5, shift=0.3), seed=6)
    columns = {name: cells[name].to_numpy(dtype=object) for name in cells.columns}

    from_frame = partial_from_frame(profile, cells, chunk_rows=700)
    from_columns = partial_from_frame(profile, columns, chunk_rows=700)

    assert from_columns.rows == from_frame.rows == 3_000
    assert from_columns.missing.tolist() == from_frame.missing.tolist()
    assert all(
        a.tolist() == b.tolist() for a, b in zip(from_columns.numeric, from_frame.numeric, strict=True)
    )
    assert [c.tolist() for c in from_columns.categorical] == [c.tolist() for c in from_frame.categorical]
    assert from_frame.missing.sum() > 0  # the mix reached the missing counts


def test_columns_of_different_lengths_are_refused(profile: ReferenceProfile) -> None:
    columns = {name: np.array(["1"] * 3, dtype=object) for name in INFO.features}
    columns["normal"] = np.array(["1"] * 2, dtype=object)

    with pytest.raises(ValueError, match="differ in length"):
        partial_from_frame(profile, columns)
