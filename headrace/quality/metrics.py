"""Live-quality metrics as mergeable partials: each Distributed Map item adds its joined rows to a
`QualityPartial`, the finish merges them and reads `QualityMetrics`. numpy only (the partial Lambda's job).

What is kept, per group (the whole window, and each slice value):
- exact sums and counts: rows, the loss sum and the correct-prediction count (binary, multi-class), the
  squared- and absolute-error sums (regression). Merging adds them, so every metric but AUC is exact (up to
  float64 rounding of the sums) however the rows are split.
- binary AUC: a histogram of scores per label class on fixed bins over [0, 1] (AUC_BINS for the whole
  window, SLICE_AUC_BINS per slice value). Pairs in different bins are ordered exactly; a positive/negative
  pair in the same bin counts one half, as a tie does. So |approx - exact| <= (1/2) sum_b pos_b neg_b / (P N),
  the bound `error_bounds["auc"]` reports (exact ties, e.g. repeated scores, fall inside it too).
Metric names and definitions are the trainer's evaluation.json's (containers/train/trainer/evaluate.py):
accuracy at a score > 0.5, log losses with probabilities clipped to [1e-15, 1 - 1e-15], and the gate's names
(headrace/training/gate.py `direction()`): binary auc, logloss, accuracy, error; regression rmse, mae;
multi-class mlogloss, accuracy, merror.

Slices: values are text; None and NaN count as MISSING_SLICE (the trainer's name). A column keeps at most
MAX_SLICE_VALUES distinct values: the smallest in sorted order, the rest pooled under OTHER_SLICE. The rule
depends on the set of values only, so merging stays exact and associative for any split of the rows (a value
pooled in one partial is pooled in the merged result too), and memory is bounded whatever the cardinality.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

OBJECTIVES: Final = ("binary:logistic", "reg:squarederror", "multi:softprob")
# What result() reports per objective, in order; every name is one the gate knows.
METRIC_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "binary:logistic": ("auc", "logloss", "accuracy", "error"),
    "reg:squarederror": ("rmse", "mae"),
    "multi:softprob": ("mlogloss", "accuracy", "merror"),
}
AUC_BINS: Final = 2**16
SLICE_AUC_BINS: Final = 2**10
MAX_SLICE_VALUES: Final = 50
MISSING_SLICE: Final = "__missing__"
OTHER_SLICE: Final = "(other)"
_EPS: Final = 1e-15
_FORMAT: Final = 1


class QualityInputError(ValueError):
    """Scores, labels, slices or serialized bytes a partial cannot take; says what and where."""


class SliceQuality(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    metrics: dict[str, float | None]
    error_bounds: dict[str, float]


class QualityMetrics(BaseModel):
    """The objective's metrics over the labelled rows (None where undefined: no rows, or AUC with one class),
    the bounds of the approximate ones, and the same per slice column and value."""

    model_config = ConfigDict(frozen=True)

    objective: str
    rows: int
    metrics: dict[str, float | None]
    error_bounds: dict[str, float]
    slices: dict[str, dict[str, SliceQuality]]


@dataclass
class _Groups:
    """Sufficient statistics of V groups: rows (V,), sums (V, 2), score histograms (V, 2, bins) (binary)."""

    rows: IntArray
    sums: FloatArray
    hist: IntArray

    @classmethod
    def zeros(cls, groups: int, bins: int) -> _Groups:
        return cls(
            rows=np.zeros(groups, np.int64),
            sums=np.zeros((groups, 2), np.float64),
            hist=np.zeros((groups, 2, bins), np.int64),
        )


@dataclass
class _Rows:
    """One add()'s rows, reduced to what the statistics need."""

    loss: FloatArray  # loss (classifiers) or squared error (regression)
    second: FloatArray  # correct 0/1 (classifiers) or absolute error (regression)
    flat: IntArray | None  # binary: label * AUC_BINS + the score's AUC_BINS bin (one histogram index)


