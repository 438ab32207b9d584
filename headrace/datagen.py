"""Seeded synthetic data for any model config: realistic enough to train on, with switches to inject drift.

The label follows a fixed (seeded) logistic relation to the features, `LabelRule`, so a trainer can learn it;
`drift` moves the feature distributions (and the relation's baseline) the way a changing customer base would.
`concept_drift` leaves the features alone and changes the relation itself: the feature with the strongest
effect turns its effect around (fully at 1), so inputs look the same and the answers go wrong.

`label_captured` applies the same rule to the features of captured requests (SageMaker's data-capture
records) and `ground_truth_jsonl` / `ground_truth_csv` write those labels in the ground-truth formats the
ingest accepts under `<model>/ground-truth/incoming/`, keyed by each request's join key.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.config import Column, ColumnType, ModelConfig
from headrace.monitoring.capture import request_rows

Array = npt.NDArray[Any]
# A feature's effect on the label's logit: a coefficient on the standardized value (numbers) or on the flag
# (booleans), or one effect per category.
Effect = float | dict[str, float]
# Captured text that means true for a boolean feature (pandas writes True, JSON true, some callers 1).
_TRUE_TEXT = {"true", "1", "1.0", "yes"}


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


def _values(column: Column, rng: np.random.Generator, rows: int, drift: float) -> Array:
    """One feature's values."""
    if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
        return _numeric(column, rng, rows, drift)
    if column.type is ColumnType.CATEGORY:
        return _categorical(column, rng, rows, drift)
    if column.type is ColumnType.BOOLEAN:
        return rng.random(rows) < 0.2 + 0.3 * drift
    return np.array([f"{column.name}-{i % 50}" for i in rng.integers(0, 10_000, size=rows)], dtype=object)


def _standardized(values: Array) -> Array:
    """Centred and scaled over the batch; a missing value (NaN) sits at the centre (no effect)."""
    missing = np.isnan(values)
    if missing.any():
        present = values[~missing]
        spread = present.std() if len(present) else 0.0
        scaled = (values - present.mean()) / spread if spread > 0 else np.zeros_like(values)
        return np.where(missing, 0.0, scaled)
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def _flags(values: Array) -> Array:
    if values.dtype == bool:
        return values
    return np.array(
        [bool(v) if isinstance(v, bool | np.bool_) else str(v).strip().lower() in _TRUE_TEXT for v in values],
        dtype=bool,
    )


@dataclass(frozen=True)
class LabelRule:
    """The relation between a model's features and its label: one copy, for generated rows and captured ones.

    The effects depend on the model's name only, so every batch (and every process) shares one ground truth;
    `concept_drift` in [0, 1] turns the strongest feature's effect around (1: fully reversed).
    """

    model: ModelConfig
    effects: dict[str, Effect]
    concept_drift: float = 0.0

    @classmethod
    def of(cls, model: ModelConfig, concept_drift: float = 0.0) -> LabelRule:
        if not 0.0 <= concept_drift <= 1.0:
            raise ValueError("concept_drift must be between 0 and 1")
        truth = np.random.default_rng(_stable_seed(model.name))
        effects: dict[str, Effect] = {}
        for column in model.data.features:
            if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
                effects[column.name] = float(truth.normal(0.0, 1.2))
            elif column.type is ColumnType.CATEGORY:
                categories = column.categories or []
                drawn = truth.normal(0.0, 1.0, size=len(categories))
                effects[column.name] = dict(zip(categories, (float(e) for e in drawn), strict=True))
            elif column.type is ColumnType.BOOLEAN:
                effects[column.name] = float(truth.normal(0.0, 0.8))
            # identifiers and free text carry no signal
        if concept_drift and effects:
            strongest = max(effects, key=lambda name: _strength(effects[name]))
            effects[strongest] = _turned(effects[strongest], 1.0 - 2.0 * concept_drift)
        return cls(model, effects, concept_drift)

    def logit(self, features: pd.DataFrame) -> Array:
        """The label's logit for each row of `features` (the model's feature columns, as generated or as
        captured text); numbers are standardized over the batch, a missing or unknown value has no effect."""
        logit = np.zeros(len(features))
        for column in self.model.data.features:
            effect = self.effects.get(column.name)
            if effect is None:
                continue
            values = features[column.name].to_numpy()
            if isinstance(effect, dict):
                texts = (v.strip() if isinstance(v, str) else None for v in values)
                logit += np.array([effect.get(t, 0.0) if t is not None else 0.0 for t in texts])
            elif column.type is ColumnType.BOOLEAN:
                logit += effect * _flags(values)
            else:
                numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
                logit += effect * _standardized(numbers)
        return logit


def _strength(effect: Effect) -> float:
    """How far a feature moves the logit: its coefficient's size, or the spread of its category effects."""
    return float(np.std(list(effect.values()))) if isinstance(effect, dict) else abs(effect)


