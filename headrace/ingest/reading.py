"""Bytes to a DataFrame: which format a file is (extension, confirmed by magic bytes) and how to parse it.

Reading is deliberately tolerant about types (the validator judges them) and strict about structure: a
file whose rows cannot be split into the header's columns raises `ReadFailure`, never a half-read frame.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import PurePosixPath

import pandas as pd

from headrace.config import ColumnType, DataSchema
from headrace.ingest.problems import SAMPLE_SIZE, clip
from headrace.ledger import FileFormat

EXTENSIONS: dict[str, FileFormat] = {
    ".csv": FileFormat.CSV,
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
}

# Apache Parquet file format: a file starts and ends with the 4-byte magic "PAR1".
PARQUET_MAGIC = b"PAR1"
# Smallest valid Parquet file: magic, 4-byte footer length, magic.
PARQUET_MIN_BYTES = 12

# Binary formats people drop by mistake, recognised by their leading bytes, so the message can say what it is.
BINARY_SIGNATURES: dict[bytes, str] = {
    PARQUET_MAGIC: "Parquet data",
    b"\x1f\x8b": "gzip-compressed data",
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook is one)",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document",
    b"%PDF": "a PDF document",
}

# Cells read as null. "NA" is included because pandas users write it; a category that is literally one of
# these tokens is exempted for its own column (see `null_tokens`), so a region called "NA" stays a value.
NULL_TOKENS = frozenset(
    {"", "NA", "N/A", "n/a", "#N/A", "NaN", "nan", "-nan", "NULL", "null", "None", "<NA>"}
)


class ReadFailure(Exception):
    """The file's structure cannot be read; `rows` holds 1-based data row numbers where that is known."""

    def __init__(self, message: str, rows: list[int] | None = None, count: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.rows = rows or []
        self.count = count


def file_name(key: str) -> str:
    return PurePosixPath(key).name


def format_for(name: str) -> FileFormat | None:
    """The format a file claims by its extension (case-insensitive), or None for an unsupported one."""
    return EXTENSIONS.get(PurePosixPath(name).suffix.lower())


def binary_signature(data: bytes) -> str | None:
    return next((what for magic, what in BINARY_SIGNATURES.items() if data.startswith(magic)), None)


def null_tokens(schema: DataSchema) -> dict[str, list[str]]:
    """Per-column null tokens for pandas: every token, except a category's own declared values."""
    tokens: dict[str, list[str]] = {}
    for column in schema.columns:
        declared = set(column.categories or [])
        tokens[column.name] = sorted(NULL_TOKENS - declared)
    return tokens


def read_csv(data: bytes | str, schema: DataSchema) -> pd.DataFrame:
    """Parse CSV text; string and category columns stay text, other columns get pandas' type inference.

    Inference is the fast path (the C parser converts numbers while tokenizing); a column with a bad value
    comes back as object dtype and the validator coerces it, which is where offending values are found.
    Category columns are read as pandas categoricals: as fast, and a third of the memory of strings, which
    matters for a file near max_file_mb in a Lambda function.

    Structure is explained in a person's words (issue 14, finding 9): a ';'-separated file, rows with more or
    fewer fields than the header (pandas pads short rows with nulls and turns a trailing comma into an index),
    and duplicated column names (pandas renames the second 'region' to 'region.1').
    """
    header = _header(data)
    if header is not None:
        _refuse_other_delimiters(header)
    text_columns = {
        c.name: "category" if c.type is ColumnType.CATEGORY else "str"
        for c in schema.columns
        if c.type in (ColumnType.STRING, ColumnType.CATEGORY)
    }
    source: io.BytesIO | io.StringIO = io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data)
    try:
        frame = pd.read_csv(
            source,
            dtype=text_columns,  # type: ignore[arg-type]  # a dict of column -> type is valid for read_csv
            keep_default_na=False,
            na_values=null_tokens(schema),
            encoding="utf-8-sig",  # tolerate the byte-order mark Excel writes
            # One pass over the whole file, so a column never gets mixed chunk-wise types.
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        raise ReadFailure("the file has no header line (only blank lines)") from None
    except pd.errors.ParserError as exc:
        _refuse_ragged(data)
        reason = str(exc).removeprefix("Error tokenizing data. C error: ")
        raise ReadFailure(
            f"the CSV cannot be parsed ({reason}); expected comma-separated UTF-8 text"
        ) from None
    # Rows longer than the header make pandas use the first column(s) as the index; shorter ones leave nulls
    # at the end of the row, so only a null in the last column makes the (slower) row-by-row check worth it.
    if not isinstance(frame.index, pd.RangeIndex) or (
        len(frame.columns) and bool(frame.iloc[:, -1].isna().any())
    ):
        _refuse_ragged(data)
    if header is not None and len(header) == len(frame.columns) and len(set(header)) < len(header):
        frame.columns = pd.Index(header)  # the names as written, so a duplicate is reported as itself
    return frame


# Delimiters people's tools write instead of commas (Excel in locales with a decimal comma writes ';').
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
# The header is read from the file's start; a header longer than this is not worth guessing about.
HEADER_BYTES = 1024 * 1024


def _header(data: bytes | str) -> list[str] | None:
    """The header's fields as written (the first non-blank record), or None when it cannot be read."""
    head = data[:HEADER_BYTES]
    text = head.decode("utf-8-sig", errors="replace") if isinstance(head, bytes) else head.lstrip("\ufeff")
    try:
        return next((record for record in csv.reader(io.StringIO(text)) if record), None)
    except csv.Error:
        return None


def _refuse_other_delimiters(header: list[str]) -> None:
    if len(header) != 1:
        return
    line = header[0]
    found = [(line.count(d), d) for d in OTHER_DELIMITERS if d in line]
    if not found:
        return
    count, delimiter = max(found)
    name = OTHER_DELIMITERS[delimiter]
    shown = repr(delimiter) if delimiter == "\t" else f"'{delimiter}'"
    raise ReadFailure(
        f"the file is not comma-separated: its header line has no commas but {count} {name} "
        f"({shown}) {'character' if count == 1 else 'characters'}, so it reads as one column named "
        f"'{clip(line)}'; expected comma-separated values (save it as 'CSV (comma delimited)', or replace "
        f"{shown} with ',')"
    )


@dataclass(frozen=True)
class Ragged:
    """Data rows whose field count differs from the header's: (1-based data row, fields) for a sample."""

    header_fields: int
    sample: list[tuple[int, int]]
    count: int
    # Every row has exactly one field more than the header, and it is empty: a comma at each line's end.
    trailing_comma: bool


def _refuse_ragged(data: bytes | str) -> None:
    ragged = _ragged_rows(data)
    if ragged is None:
        return
    expected = ragged.header_fields
    rows = [row for row, _ in ragged.sample]
    if ragged.trailing_comma:
        raise ReadFailure(
            f"every data row ends with a comma the header does not have: the rows have {expected + 1} "
            f"fields, the header {expected}; remove the comma at the end of each row",
            rows=rows,
            count=ragged.count,
        )
    first_row, first_fields = ragged.sample[0]
    first = f"row {first_row} has {first_fields} {'field' if first_fields == 1 else 'fields'}"
    if ragged.count == 1:
        what = f"{first}, the header has {expected}"
    else:
        others = ", ".join(f"row {row} has {fields}" for row, fields in ragged.sample[1:])
        what = (
            f"{ragged.count} data rows do not have the header's {expected} fields: {first}"
            + (f", {others}" if others else "")
            + ("" if ragged.count <= len(ragged.sample) else ", …")
        )
    raise ReadFailure(
        f"{what}; expected every row to have exactly {expected} comma-separated fields "
        "(quote values that contain commas)",
        rows=rows,
        count=ragged.count,
    )


def _ragged_rows(data: bytes | str) -> Ragged | None:
    """Every data row whose field count differs from the header's (the C parser stops at the first one).

    Only runs on the error path, so the stdlib csv module's speed is fine here.
    """
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    records = (record for record in csv.reader(io.StringIO(text)) if record)  # pandas skips blank lines too
    sample: list[tuple[int, int]] = []
    count = 0
    trailing = True
    try:
        header = next(records)
        width = len(header)
        for number, record in enumerate(records, start=1):
            if len(record) == width:
                trailing = False
                continue
            trailing = trailing and len(record) == width + 1 and record[-1] == ""
            count += 1
            if len(sample) < SAMPLE_SIZE:
                sample.append((number, len(record)))
    except (StopIteration, csv.Error):
        return None
    return Ragged(width, sample, count, trailing) if count else None


def read_parquet(data: bytes) -> pd.DataFrame:
    """Parse a Parquet file held in memory; raises ReadFailure for a truncated or invalid one."""
    # pyarrow.parquet costs ~100 ms to import: only Parquet uploads pay for it.
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
        table = pq.read_table(pa.BufferReader(data))
        frame: pd.DataFrame = table.to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ReadFailure(f"the Parquet file cannot be read ({exc}); expected a valid Parquet file") from None
    # Dictionary-encoded columns arrive as pandas Categoricals; the validator wants plain values.
    for position, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.CategoricalDtype):
            frame.isetitem(position, frame.iloc[:, position].astype(object).to_numpy())
    return frame