def _check_finite(name: str, values: FloatArray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise QualityInputError(
            f"{name}: {int(bad.sum())} value(s) are not finite numbers, the first at row {int(where[0])} "
            f"({values[tuple(where)]!r})"
        )


def _check_probabilities(scores: FloatArray) -> None:
    # One pass on the way in (NaN fails both comparisons); the slower checks run only to say what failed.
    if not ((scores >= 0.0) & (scores <= 1.0)).all():
        _check_finite("scores", scores)
        bad = (scores < 0.0) | (scores > 1.0)
        where = np.argwhere(bad)[0]
        raise QualityInputError(
            f"scores: {int(bad.sum())} value(s) are not probabilities in [0, 1], the first at row "
            f"{int(where[0])} ({scores[tuple(where)]!r})"
        )


def _refuse_labels(labels: FloatArray, is_class: BoolArray, what: str) -> None:
    if not is_class.all():
        first = int(np.argmin(is_class))
        raise QualityInputError(
            f"labels: {int((~is_class).sum())} value(s) are not {what}, the first at row {first} "
            f"({labels[first]!r})"
        )


def _as_float(name: str, values: Any, ndim: int) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QualityInputError(f"{name}: not numbers ({exc})") from exc
    if array.ndim != ndim:
        raise QualityInputError(f"{name}: expected {ndim} dimension(s), got shape {array.shape}")
    return array


def _binary_rows(scores: FloatArray, labels: FloatArray) -> _Rows:
    _check_probabilities(scores)
    positive = labels == 1.0
    _refuse_labels(labels, positive | (labels == 0.0), "0 or 1")
    # The trainer's log loss: probabilities clipped, then the log of the true class's probability.
    # |p - (1 - label)| is p for a positive and 1 - p for a negative, bit for bit (IEEE subtraction is exact
    # up to sign), without np.where's slower select.
    p = np.clip(scores, _EPS, 1 - _EPS)
    loss = -np.log(np.abs(p - (1.0 - labels)))
    correct = ((scores > 0.5) == positive).astype(np.float64)
    flat = np.minimum((scores * AUC_BINS).astype(np.int64), AUC_BINS - 1)
    flat += positive * AUC_BINS  # arithmetic, not flat[positive] += ...: a masked update is 10x slower
    return _Rows(loss, correct, flat)


def _regression_rows(scores: FloatArray, labels: FloatArray) -> _Rows:
    _check_finite("scores", scores)
    _check_finite("labels", labels)
    diff = scores - labels
    return _Rows(diff * diff, np.abs(diff), None)


def _multi_rows(scores: FloatArray, labels: FloatArray, classes: int) -> _Rows:
    if scores.shape[1] != classes:
        raise QualityInputError(f"scores: expected {classes} columns (classes), got {scores.shape[1]}")
    _check_probabilities(scores)
    is_class = (labels == np.round(labels)) & (labels >= 0) & (labels < classes)
    _refuse_labels(labels, is_class, f"a class index 0..{classes - 1}")
    index = labels.astype(np.int64)
    picked = scores[np.arange(len(index)), index]
    loss = -np.log(np.clip(picked, _EPS, 1.0))
    correct = (np.argmax(scores, axis=1) == index).astype(np.float64)
    return _Rows(loss, correct, None)


def _text(value: Any) -> str:
    # None and NaN (the only value not equal to itself) are missing; everything else is its text.
    return MISSING_SLICE if value is None or value != value else str(value)


def _coded(column: str, values: Any, rows: int) -> tuple[list[Any], npt.NDArray[np.intp]]:
    """A slice column as (distinct values, each row's position among them): one pass in C (a dict's hashing
    for Python objects, a sort for numpy's own types), no per-row text."""
    array = np.asarray(values) if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.shape != (rows,):
        raise QualityInputError(f"slices[{column!r}]: expected {rows} values, got shape {array.shape}")
    if array.dtype.kind != "O":
        distinct, codes = np.unique(array, return_inverse=True)
        return distinct.tolist(), codes
    items = array.tolist()
    try:
        position = {value: i for i, value in enumerate(dict.fromkeys(items))}
    except TypeError as exc:
        raise QualityInputError(f"slices[{column!r}]: values must be text, numbers or None ({exc})") from exc
    return list(position), np.fromiter(map(position.__getitem__, items), np.intp, rows)


def _checked_codes(
    column: str, values: Sequence[Any], codes: Any, rows: int
) -> tuple[list[str], npt.NDArray[np.intp]]:
    """A coded column as (its distinct texts, sorted, each row's position among them): values that read as
    one text (1 and "1", None and NaN) become one group."""
    array = np.asarray(codes)
    if array.shape != (rows,):
        raise QualityInputError(f"slices[{column!r}]: expected {rows} codes, got shape {array.shape}")
    if array.size and (
        not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() >= len(values)
    ):
        raise QualityInputError(
            f"slices[{column!r}]: codes must be integers 0..{len(values) - 1}, positions among its "
            f"{len(values)} values"
        )
    present, inverse = np.unique(np.array([_text(v) for v in values], dtype=np.str_), return_inverse=True)
    return present.tolist(), inverse.astype(np.intp)[array]


def _capped(values: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The kept labels in their order (regular values sorted, then MISSING, then OTHER if used) and where each
    input value goes."""
    regular = sorted(set(values) - {MISSING_SLICE, OTHER_SLICE})
    kept = regular[:MAX_SLICE_VALUES]
    target = {value: value for value in kept}
    target |= {value: OTHER_SLICE for value in regular[MAX_SLICE_VALUES:]}
    if MISSING_SLICE in values:
        kept.append(MISSING_SLICE)
        target[MISSING_SLICE] = MISSING_SLICE
    if OTHER_SLICE in values or len(regular) > MAX_SLICE_VALUES:
        kept.append(OTHER_SLICE)
        target[OTHER_SLICE] = OTHER_SLICE
    return kept, target


def _regroup(groups: _Groups, labels: Sequence[str], kept: list[str], target: Mapping[str, str]) -> _Groups:
    """Statistics of `labels` moved onto `kept` (several labels may pool into one)."""
    out = _Groups.zeros(len(kept), groups.hist.shape[2])
    position = {label: i for i, label in enumerate(kept)}
    index = np.array([position[target[label]] for label in labels], dtype=np.int64)
    np.add.at(out.rows, index, groups.rows)
    np.add.at(out.sums, index, groups.sums)
    np.add.at(out.hist, index, groups.hist)
    return out


@dataclass
class _SliceColumn:
    values: list[str]
    groups: _Groups

    def merged(self, other: _SliceColumn) -> _SliceColumn:
        union = self.values + [v for v in other.values if v not in set(self.values)]
        kept, target = _capped(union)
        first = _regroup(self.groups, self.values, kept, target)
        second = _regroup(other.groups, other.values, kept, target)
        return _SliceColumn(kept, _sum(first, second))


def _sum(a: _Groups, b: _Groups) -> _Groups:
    return _Groups(a.rows + b.rows, a.sums + b.sums, a.hist + b.hist)


def _grouped(rows: _Rows, codes: npt.NDArray[np.intp], groups: int, bins: int) -> _Groups:
    out = _Groups.zeros(groups, bins)
    out.rows = np.bincount(codes, minlength=groups).astype(np.int64)
    out.sums[:, 0] = np.bincount(codes, weights=rows.loss, minlength=groups)
    out.sums[:, 1] = np.bincount(codes, weights=rows.second, minlength=groups)
    if rows.flat is not None:
        # AUC_BINS is a multiple of bins, so flat // ratio = label * bins + the coarse bin.
        index = codes * (2 * bins) + rows.flat // (AUC_BINS // bins)
        out.hist = np.bincount(index, minlength=groups * 2 * bins).reshape(groups, 2, bins).astype(np.int64)
    return out


def _whole(rows: _Rows) -> _Groups:
    """The statistics of all the rows as one group: plain sums, no group codes."""
    out = _Groups.zeros(1, 0 if rows.flat is None else AUC_BINS)
    out.rows[0] = len(rows.loss)
    out.sums[0] = (rows.loss.sum(), rows.second.sum())
    if rows.flat is not None:
        out.hist[0] = np.bincount(rows.flat, minlength=2 * AUC_BINS).reshape(2, AUC_BINS)
    return out


def _auc(hist: IntArray) -> tuple[float | None, float | None]:
    negatives, positives = hist[0], hist[1]
    n_neg, n_pos = int(negatives.sum()), int(positives.sum())
    if n_pos == 0 or n_neg == 0:
        return None, None
    below = np.cumsum(negatives) - negatives
    # Python ints: exact whatever the row count.
    ordered = int((positives * below).sum())
    within = int((positives * negatives).sum())
    pairs = n_pos * n_neg
    return (2 * ordered + within) / (2 * pairs), within / (2 * pairs)


def _metrics(objective: str, rows: int, sums: FloatArray, hist: IntArray) -> SliceQuality:
    names = METRIC_NAMES[objective]
    if rows == 0:
        return SliceQuality(rows=0, metrics=dict.fromkeys(names), error_bounds={})
    loss, second = float(sums[0]) / rows, float(sums[1]) / rows
    bounds: dict[str, float] = {}
    values: dict[str, float | None]
    if objective == "reg:squarederror":
        values = {"rmse": float(np.sqrt(loss)), "mae": second}
    elif objective == "multi:softprob":
        values = {"mlogloss": loss, "accuracy": second, "merror": 1.0 - second}
    else:
        auc, bound = _auc(hist)
        values = {"auc": auc, "logloss": loss, "accuracy": second, "error": 1.0 - second}
        if bound is not None:
            bounds["auc"] = bound
    return SliceQuality(rows=rows, metrics={name: values[name] for name in names}, error_bounds=bounds)


class QualityPartial:
    """Sufficient statistics of some labelled rows for one objective; see the module's docstring."""

    def __init__(
        self,
        objective: str,
        classes: int,
        slice_columns: Sequence[str],
        overall: _Groups,
        slices: dict[str, _SliceColumn],
    ) -> None:
        self.objective = objective
        self.classes = classes
        self.slice_columns = tuple(slice_columns)
        self._overall = overall
        self._slices = slices

    @classmethod
    def empty(cls, objective: str, classes: int, slice_columns: Sequence[str]) -> QualityPartial:
        if objective not in OBJECTIVES:
            raise QualityInputError(f"objective {objective!r} is not one of {', '.join(OBJECTIVES)}")
        if objective == "multi:softprob" and classes < 2:
            raise QualityInputError(f"multi:softprob needs classes >= 2, got {classes}")
        if len(set(slice_columns)) != len(slice_columns):
            raise QualityInputError(f"slice columns repeat a name: {list(slice_columns)}")
        binary = objective == "binary:logistic"
        slices = {
            c: _SliceColumn([], _Groups.zeros(0, SLICE_AUC_BINS if binary else 0)) for c in slice_columns
        }
        return cls(objective, classes, slice_columns, _Groups.zeros(1, AUC_BINS if binary else 0), slices)

    @property
    def rows(self) -> int:
        return int(self._overall.rows[0])

    def add(self, scores: npt.ArrayLike, labels: npt.ArrayLike, slices: Mapping[str, npt.ArrayLike]) -> None:
        """Adds n rows: scores (n,) ((n, K) for multi:softprob), numeric labels (n,), and each slice
        column's n values. Nothing is added when any of it is invalid (QualityInputError says what)."""
        n = len(_as_float("labels", labels, 1))
        self._check_columns(slices)
        self.add_coded(scores, labels, {c: _coded(c, slices[c], n) for c in self.slice_columns})

    def add_coded(
        self,
        scores: npt.ArrayLike,
        labels: npt.ArrayLike,
        slices: Mapping[str, tuple[Sequence[Any], npt.ArrayLike]],
    ) -> None:
        """As `add`, with each slice column already coded as (its distinct values, each row's position
        among them), e.g. from np.unique(return_inverse=True) or pandas.factorize once per batch: row i's
        value is values[codes[i]]. The fast way in for callers that hold codes."""
        multi = self.objective == "multi:softprob"
        score_array = _as_float("scores", scores, 2 if multi else 1)
        label_array = _as_float("labels", labels, 1)
        n = len(label_array)
        if len(score_array) != n:
            raise QualityInputError(f"scores have {len(score_array)} rows but labels {n}")
        self._check_columns(slices)
        coded = {column: _checked_codes(column, *slices[column], n) for column in self.slice_columns}
        if self.objective == "binary:logistic":
            rows = _binary_rows(score_array, label_array)
        elif multi:
            rows = _multi_rows(score_array, label_array, self.classes)
        else:
            rows = _regression_rows(score_array, label_array)
        self._overall = _sum(self._overall, _whole(rows))
        for column, (present, codes) in coded.items():
            bins = self._slices[column].groups.hist.shape[2]
            batch = _SliceColumn(present, _grouped(rows, codes, len(present), bins))
            self._slices[column] = self._slices[column].merged(batch)

    def _check_columns(self, slices: Mapping[str, Any]) -> None:
        if set(slices) != set(self.slice_columns):
            raise QualityInputError(
                f"slices give columns {sorted(slices)}, the partial expects {sorted(self.slice_columns)}"
            )

    def merge(self, other: QualityPartial) -> QualityPartial:
        """A new partial holding both partials' rows: exact, associative and commutative."""
        if (self.objective, self.classes, self.slice_columns) != (
            other.objective,
            other.classes,
            other.slice_columns,
        ):
            raise QualityInputError(
                f"cannot merge a partial of {other.objective} ({other.classes} classes, slices "
                f"{list(other.slice_columns)}) into one of {self.objective} ({self.classes} classes, slices "
                f"{list(self.slice_columns)})"
            )
        slices = {c: self._slices[c].merged(other._slices[c]) for c in self.slice_columns}
        return QualityPartial(
            self.objective, self.classes, self.slice_columns, _sum(self._overall, other._overall), slices
        )

    def result(self) -> QualityMetrics:
        whole = _metrics(self.objective, self.rows, self._overall.sums[0], self._overall.hist[0])
        slices = {
            column: {
                value: _metrics(
                    self.objective, int(state.groups.rows[i]), state.groups.sums[i], state.groups.hist[i]
                )
                for i, value in enumerate(state.values)
            }
            for column, state in self._slices.items()
        }
        return QualityMetrics(
            objective=self.objective,
            rows=whole.rows,
            metrics=whole.metrics,
            error_bounds=whole.error_bounds,
            slices=slices,
        )

    # --- bytes: an .npz of plain arrays plus a JSON header, loaded with allow_pickle=False ---------------

    def to_bytes(self) -> bytes:
        header = {
            "format": _FORMAT,
            "objective": self.objective,
            "classes": self.classes,
            "slice_columns": list(self.slice_columns),
            "values": [self._slices[c].values for c in self.slice_columns],
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        }
        groups = [self._overall] + [self._slices[c].groups for c in self.slice_columns]
        for i, group in enumerate(groups):
            arrays |= {f"rows{i}": group.rows, f"sums{i}": group.sums, f"hist{i}": group.hist}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> QualityPartial:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                header = json.loads(bytes(npz["header"]).decode())
                if header.get("format") != _FORMAT:
                    raise QualityInputError(f"partial bytes: unknown format {header.get('format')!r}")
                groups = [
                    _Groups(npz[f"rows{i}"], npz[f"sums{i}"], npz[f"hist{i}"])
                    for i in range(1 + len(header["slice_columns"]))
                ]
        except QualityInputError:
            raise
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            raise QualityInputError(f"partial bytes: not a serialized QualityPartial ({exc})") from exc
        empty = cls.empty(header["objective"], header["classes"], header["slice_columns"])
        templates = [empty._overall] + [empty._slices[c].groups for c in empty.slice_columns]
        sizes = [1] + [len(values) for values in header["values"]]
        for i, (group, template, size) in enumerate(zip(groups, templates, sizes, strict=True)):
            if (
                group.rows.shape != (size,)
                or group.sums.shape != (size, 2)
                or group.hist.shape != (size, *template.hist.shape[1:])
            ):
                raise QualityInputError(f"partial bytes: group {i} has inconsistent array shapes")
        slices = {
            column: _SliceColumn(list(header["values"][i]), groups[i + 1])
            for i, column in enumerate(header["slice_columns"])
        }
        return cls(header["objective"], header["classes"], header["slice_columns"], groups[0], slices)