def _turned(effect: Effect, factor: float) -> Effect:
    """`effect` scaled by `factor` around its centre (the categories' mean effect stays where it was)."""
    if isinstance(effect, dict):
        centre = float(np.mean(list(effect.values())))
        return {k: centre + (v - centre) * factor for k, v in effect.items()}
    return effect * factor


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
    concept_drift: float = 0.0,
) -> pd.DataFrame:
    """`rows` rows for `model`.

    drift in [0, 1] shifts every feature; label_noise in [0, 1] shuffles that share of the labels among
    themselves (a worse, still learnable dataset); shuffle_labels is label_noise=1 (nothing to learn);
    concept_drift in [0, 1] changes the label rule and nothing else (same seed, same features).
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0.0 <= drift <= 1.0:
        raise ValueError("drift must be between 0 and 1")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError("label_noise must be between 0 and 1")
    rule = LabelRule.of(model, concept_drift)
    rng = np.random.default_rng(seed)
    frame: dict[str, Array] = {c.name: _values(c, rng, rows, drift) for c in model.data.features}
    # The label follows the true values, before some go missing.
    logit = rule.logit(pd.DataFrame(frame))
    for column in model.data.features:
        if column.nullable and column.type is not ColumnType.BOOLEAN:
            frame[column.name] = _with_nulls(column, frame[column.name], rng)
    labels = _labels(model.data.column(model.data.target), logit, rng, drift)
    noisy = np.flatnonzero(rng.random(rows) < (1.0 if shuffle_labels else label_noise))
    labels[noisy] = labels[rng.permutation(noisy)]
    frame[model.data.target] = labels
    return pd.DataFrame(frame, columns=[c.name for c in model.data.columns])


@dataclass(frozen=True)
class CapturedLabels:
    """A label for each row of captured requests: `keys[i]` is its request's join key, `rows[i]` the row
    within the request (from 0), `labels[i]` the target's own value."""

    keys: list[str]
    rows: list[int]
    labels: list[Any]
    inferences: int  # capture records read
    skipped: int  # records with no rows of the model's width (not a capture record, another model's rows)


def label_captured(
    model: ModelConfig, lines: Iterable[bytes | str], *, concept_drift: float = 0.0, seed: int = 7
) -> CapturedLabels:
    """Labels drawn from `LabelRule` (with `concept_drift`) for the features of captured requests, one per
    row, keyed by the request's join key: `eventMetadata.inferenceId` when the caller gave one, else
    `eventMetadata.eventId` (SageMaker Model Quality Monitor's convention,
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html)."""
    features = [c.name for c in model.data.features]
    keys: list[str] = []
    indexes: list[int] = []
    rows: list[list[Any]] = []
    inferences = skipped = 0
    for line in lines:
        if not line or not line.strip():
            continue
        inferences += 1
        try:
            record = json.loads(line)
            metadata = record["eventMetadata"]
            key = str(metadata.get("inferenceId") or metadata["eventId"])
            found = request_rows(record["captureData"]["endpointInput"], features)
        except (ValueError, KeyError, TypeError, AttributeError, csv.Error):
            skipped += 1
            continue
        if not found or any(len(row) != len(features) for row in found):
            skipped += 1
            continue
        keys.extend([key] * len(found))
        indexes.extend(range(len(found)))
        rows.extend(found)
    if not rows:
        return CapturedLabels([], [], [], inferences, skipped)
    frame = pd.DataFrame(rows, columns=features, dtype=object)
    logit = LabelRule.of(model, concept_drift).logit(frame)
    labels = _labels(model.data.column(model.data.target), logit, np.random.default_rng(seed), 0.0)
    return CapturedLabels(keys, indexes, [_plain(v) for v in labels], inferences, skipped)


def ground_truth_jsonl(labels: CapturedLabels) -> str:
    """SageMaker's ground-truth JSON lines, one record per request: its labels in row order, comma-separated
    (CSV encoding), or as a JSON list when a label holds a comma or a quote."""
    by_key: dict[str, list[tuple[int, Any]]] = {}
    for key, row, label in zip(labels.keys, labels.rows, labels.labels, strict=True):
        by_key.setdefault(key, []).append((row, label))
    out = io.StringIO()
    for key, found in by_key.items():
        texts = [_label_text(label) for _, label in sorted(found, key=lambda item: item[0])]
        if any("," in t or '"' in t for t in texts):
            truth = {"data": json.dumps(texts), "encoding": "JSON"}
        else:
            truth = {"data": ",".join(texts), "encoding": "CSV"}
        record = {"groundTruthData": truth, "eventMetadata": {"eventId": key}, "eventVersion": "0"}
        out.write(json.dumps(record) + "\n")
    return out.getvalue()


def ground_truth_csv(labels: CapturedLabels) -> str:
    """The ground-truth CSV: header `inference_id,row,label`, one line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["inference_id", "row", "label"])
    for key, row, label in zip(labels.keys, labels.rows, labels.labels, strict=True):
        writer.writerow([key, row, _label_text(label)])
    return out.getvalue()


def _plain(value: Any) -> Any:
    """numpy scalars as the Python values they hold."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _label_text(label: Any) -> str:
    if isinstance(label, bool):
        return "true" if label else "false"
    return repr(label) if isinstance(label, float) else str(label)


def _stable_seed(name: str) -> int:
    # hash() is salted per process; a dataset generator must give the same truth in every process.
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little") % (2**32)
