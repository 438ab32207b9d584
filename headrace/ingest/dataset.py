"""A dataset version: one accepted file, named by the SHA-256 of its exact bytes, with summary statistics.

The version's model (headrace.ledger.DatasetVersion, free of numpy) is what the training state machine
receives as input and what the ledger records; the statistics give people (and later drift checks) a first
look at the data without reading the file.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import numpy.typing as npt

from headrace.config import ColumnType, DataSchema
from headrace.ingest.table import Table
from headrace.ledger import CategoricalStatistics, ColumnStatistics, FileFormat, NumericStatistics

# Categorical statistics keep the most frequent values only: a free-text column must not blow the ledger
# item past DynamoDB's 400 KB limit (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html).
TOP_VALUES = 50


def content_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset_key(datasets_prefix: str, sha256: str, kind: FileFormat) -> str:
    """`<model>/datasets/<sha256>/data.<ext>`: one folder per version (a SageMaker S3Prefix)."""
    return f"{datasets_prefix}{sha256}/data.{kind.value}"


def summarize(typed: Table, schema: DataSchema) -> dict[str, ColumnStatistics]:
    """Per-column statistics of a validated table (typed as `validation.Inspection.frame` describes)."""
    statistics: dict[str, ColumnStatistics] = {}
    for column in schema.columns:
        if column.name not in typed:
            continue
        values = typed[column.name]
        if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
            statistics[column.name] = _numeric(values.astype(np.float64))
        elif column.type is ColumnType.BOOLEAN:
            flags = Counter({"true": int((values == 1.0).sum()), "false": int((values == 0.0).sum())})
            statistics[column.name] = _categorical(flags, len(values))
        else:
            counts = Counter(values.tolist())
            counts.pop(None, None)
            statistics[column.name] = _categorical(counts, len(values))
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


def _categorical(counts: Counter[str], rows: int) -> CategoricalStatistics:
    frequencies = [(value, n) for value, n in counts.most_common() if n > 0]
    count = sum(n for _, n in frequencies)
    return CategoricalStatistics(
        count=count,
        nulls=rows - count,
        distinct=len(frequencies),
        counts={str(value): n for value, n in frequencies[:TOP_VALUES]},
    )


def _finite(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
