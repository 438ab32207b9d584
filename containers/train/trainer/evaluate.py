"""Held-out metrics on the test channel, overall and per slice, computed here with numpy.

Binary: auc (rank-based, exact with ties), logloss, accuracy (threshold 0.5). Regression: rmse, mae.
Multi-class: mlogloss, accuracy. The gate's metric (`eval_metric`) is always among them. A slice with
fewer than MIN_SLICE_ROWS rows, or (for a classifier) a single label class, reports its metric as null:
too little evidence to gate on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.profile import category_values

Array = npt.NDArray[Any]
Metric = Callable[[Array, Array], float | None]

MIN_SLICE_ROWS: Final = 20
MISSING_SLICE: Final = "__missing__"
_EPS: Final = 1e-15


def _average_ranks(values: Array) -> Array:
    """1-based ranks, ties sharing their average rank (scipy.stats.rankdata's 'average')."""
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def auc(labels: Array, scores: Array) -> float | None:
    """ROC AUC by the Mann-Whitney U statistic; None when one class is absent."""
    positive = labels == 1
    n_pos = int(positive.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(labels: Array, probabilities: Array) -> float:
    p = np.clip(probabilities, _EPS, 1 - _EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def accuracy(labels: Array, probabilities: Array) -> float:
    return float(np.mean((probabilities > 0.5) == (labels == 1)))


def error(labels: Array, probabilities: Array) -> float:
    return 1.0 - accuracy(labels, probabilities)


def rmse(labels: Array, predictions: Array) -> float:
    return float(np.sqrt(np.mean((predictions - labels) ** 2)))


def mae(labels: Array, predictions: Array) -> float:
    return float(np.mean(np.abs(predictions - labels)))


def mlogloss(labels: Array, probabilities: Array) -> float:
    picked = probabilities[np.arange(len(labels)), labels.astype(np.int64)]
    return float(-np.mean(np.log(np.clip(picked, _EPS, 1.0))))


def multi_accuracy(labels: Array, probabilities: Array) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def merror(labels: Array, probabilities: Array) -> float:
    return 1.0 - multi_accuracy(labels, probabilities)


METRICS: Final[dict[str, dict[str, Metric]]] = {
    "binary:logistic": {"auc": auc, "logloss": logloss, "accuracy": accuracy, "error": error},
    "reg:squarederror": {"rmse": rmse, "mae": mae},
    "multi:softprob": {"mlogloss": mlogloss, "accuracy": multi_accuracy, "merror": merror},
}
# Reported for every run of an objective; the gate's metric is added when it is another one.
REPORTED: Final[dict[str, tuple[str, ...]]] = {
    "binary:logistic": ("auc", "logloss", "accuracy"),
    "reg:squarederror": ("rmse", "mae"),
    "multi:softprob": ("mlogloss", "accuracy"),
}


def score(objective: str, metric: str, labels: Array, predictions: Array) -> float | None:
    """One metric of the predictions; None when it cannot be computed (one class, a non-finite value)."""
    value = METRICS[objective][metric](labels, predictions)
    return None if value is None or not np.isfinite(value) else value


def _slice_metric(objective: str, metric: str, labels: Array, predictions: Array) -> float | None:
    if len(labels) < MIN_SLICE_ROWS:
        return None
    if objective != "reg:squarederror" and len(np.unique(labels)) < 2:
        return None
    return score(objective, metric, labels, predictions)


def _slice_keys(values: pd.Series[Any], categories: list[str] | None) -> tuple[Array, list[str]]:
    labels = category_values(values).fillna(MISSING_SLICE).to_numpy(dtype=object)
    present = set(labels.tolist())
    ordered = [c for c in categories or [] if c in present]
    ordered += sorted(present - set(ordered) - {MISSING_SLICE})
    if MISSING_SLICE in present:
        ordered.append(MISSING_SLICE)
    return labels, ordered


def evaluation(
    objective: str,
    metric: str,
    labels: Array,
    predictions: Array,
    slices: Mapping[str, pd.Series[Any]],
    categorical: Mapping[str, list[str]],
) -> dict[str, Any]:
    """`metrics` over all test rows, `slices` (column -> value -> {metric, rows}): evaluation.json's."""
    names = list(REPORTED[objective]) + ([metric] if metric not in REPORTED[objective] else [])
    metrics: dict[str, Any] = {name: score(objective, name, labels, predictions) for name in names}
    metrics["rows"] = len(labels)
    per_column: dict[str, dict[str, dict[str, Any]]] = {}
    for column, values in slices.items():
        keys, ordered = _slice_keys(values, categorical.get(column))
        per_column[column] = {}
        for key in ordered:
            mask = keys == key
            per_column[column][key] = {
                metric: _slice_metric(objective, metric, labels[mask], predictions[mask]),
                "rows": int(mask.sum()),
            }
    return {"metric": metric, "metrics": metrics, "slices": per_column}
