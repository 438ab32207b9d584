"""Live-quality partials against scikit-learn on random data: exact metrics, the AUC bound, merging,
slices, bytes, and the inputs they refuse."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
)

from headrace.quality.metrics import (
    MAX_SLICE_VALUES,
    MISSING_SLICE,
    OTHER_SLICE,
    QualityInputError,
    QualityPartial,
)
from headrace.training.gate import direction

RNG = np.random.default_rng(16)


def _binary(n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = (RNG.random(n) < 0.35).astype(np.float64)
    scores = np.clip(RNG.beta(2, 4, n) + 0.25 * labels, 0.0, 1.0)
    return scores, labels


def _one(objective: str, scores: np.ndarray, labels: np.ndarray, classes: int = 2) -> QualityPartial:
    partial = QualityPartial.empty(objective, classes, [])
    partial.add(scores, labels, {})
    return partial


def test_binary_metrics_match_scikit_learn_and_auc_lies_within_its_bound() -> None:
    scores, labels = _binary(20_000)
    result = _one("binary:logistic", scores, labels).result()
    exact = roc_auc_score(labels, scores)
    assert result.rows == 20_000
    assert abs(result.metrics["auc"] - exact) <= result.error_bounds["auc"]
    assert 0 < result.error_bounds["auc"] < 1e-3
    assert result.metrics["logloss"] == pytest.approx(log_loss(labels, scores), rel=1e-9)
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(labels, scores > 0.5), rel=1e-12)
    assert result.metrics["error"] == pytest.approx(1 - result.metrics["accuracy"])


def test_auc_bound_covers_heavy_ties() -> None:
    labels = (RNG.random(5_000) < 0.5).astype(np.float64)
    scores = np.round(RNG.random(5_000) * 0.5 + 0.3 * labels, 2)  # many exact ties
    result = _one("binary:logistic", scores, labels).result()
    assert abs(result.metrics["auc"] - roc_auc_score(labels, scores)) <= result.error_bounds["auc"] + 1e-15


def test_regression_metrics_match_scikit_learn() -> None:
    labels = RNG.normal(10, 3, 10_000)
    predictions = labels + RNG.normal(0, 1, 10_000)
    result = _one("reg:squarederror", predictions, labels).result()
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(labels, predictions)), rel=1e-9)
    assert result.metrics["mae"] == pytest.approx(mean_absolute_error(labels, predictions), rel=1e-9)
    assert result.error_bounds == {}


def test_multiclass_metrics_match_scikit_learn() -> None:
    labels = RNG.integers(0, 4, 8_000).astype(np.float64)
    scores = RNG.dirichlet(np.ones(4), 8_000)
    result = _one("multi:softprob", scores, labels, classes=4).result()
    assert result.metrics["mlogloss"] == pytest.approx(log_loss(labels, scores, labels=range(4)), rel=1e-9)
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(labels, scores.argmax(axis=1)))


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ("binary:logistic", ["auc", "logloss", "accuracy", "error"]),
        ("reg:squarederror", ["rmse", "mae"]),
        ("multi:softprob", ["mlogloss", "accuracy", "merror"]),
    ],
)
def test_metric_names_are_the_gates_and_the_trainers(objective: str, expected: list[str]) -> None:
    result = QualityPartial.empty(objective, 3, []).result()
    assert list(result.metrics) == expected
    for name in expected:
        direction(name)  # raises for a name the gate does not know


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_merging_k_partials_equals_one_partial(parts: int) -> None:
    scores, labels = _binary(9_000)
    region = RNG.choice(np.array(["north", "south", None], dtype=object), 9_000)
    whole = QualityPartial.empty("binary:logistic", 2, ["region"])
    whole.add(scores, labels, {"region": region})
    pieces = []
    for chunk in np.array_split(np.arange(9_000), parts):
        piece = QualityPartial.empty("binary:logistic", 2, ["region"])
        piece.add(scores[chunk], labels[chunk], {"region": region[chunk]})
        pieces.append(piece)
    left = pieces[0]
    for piece in pieces[1:]:
        left = left.merge(piece)
    right = pieces[-1]
    for piece in reversed(pieces[:-1]):
        right = piece.merge(right)
    expected = whole.result()
    for merged in (left.result(), right.result()):
        assert merged.rows == expected.rows
        assert merged.metrics == pytest.approx(expected.metrics, rel=1e-12)
        assert merged.slices.keys() == expected.slices.keys()
        assert {v: s.rows for v, s in merged.slices["region"].items()} == {
            v: s.rows for v, s in expected.slices["region"].items()
        }


def test_slices_match_the_rows_of_each_value_and_name_missing_values() -> None:
    scores, labels = _binary(6_000)
    region = RNG.choice(np.array(["north", "south", None, float("nan")], dtype=object), 6_000)
    partial = QualityPartial.empty("binary:logistic", 2, ["region"])
    partial.add(scores, labels, {"region": region})
    slices = partial.result().slices["region"]
    assert list(slices) == ["north", "south", MISSING_SLICE]
    mask = region == "north"
    north = slices["north"]
    assert north.rows == int(mask.sum())
    assert abs(north.metrics["auc"] - roc_auc_score(labels[mask], scores[mask])) <= north.error_bounds["auc"]
    assert north.metrics["logloss"] == pytest.approx(log_loss(labels[mask], scores[mask]), rel=1e-9)


def test_unbounded_slice_values_are_capped_and_pooled_the_same_way_in_any_split() -> None:
    n = 4_000
    scores, labels = _binary(n)
    users = np.array([f"user-{i:05d}" for i in RNG.integers(0, 900, n)], dtype=object)
    whole = QualityPartial.empty("binary:logistic", 2, ["user"])
    whole.add(scores, labels, {"user": users})
    halves = [QualityPartial.empty("binary:logistic", 2, ["user"]) for _ in range(2)]
    order = np.argsort(users)  # each half sees different values: the worst case for a cap
    for half, chunk in zip(halves, np.array_split(order, 2), strict=True):
        half.add(scores[chunk], labels[chunk], {"user": users[chunk]})
    merged = halves[1].merge(halves[0]).result().slices["user"]
    expected = whole.result().slices["user"]
    assert len(expected) == MAX_SLICE_VALUES + 1
    assert list(expected)[:MAX_SLICE_VALUES] == sorted(set(users.tolist()))[:MAX_SLICE_VALUES]
    assert {v: s.rows for v, s in merged.items()} == {v: s.rows for v, s in expected.items()}
    assert sum(s.rows for s in expected.values()) == n
    assert expected[OTHER_SLICE].rows > 0


def test_bytes_round_trip_keeps_every_statistic() -> None:
    scores, labels = _binary(3_000)
    partial = QualityPartial.empty("binary:logistic", 2, ["region"])
    partial.add(scores, labels, {"region": RNG.choice(np.array(["a", "b"], dtype=object), 3_000)})
    restored = QualityPartial.from_bytes(partial.to_bytes())
    assert restored.result() == partial.result()
    assert restored.merge(partial).rows == 6_000


def test_bytes_that_are_not_a_partial_are_refused() -> None:
    with pytest.raises(QualityInputError, match="partial bytes"):
        QualityPartial.from_bytes(b"not an npz")


def test_empty_partials_report_no_metrics_and_merge_as_identity() -> None:
    empty = QualityPartial.empty("binary:logistic", 2, ["region"])
    assert empty.result().rows == 0
    assert set(empty.result().metrics.values()) == {None}
    scores, labels = _binary(500)
    full = QualityPartial.empty("binary:logistic", 2, ["region"])
    full.add(scores, labels, {"region": np.full(500, "a", dtype=object)})
    assert empty.merge(full).result() == full.result()
    assert QualityPartial.from_bytes(empty.to_bytes()).result() == empty.result()


def test_one_class_labels_have_no_auc() -> None:
    result = _one("binary:logistic", RNG.random(100), np.ones(100)).result()
    assert result.metrics["auc"] is None
    assert "auc" not in result.error_bounds
    assert result.metrics["logloss"] is not None


@pytest.mark.parametrize(
    ("objective", "scores", "labels", "message"),
    [
        ("binary:logistic", [0.2, float("nan")], [0, 1], "scores: 1 value.*row 1"),
        ("binary:logistic", [0.2, float("inf")], [0, 1], "not finite"),
        ("binary:logistic", [0.2, 1.5], [0, 1], r"probabilities in \[0, 1\]"),
        ("binary:logistic", [0.2, 0.4], [0, 2], "not 0 or 1.*row 1"),
        ("reg:squarederror", [1.0, 2.0], [1.0, float("nan")], "labels.*not finite"),
        ("reg:squarederror", [1.0], [1.0, 2.0], "1 rows but labels 2"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_added(
    objective: str, scores: list[float], labels: list[float], message: str
) -> None:
    partial = QualityPartial.empty(objective, 2, [])
    with pytest.raises(QualityInputError, match=message):
        partial.add(scores, labels, {})
    assert partial.rows == 0


def test_multiclass_labels_must_be_class_indexes() -> None:
    partial = QualityPartial.empty("multi:softprob", 3, [])
    with pytest.raises(QualityInputError, match=r"class index 0..2.*row 1"):
        partial.add(RNG.dirichlet(np.ones(3), 2), [0, 3], {})


def test_partials_of_different_shapes_do_not_merge() -> None:
    with pytest.raises(QualityInputError, match="cannot merge"):
        QualityPartial.empty("binary:logistic", 2, []).merge(QualityPartial.empty("reg:squarederror", 0, []))


def test_coded_slices_give_the_same_statistics_as_values() -> None:
    scores, labels = _binary(2_000)
    vocabulary = ["north", "south", None, float("nan"), 1, "1"]
    codes = RNG.integers(0, len(vocabulary), 2_000)
    region = np.array(vocabulary, dtype=object)[codes]
    by_value = QualityPartial.empty("binary:logistic", 2, ["region"])
    by_value.add(scores, labels, {"region": region})
    by_code = QualityPartial.empty("binary:logistic", 2, ["region"])
    by_code.add_coded(scores, labels, {"region": (vocabulary, codes)})
    assert by_code.result() == by_value.result()
    assert list(by_code.result().slices["region"]) == ["1", "north", "south", MISSING_SLICE]
    with pytest.raises(QualityInputError, match=r"codes must be integers 0..5"):
        by_code.add_coded(scores, labels, {"region": (vocabulary, np.full(2_000, 6))})
    assert by_code.rows == 2_000


def test_binary_log_loss_clips_certain_scores_as_the_trainer_does() -> None:
    # Scores of exactly 0 and 1, right and wrong: the trainer's loss clips to [1e-15, 1 - 1e-15] before the
    # log of the true class's probability (containers/train/trainer/evaluate.py).
    scores, labels = np.array([0.0, 1.0, 0.0, 1.0, 0.3]), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    p = np.clip(scores, 1e-15, 1 - 1e-15)
    expected = float(np.mean(-np.log(np.where(labels == 1.0, p, 1.0 - p))))
    result = _one("binary:logistic", scores, labels).result()
    assert result.metrics["logloss"] == expected
    assert result.metrics["accuracy"] == 0.4  # rows 0 and 1 right; 0.3 is not > 0.5
