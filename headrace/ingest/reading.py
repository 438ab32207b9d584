"""Bytes to cells: which format a file is (extension, confirmed by magic bytes) and how to parse it.

Reading is deliberately tolerant about types (the validator judges them) and strict about structure: a
file whose rows cannot be split into the header's columns raises `ReadFailure`, never a half-read file.

CSV is parsed here without pandas, whose import was most of the ingest function's cold start (290 of
552 ms, issue 15): `csv_tokens` splits the text into records chunk by chunk, `csv_columns` types each
column's cells as pandas' read_csv did. Parquet is read by `parquet`, which imports pyarrow only when a
Parquet file comes. Both give the `cells` types.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain
from pathlib import PurePosixPath

import numpy as np

from headrace.config import DataSchema
from headrace.ingest.cells import Parsed
from headrace.ingest.csv_columns import builder_for
from headrace.ingest.csv_tokens import Chunk, Tokens
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


def parse_csv(data: bytes | str, schema: DataSchema) -> Parsed:
    """Parse CSV text; string and category columns stay text, the others are typed as pandas typed them.

    Structure is explained in a person's words (issue 14, finding 9): a ';'-separated file, rows with more or
    fewer fields than the header, a file that ends inside a quoted cell. Blank lines are skipped, a leading
    byte-order mark (Excel writes one) is dropped, and duplicated column names are kept as written.
    """
    tokens = Tokens(data)
    chunks = tokens.chunks()
    header: list[str] | None = None
    for chunk in chunks:
        if len(chunk):
            header, first = chunk.record(0), chunk.without_first()
            chunks = chain([first], chunks)
            break
    if header is None:
        raise ReadFailure("the file has no header line (only blank lines)")
    _refuse_other_delimiters(header)
    names = _names(header)
    counts = Counter(names)
    declared = {c.name: c for c in schema.columns}
    builders = {
        position: builder_for(declared[name], data, position)
        for position, name in enumerate(names)
        if counts[name] == 1 and name in declared
    }
    ragged = _Ragged(len(header))
    rows = 0
    for chunk in chunks:
        if not len(chunk):
            continue
        ragged.add(chunk, rows)
        if not ragged.count:
            for position, builder in builders.items():
                builder.add(chunk.column(position, len(header)), chunk.plain)
        rows += len(chunk)
    ragged.refuse()
    if tokens.unterminated is not None:
        raise ReadFailure(
            f"the CSV cannot be parsed (EOF inside string starting at row {tokens.unterminated}); "
            "expected comma-separated UTF-8 text"
        )
    # Each builder is let go as soon as its column is joined: its chunks never outlive the column.
    cells = {names[position]: builders.pop(position).cells() for position in list(builders)}
    return Parsed(tuple(names), cells, rows)


def _names(header: list[str]) -> list[str]:
    # As pandas named them: an empty field is "Unnamed: <position>" (validation points at it by position),
    # unless names repeat, when every name is kept as written so a duplicate is reported as itself.
    if len(set(header)) < len(header):
        return header
    return [name or f"Unnamed: {position}" for position, name in enumerate(header)]


# Delimiters people's tools write instead of commas (Excel in locales with a decimal comma writes ';').
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


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


class _Ragged:
    """Data rows whose field count differs from the header's, counted over the whole file."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.sample: list[tuple[int, int]] = []  # (1-based data row, fields)
        self.count = 0
        # Every row has exactly one field more than the header, and it is empty: a comma at each line's end.
        self.trailing_comma = True

    def add(self, chunk: Chunk, before: int) -> None:
        if chunk.regular(self.width):
            self.trailing_comma = False
            return
        widths = chunk.widths()
        off = np.flatnonzero(widths != self.width)
        if not len(off):
            self.trailing_comma = False
            return
        self.trailing_comma = (
            self.trailing_comma
            and len(off) == len(widths)
            and bool((widths == self.width + 1).all())
            and all(chunk.record(int(i))[-1] == "" for i in off)
        )
        self.count += len(off)
        self.sample += [(before + int(i) + 1, int(widths[i])) for i in off[: SAMPLE_SIZE - len(self.sample)]]

    def refuse(self) -> None:
        if not self.count:
            return
        expected = self.width
        rows = [row for row, _ in self.sample]
        if self.trailing_comma:
            raise ReadFailure(
                f"every data row ends with a comma the header does not have: the rows have {expected + 1} "
                f"fields, the header {expected}; remove the comma at the end of each row",
                rows=rows,
                count=self.count,
            )
        first_row, first_fields = self.sample[0]
        first = f"row {first_row} has {first_fields} {'field' if first_fields == 1 else 'fields'}"
        if self.count == 1:
            what = f"{first}, the header has {expected}"
        else:
            others = ", ".join(f"row {row} has {fields}" for row, fields in self.sample[1:])
            what = (
                f"{self.count} data rows do not have the header's {expected} fields: {first}"
                + (f", {others}" if others else "")
                + ("" if self.count <= len(self.sample) else ", …")
            )
        raise ReadFailure(
            f"{what}; expected every row to have exactly {expected} comma-separated fields "
            "(quote values that contain commas)",
            rows=rows,
            count=self.count,
        )
