"""Seeded synthetic data for any model config: realistic enough to train on, with a switch to inject drift.

The label follows a fixed (seeded) logistic relation to the features, so a trainer can learn it; `drift`
moves the feature distributions (and the relation's baseline) the way a changing customer base would.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.config import Column, ColumnType, ModelConfig

Array = npt.NDArray[Any]


def _numeric(column: Column, rng: np.random.Generator, rows: int, drift: float) -> Array:
    low = column.min if column.min is not None else 0.0
    high = column.max if column.max is not None else low + 100.0
    span = high - low
    # A skewed, bounded distribution (most real quantities: tenure, charges, counts) centred low in range.
    centre = 0.3 + 0.35 * drift
    values = low + span * rng.beta(2.0 * centre / (1 - centre) + 0.5, 2.0, size=rows)
    values = np.clip(values, low, high)
    if column.type is ColumnType.INTEGER:
        return np.floor(values + 0.5).astype(np.int64)
    return values


def _categorical(column: Column, rng: np.random.Generator, rows: int, drift: float) -> Array:
    categories = column.categories or []
    weights = np.linspace(2.0, 1.0, num=len(categories))
    # Drift moves mass towards the last categories.
    weights = weights + drift * np.linspace(0.0, 4.0, num=len(categories))
    return rng.choice(np.array(categories, dtype=object), size=rows, p=weights / weights.sum())


def _standardized(values: Array) -> Array:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def _feature(
    column: Column, rng: np.random.Generator, truth: np.random.Generator, rows: int, drift: float
) -> tuple[Array, Array]:
    """One feature's values and its contribution to the label's logit."""
    if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
        values = _numeric(column, rng, rows, drift)
        return values, truth.normal(0.0, 1.2) * _standardized(values.astype(float))
    if column.type is ColumnType.CATEGORY:
        categories = column.categories or []
        values = _categorical(column, rng, rows, drift)
        effects = dict(zip(categories, truth.normal(0.0, 1.0, size=len(categories)), strict=True))
        return values, np.array([effects[v] for v in values])
    if column.type is ColumnType.BOOLEAN:
        flags = rng.random(rows) < 0.2 + 0.3 * drift
        return flags, truth.normal(0.0, 0.8) * flags
    ids = np.array([f"{column.name}-{i % 50}" for i in rng.integers(0, 10_000, size=rows)], dtype=object)
    return ids, np.zeros(rows)


def _with_nulls(column: Column, values: Array, rng: np.random.Generator) -> Array:
    values = values.astype(float if column.type is ColumnType.FLOAT else object)
    values[rng.random(len(values)) < 0.02] = np.nan if column.type is ColumnType.FLOAT else None
    return values


def _labels(target: Column, logit: Array, rng: np.random.Generator, drift: float) -> Array:
    rows = len(logit)
    if target.type in (ColumnType.FLOAT, ColumnType.STRING):
        return logit + rng.normal(0.0, 0.5, size=rows)
    probability = 1.0 / (1.0 + np.exp(-(logit - 0.8 + drift)))
    labels: Array = (rng.random(rows) < probability).astype(int)
    if target.type is ColumnType.BOOLEAN:
        return labels.astype(bool)
    if target.type is ColumnType.CATEGORY:
        categories = target.categories or ["0", "1"]
        return np.array([categories[int(v) % len(categories)] for v in labels], dtype=object)
    return labels


def generate(
    model: ModelConfig,
    rows: int,
    seed: int = 7,
    drift: float = 0.0,
    shuffle_labels: bool = False,
    label_noise: float = 0.0,
) -> pd.DataFrame:
    """`rows` rows for `model`.

    drift in [0, 1] shifts every feature; label_noise in [0, 1] shuffles that share of the labels among
    themselves (a worse, still learnable dataset); shuffle_labels is label_noise=1 (nothing to learn).
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0.0 <= drift <= 1.0:
        raise ValueError("drift must be between 0 and 1")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError("label_noise must be between 0 and 1")
    # The relation's coefficients depend on the model name only, so every batch shares one ground truth.
    truth = np.random.default_rng(_stable_seed(model.name))
    rng = np.random.default_rng(seed)
    frame: dict[str, Array] = {}
    logit = np.zeros(rows)
    for column in model.data.features:
        frame[column.name], contribution = _feature(column, rng, truth, rows, drift)
        logit += contribution
    for column in model.data.features:
        if column.nullable and column.type is not ColumnType.BOOLEAN:
            frame[column.name] = _with_nulls(column, frame[column.name], rng)
    labels = _labels(model.data.column(model.data.target), logit, rng, drift)
    noisy = np.flatnonzero(rng.random(rows) < (1.0 if shuffle_labels else label_noise))
    labels[noisy] = labels[rng.permutation(noisy)]
    frame[model.data.target] = labels
    return pd.DataFrame(frame, columns=[c.name for c in model.data.columns])


def _stable_seed(name: str) -> int:
    # hash() is salted per process; a dataset generator must give the same truth in every process.
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little") % (2**32)
