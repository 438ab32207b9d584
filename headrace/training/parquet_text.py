"""A Parquet dataset version's cells as the text Prepare writes into the CSV splits.

The text is what ingest's reader (`pyarrow` `to_pandas`, dictionary columns as plain values) followed by
pandas' `to_csv` wrote before Prepare stopped importing pandas, so a Parquet dataset splits into the same
bytes as it always has: floats as numpy prints them (the shortest text that reads back as the same float),
integers as integers unless a null made pandas hold the column as floats ("3.0"), booleans True/False,
nulls (and float NaN) empty, timestamps as pandas prints them. pyarrow is imported here, inside the
function: only a Parquet dataset pays its ~75 ms, and a CSV dataset never does.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from headrace.training.table import Table, TableError, from_columns

if TYPE_CHECKING:
    import pyarrow as pa

# pandas' nullable integer dtypes: pyarrow restores them from a pandas-written file's metadata, and they
# keep integers as integers beside nulls (a plain int64 column with a null becomes float64).
_NULLABLE_INTEGERS = frozenset({"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"})
# A timestamp unit's ticks per second; pandas shows the coarsest unit that every value is a whole number of.
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_UNITS: tuple[Literal["s", "ms", "us", "ns"], ...] = ("s", "ms", "us", "ns")


def read_parquet_text(data: bytes, wanted: Collection[str]) -> Table:
    """The file's columns named in `wanted` (in the file's order), every cell as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(pa.BufferReader(data))
    schema = file.schema_arrow
    names = [name for name in schema.names if name in wanted]
    table = file.read(columns=names)
    nullable_ints = _nullable_integer_columns(schema.metadata or {})
    return from_columns(
        table.column_names,
        [
            _text(table.column(i).combine_chunks(), name, integer_nulls=name in nullable_ints)
            for i, name in enumerate(table.column_names)
        ],
    )


def _nullable_integer_columns(metadata: dict[bytes, bytes]) -> set[str]:
    document = metadata.get(b"pandas")
    if document is None:
        return set()
    columns: list[dict[str, Any]] = json.loads(document).get("columns", [])
    return {
        str(c.get("field_name", c.get("name"))) for c in columns if c.get("numpy_type") in _NULLABLE_INTEGERS
    }


def _text(array: pa.Array, name: str, *, integer_nulls: bool = False, as_objects: bool = False) -> list[str]:
    """One column's cells. `as_objects`: the values of a dictionary column, which pandas held as Python
    objects (so integers keep no ".0" beside nulls)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind):
        return _text(array.dictionary_decode(), name, as_objects=True)
    if pa.types.is_null(kind):
        return [""] * len(array)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        cells: list[str] = pc.fill_null(array, "").to_pylist()
        return cells
    if pa.types.is_floating(kind):
        return _numpy_text(array.to_numpy(zero_copy_only=False), array)
    if pa.types.is_integer(kind):
        if array.null_count and not (integer_nulls or as_objects):
            # pandas held it as float64: NaN where the nulls were, every integer printed as a float.
            return _numpy_text(array.to_numpy(zero_copy_only=False), array)
        return _numpy_text(pc.fill_null(array, 0).to_numpy(zero_copy_only=False), array)
    if pa.types.is_timestamp(kind):
        return _timestamp_text(array)
    if (
        pa.types.is_boolean(kind)
        or pa.types.is_date(kind)
        or pa.types.is_time(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    ):
        # pandas held these as Python objects (bool, datetime.date, datetime.time, Decimal, bytes): str().
        return ["" if value is None else str(value) for value in array.to_pylist()]
    raise TableError(
        f"column '{name}' is stored as Parquet type {kind}, which the splits cannot write as CSV text; "
        "expected numbers, booleans, strings, dates or timestamps"
    )


def _numpy_text(values: npt.NDArray[Any], array: pa.Array) -> list[str]:
    """numpy's text for each value (pandas' `astype(str)`), empty where Arrow has a null or a float NaN."""
    if values.dtype == np.float64:
        # Python's repr is numpy's float64 text (both the shortest round-trip digits), at half the cost.
        cells: list[str] = list(map(repr, values.tolist()))
    elif values.dtype.kind in "iu":
        cells = list(map(str, values.tolist()))
    else:  # float32 and float16 print their own shortest digits, which only numpy knows
        cells = values.astype(str).tolist()
    missing = _null_mask(array)
    if values.dtype.kind == "f":
        missing = missing | np.isnan(values)
    for i in np.flatnonzero(missing).tolist():
        cells[i] = ""
    return cells


def _null_mask(array: pa.Array) -> npt.NDArray[np.bool_]:
    if not array.null_count:
        return np.zeros(len(array), dtype=bool)
    mask: npt.NDArray[np.bool_] = array.is_null().to_numpy(zero_copy_only=False)
    return mask


def _timestamp_text(array: pa.Array) -> list[str]:
    """pandas' text for a timestamp column: without a time zone, dates only when every value is midnight,
    else date and time with the sub-second digits the finest value needs (the same for the whole column);
    with one, each value's local time and offset as `str(pd.Timestamp)` prints it."""
    import pyarrow as pa

    unit: str = array.type.unit
    ticks = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    missing = _null_mask(array)
    present = ticks[~missing]
    if array.type.tz is not None:
        cells = _zoned_text(ticks, unit, _zone(array.type.tz))
    else:
        stamps = ticks.astype(f"datetime64[{unit}]")
        per_day = 86_400 * _PER_SECOND[unit]
        if not (present % per_day).any():
            cells = np.datetime_as_string(stamps, unit="D").tolist()
        else:
            # The unit itself is always exact, so a unit is found.
            shown = next(
                u for u in _UNITS if _PER_SECOND[u] <= _PER_SECOND[unit] and _exact(present, unit, u)
            )
            texts: list[str] = np.datetime_as_string(stamps, unit=shown).tolist()
            cells = [text.replace("T", " ") for text in texts]
    for i in np.flatnonzero(missing).tolist():
        cells[i] = ""
    return cells


def _exact(ticks: npt.NDArray[np.int64], unit: str, shown: str) -> bool:
    """Every value is a whole number of `shown` units."""
    return not (ticks % (_PER_SECOND[unit] // _PER_SECOND[shown])).any()


def _zone(name: str) -> tzinfo:
    if name[:1] in "+-":  # Arrow's fixed offsets, "+01:00"
        sign = -1 if name[0] == "-" else 1
        hours, _, minutes = name[1:].partition(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
    from zoneinfo import ZoneInfo

    return UTC if name.upper() in ("UTC", "Z") else ZoneInfo(name)


def _zoned_text(ticks: npt.NDArray[np.int64], unit: str, zone: tzinfo) -> list[str]:
    """`str(pd.Timestamp)`: ISO date and time with a space, microseconds when non-zero, then nanoseconds
    when non-zero, then the offset."""
    per_second = _PER_SECOND[unit]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    cells = []
    for tick in ticks.tolist():
        seconds, fraction = divmod(tick, per_second)
        nanos = fraction * (1_000_000_000 // per_second)
        local = (epoch + timedelta(seconds=seconds, microseconds=nanos // 1000)).astimezone(zone)
        text = local.isoformat(sep=" ")
        if nanos % 1000:
            base, offset = text[:19], text[19:]
            fraction_text = f".{nanos:09d}"
            offset = offset[7:] if offset.startswith(".") else offset
            text = base + fraction_text + offset
        cells.append(text)
    return cells
