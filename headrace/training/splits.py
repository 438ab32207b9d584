"""Train, validation and test splits of a dataset version: deterministic, so a retried Prepare writes the
same rows, and stratified on the label for classifiers, so a rare class appears in every split.

The same seed (`trainer.seed`) and the same content (its SHA-256) always give the same split; another
dataset version gets another shuffle. `trainer.validation_fraction` of the rows goes to validation and
`trainer.test_fraction` (default: as many again) to the held-out test split the gate judges; the rest trains.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from headrace.config import ColumnType, DataSchema, ModelConfig, TrainerConfig
from headrace.ledger import FileFormat
from headrace.training.layout import SPLITS, Split
from headrace.training.table import MissingColumns, Table, TableError

CLASSIFICATION_OBJECTIVES = frozenset({"binary:logistic", "multi:softprob"})
_TRAIN, _VALIDATION, _TEST = 0, 1, 2
_LABELS: dict[Split, int] = {"train": _TRAIN, "validation": _VALIDATION, "test": _TEST}


class SplitError(ValueError):
    """The dataset cannot be split as configured (too few rows, fractions that leave nothing to train on)."""


def split_seed(seed: int, sha256: str) -> int:
    """A 64-bit generator seed from the configured seed and the dataset's content hash."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{sha256}".encode()).digest()[:8], "big")


def check_fractions(trainer: TrainerConfig) -> None:
    """Validation and test (`test_fraction`, else as much as validation) must leave rows to train on."""
    held = trainer.validation_fraction + trainer.held_out_fraction
    if held >= 1:
        if trainer.test_fraction is None:
            expected = "expected less than 0.5"
        else:
            expected = f"expected validation_fraction + test_fraction ({trainer.test_fraction}) below 1"
        raise SplitError(
            f"trainer.validation_fraction {trainer.validation_fraction} gives validation and test "
            f"{held:.0%} of the rows together, leaving none to train on; {expected}"
        )


def is_class_label(model: ModelConfig) -> bool:
    return model.trainer.objective in CLASSIFICATION_OBJECTIVES


def assign(
    strata: npt.NDArray[np.int64], fraction: float, seed: int, test_fraction: float | None = None
) -> npt.NDArray[np.int8]:
    """Per row, 0 (train), 1 (validation) or 2 (test). Within each stratum (in stratum order) the rows are
    shuffled and round(n * test_fraction) go to test (test_fraction defaults to fraction), round(n * fraction)
    to validation, the rest to train."""
    labels = np.full(strata.shape, _TRAIN, dtype=np.int8)
    rng = np.random.default_rng(seed)
    for stratum in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == stratum))
        tested = int(len(rows) * (fraction if test_fraction is None else test_fraction) + 0.5)
        validated = int(len(rows) * fraction + 0.5)
        labels[rows[:tested]] = _TEST
        labels[rows[tested : tested + validated]] = _VALIDATION
    return labels


def strata_of(table: Table, model: ModelConfig) -> npt.NDArray[np.int64]:
    """One stratum per label value for a classifier ("1" and "1.0" are one class), a single one otherwise.

    Strata are numbered in the sorted order of the labels' text, numeric labels as pandas' `to_numeric`
    then `astype(str)` wrote them: the order decides how the seeded generator is drawn from, so it must
    not change for the split of the same data to stay the same."""
    if not is_class_label(model):
        return np.zeros(len(table), dtype=np.int64)
    target = table.column(model.data.target)
    distinct = list(dict.fromkeys(target))  # a label's text is converted once, not once per row
    keys = distinct
    if model.data.column(model.data.target).type in (ColumnType.INTEGER, ColumnType.FLOAT):
        keys = _numeric_text(distinct)
    rank = {key: stratum for stratum, key in enumerate(sorted(set(keys)))}
    stratum_of = {value: rank[key] for value, key in zip(distinct, keys, strict=True)}
    return np.fromiter(map(stratum_of.__getitem__, target), dtype=np.int64, count=len(target))


_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE
)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


