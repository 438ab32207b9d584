"""Parquet files: their columns as cells for the validator (`parse_parquet`). pyarrow is imported inside
the functions, so only Parquet files pay for it and the ingest function's init imports neither it nor
pandas (which pyarrow imports as it converts)."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from headrace.config import Column, ColumnType, DataSchema
from headrace.ingest.cells import FALSE_TOKENS, TRUE_TOKENS, Cells, Numbers, Parsed, Text
from headrace.ingest.reading import PARQUET_MAGIC, PARQUET_MIN_BYTES, ReadFailure
from headrace.text_numbers import number

if TYPE_CHECKING:
    import pyarrow as pa


def parse_parquet(data: bytes, schema: DataSchema) -> Parsed:
    """A Parquet file's columns as cells. pyarrow is imported here: only Parquet uploads pay for it."""
    table = _parquet_table(data)
    # pandas' index, stored as columns when the frame had one (to_pandas made them the index again).
    metadata = table.schema.pandas_metadata or {}
    index = [name for name in metadata.get("index_columns", []) if isinstance(name, str)]
    if index:
        table = table.drop_columns(index)
    names = tuple(str(name) for name in table.column_names)
    counts = Counter(names)
    declared = {c.name: c for c in schema.columns}
    cells = {
        name: _arrow_cells(table.column(position), declared[name])
        for position, name in enumerate(names)
        if counts[name] == 1 and name in declared
    }
    return Parsed(names, cells, table.num_rows)


def _parquet_table(data: bytes) -> pa.Table:
    # pyarrow.parquet costs ~100 ms to import (and pyarrow imports pandas when first used).
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(data) < PARQUET_MIN_BYTES or not data.startswith(PARQUET_MAGIC):
        raise ReadFailure(
            "the file does not start with the Parquet magic bytes 'PAR1'; expected a Parquet file"
        )
    if not data.endswith(PARQUET_MAGIC):
        raise ReadFailure(
            "the Parquet file is truncated: it does not end with the footer magic 'PAR1'; "
            "expected a complete Parquet file (was the upload interrupted?)"
        )
    try:
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ReadFailure(f"the Parquet file cannot be read ({exc}); expected a valid Parquet file") from None


def _arrow_cells(values: pa.ChunkedArray, column: Column) -> Cells:
    """One Parquet column as the cells pandas' to_pandas gave the validator."""
    import pyarrow as pa
    import pyarrow.types as types

    if types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)  # the validator wants plain values
    kind = values.type
    texts = types.is_string(kind) or types.is_large_string(kind)
    numeric = types.is_integer(kind) or types.is_floating(kind) or types.is_decimal(kind)
    shown = _ArrowShown(values)
    if column.type in (ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.BOOLEAN) and not texts:
        if not (numeric or types.is_boolean(kind)):
            # A timestamp is not a number (to_numeric would make it epoch nanoseconds), nor a boolean.
            null = values.is_null().to_numpy(zero_copy_only=False)
            return Numbers(np.full(len(values), math.nan), null, shown)
        # Booleans count as 0/1: a column stored as bool where a number is declared is still numeric.
        floats = values.cast(pa.float64()).to_numpy()
        null = np.isnan(floats)
        if column.type is ColumnType.BOOLEAN:
            floats = np.where(np.isin(floats, (0.0, 1.0)), floats, math.nan)
        return Numbers(floats, null, shown)
    cells = values.to_pylist()
    null = np.fromiter((cell is None for cell in cells), np.bool_, len(cells))
    if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
        parsed = [None if cell is None else number(cell) for cell in cells]
        return Numbers(np.array([math.nan if v is None else v for v in parsed], np.float64), null, shown)
    if column.type is ColumnType.BOOLEAN:
        words = (None if cell is None else cell.strip().lower() for cell in cells)
        flags = [1.0 if w in TRUE_TOKENS else 0.0 if w in FALSE_TOKENS else math.nan for w in words]
        return Numbers(np.array(flags, np.float64), null, shown)
    if not texts:
        # pandas' astype(str): integers with nulls were floats there, and NaN a null.
        if types.is_integer(kind) and values.null_count:
            cells = [None if cell is None else float(cell) for cell in cells]
        null |= np.fromiter((isinstance(c, float) and math.isnan(c) for c in cells), np.bool_, len(cells))
        cells = [None if cell is None else str(cell) for cell in cells]
    distinct = np.empty(len(cells), dtype=object)
    distinct[:] = cells
    return Text(np.where(null, -1, np.arange(len(cells), dtype=np.int32)), distinct)


class _ArrowShown:
    def __init__(self, values: pa.ChunkedArray) -> None:
        self.values = values

    def __call__(self, rows: list[int]) -> list[Any]:
        import pyarrow as pa
        import pyarrow.types as types

        taken = self.values.take(pa.array(rows, pa.int64()))
        if types.is_timestamp(taken.type) and taken.type.unit == "ns":
            taken = taken.cast(pa.timestamp("us", taken.type.tz), safe=False)  # datetime, as pandas shows it
        return list(taken.to_pylist())
