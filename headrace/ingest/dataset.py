"""A dataset version: one accepted file, named by the SHA-256 of its exact bytes, with summary statistics.

The version's model (headrace.ledger.DatasetVersion, free of pandas) is what the training state machine
receives as input and what the ledger records; the statistics give people (and later drift checks) a first
look at the data without reading the file.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.config import ColumnType, DataSchema
from headrace.ledger import CategoricalStatistics, ColumnStatistics, FileFormat, NumericStatistics

# Categorical statistics keep the most frequent values only: a free-text column must not blow the ledger
# item past DynamoDB's 400 KB limit (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html).
TOP_VALUES = 50


def content_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset_key(datasets_prefix: str, sha256: str, kind: FileFormat) -> str:
    """`<model>/datasets/<sha256>/data.<ext>`: one folder per version (a SageMaker S3Prefix)."""
    return f"{datasets_prefix}{sha256}/data.{kind.value}"


def summarize(typed: pd.DataFrame, schema: DataSchema) -> dict[str, ColumnStatistics]:
    """Per-column statistics of a validated frame (typed as `validation.Inspection.frame` describes)."""
    statistics: dict[str, ColumnStatistics] = {}
    for column in schema.columns:
        if column.name not in typed.columns:
            continue
        values = typed[column.name]
        if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
            statistics[column.name] = _numeric(values.to_numpy(dtype=np.float64, na_value=np.nan))
        elif column.type is ColumnType.BOOLEAN:
            labels = values.map({1.0: "true", 0.0: "false"})
            statistics[column.name] = _categorical(labels)
        else:
            statistics[column.name] = _categorical(values)
    return statistics


def _numeric(values: npt.NDArray[np.float64]) -> NumericStatistics:
    present = values[~np.isnan(values)]
    count = int(present.size)
    return NumericStatistics(
        count=count,
        nulls=int(values.size - count),
        mean=_finite(present.mean()) if count else None,
        std=_finite(present.std(ddof=1)) if count > 1 else None,
        min=_finite(present.min()) if count else None,
        max=_finite(present.max()) if count else None,
    )


def _categorical(values: pd.Series) -> CategoricalStatistics:
    frequencies = values.value_counts(dropna=True)
    frequencies = frequencies[frequencies > 0]  # a categorical also lists the values it no longer holds
    count = int(frequencies.sum())
    return CategoricalStatistics(
        count=count,
        nulls=int(len(values) - count),
        distinct=len(frequencies),
        counts={str(k): int(v) for k, v in frequencies.head(TOP_VALUES).items()},
    )


def _finite(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