def _numeric_text(values: Sequence[str]) -> list[str]:
    """`pd.to_numeric(values, errors="coerce").astype(str)`: integers as integers when every value is one
    (and fits int64, or uint64 without negatives), else every value as a float's repr; "nan" for text that
    is not a number."""
    numbers: list[int | float] = []
    for value in values:
        text = value.strip()
        if _INTEGER.fullmatch(text):
            numbers.append(int(text))
        elif _FLOAT.fullmatch(text):
            numbers.append(float(text))
        else:
            numbers.append(math.nan)
    integers = [n for n in numbers if isinstance(n, int)]
    if len(integers) == len(numbers) and (
        (_INT64[0] <= min(integers, default=0) and max(integers, default=0) <= _INT64[1])
        or (min(integers, default=0) >= 0 and max(integers, default=0) <= _UINT64_MAX)
    ):
        return [str(n) for n in integers]
    return [repr(float(n)) for n in numbers]


@dataclass(frozen=True)
class Splits:
    train: Table
    validation: Table
    test: Table

    def part(self, split: Split) -> Table:
        table: Table = getattr(self, split)
        return table

    def rows(self) -> dict[Split, int]:
        return {split: len(self.part(split)) for split in SPLITS}


def split_dataset(table: Table, model: ModelConfig, sha256: str) -> Splits:
    """Rows keep their original order inside each split."""
    check_fractions(model.trainer)
    trainer = model.trainer
    labels = assign(
        strata_of(table, model),
        trainer.validation_fraction,
        split_seed(trainer.seed, sha256),
        trainer.held_out_fraction,
    )
    parts = {split: table.take(labels == label) for split, label in _LABELS.items()}
    empty = [split for split, part in parts.items() if not len(part)]
    if empty:
        raise SplitError(
            f"{len(table)} rows leave the {', '.join(empty)} split empty at trainer.validation_fraction "
            f"{model.trainer.validation_fraction}; the dataset needs more rows"
        )
    return Splits(**parts)


def split_with_holdout(
    table: Table, holdout: npt.NDArray[np.bool_], model: ModelConfig, holdout_sha256: str, key: str
) -> Splits:
    """The test split drawn from the `holdout` rows only (one production dataset: the recent data the gate
    judges on), stratified and seeded by that dataset's content as `split_dataset` would split it alone;
    its other rows and every other row go to train and validation (seeded by `key`, the run's datasets)."""
    check_fractions(model.trainer)
    trainer = model.trainer
    strata = strata_of(table, model)
    labels = np.empty(len(table), dtype=np.int8)
    labels[holdout] = assign(
        strata[holdout],
        trainer.validation_fraction,
        split_seed(trainer.seed, holdout_sha256),
        trainer.held_out_fraction,
    )
    labels[~holdout] = assign(
        strata[~holdout], trainer.validation_fraction, split_seed(trainer.seed, key), 0.0
    )
    parts = {split: table.take(labels == label) for split, label in _LABELS.items()}
    empty = [split for split, part in parts.items() if not len(part)]
    if empty:
        raise SplitError(
            f"{len(table)} rows ({int(holdout.sum())} of them from the holdout's production dataset "
            f"{holdout_sha256[:12]}) leave the {', '.join(empty)} split empty at trainer.validation_fraction "
            f"{model.trainer.validation_fraction}; the run needs more rows"
        )
    return Splits(**parts)


def read_dataset(data: bytes, kind: FileFormat, schema: DataSchema) -> Table:
    """A validated dataset version, columns in the schema's order. CSV cells stay the exact text of the
    file (no type inference, no null handling): the splits repeat what ingest accepted, byte for value."""
    names = [c.name for c in schema.columns]
    try:
        if kind is FileFormat.PARQUET:
            from headrace.training.parquet_text import read_parquet_text  # imports pyarrow

            table = read_parquet_text(data, set(names))
        else:
            table = Table.from_csv(data)
        return table.select(names)
    except MissingColumns as exc:
        raise SplitError(f"the dataset lacks the schema's columns {', '.join(exc.names)}") from None
    except TableError as exc:
        raise SplitError(f"the dataset cannot be read: {exc}") from None
