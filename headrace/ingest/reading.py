"""Bytes to cells: which format a file is (extension, confirmed by magic bytes) and how to parse it.

Reading is deliberately tolerant about types (the validator judges them) and strict about structure: a
file whose rows cannot be split into the header's columns raises `ReadFailure`, never a half-read file.

CSV is parsed by the stdlib csv module (by str.split where no cell is quoted) into numpy arrays, chunk by
chunk, so memory follows the typed columns rather than the text. Importing pandas was most of the ingest
function's cold start (290 of 552 ms, issue 15), so its read_csv is reproduced where files could tell:
cells are typed as its inference typed them (a column is numbers, true/false words or text), and a number
is what pandas reads as one, not what Python's float() accepts.
"""

from __future__ import annotations

import csv
import io
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from headrace.config import Column, ColumnType, DataSchema
from headrace.ingest.problems import SAMPLE_SIZE, clip
from headrace.ledger import FileFormat
from headrace.text_numbers import number

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

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
# Boolean cells in words (compared stripped and lower-cased), besides columns of 1/0 numbers.
TRUE_TOKENS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_TOKENS = ("false", "f", "no", "n", "0", "0.0")
# The words pandas' reader types as booleans (any case, nothing around them): a column of only these is
# boolean, and a numeric column of only these holds 1/0.
_LITERALS = {"true": 1.0, "false": 0.0}
# Infinity as pandas reads it; with blanks around it, or an overflowing number like 1e400, it is text.

# Files are parsed in pieces of about this size (a line is never split), so the text of the whole file is
# never held as cells at once: only the typed columns grow with the file.
BLOCK_CHARS = 4 * 1024 * 1024
BLOCK_RECORDS = 32_768
# Appended to a quoted file's lines: when it ends up inside a cell, the file ends inside a quoted cell.
_END = "\uffffheadrace: end of file\uffff"

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
Objects = npt.NDArray[np.object_]
Ints = npt.NDArray[np.int64]
# A text cell's index into its column's distinct values (int32: a third of a category column's memory).
Codes = npt.NDArray[np.int32]
# Cells as they would be quoted in a problem: the values pandas held for them (sample_values shows them).
Shown = Callable[[list[int]], list[Any]]


class ReadFailure(Exception):
    """The file's structure cannot be read; `rows` holds 1-based data row numbers where that is known."""

    def __init__(self, message: str, rows: list[int] | None = None, count: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.rows = rows or []
        self.count = count


@dataclass(frozen=True)
class Numbers:
    """An integer, float or boolean column: each cell as a float (a boolean as 1.0 or 0.0), NaN where it is
    null or is not one; `shown` gives cells by 0-based row as a problem quotes them."""

    values: Floats
    null: Mask
    shown: Shown = field(repr=False)


@dataclass(frozen=True)
class Text:
    """A string or category column: each cell's index into `distinct`, -1 where it is null."""

    codes: Codes
    distinct: Objects

    @property
    def null(self) -> Mask:
        return self.codes < 0

    def shown(self, rows: list[int]) -> list[Any]:
        return list(self.distinct[self.codes[rows]])

    def values(self, keep: Mask) -> Objects:
        """The cells as str where `keep` holds (never where null), None elsewhere."""
        values = np.empty(len(self.distinct) + 1, dtype=object)  # the last one, None, for code -1
        values[:-1] = self.distinct
        kept: Objects = values[np.where(keep, self.codes, -1)]
        return kept


Cells = Numbers | Text


@dataclass(frozen=True)
class Parsed:
    """A file as read: its column names (as written, repeats included), the cells of each schema column
    that the file names exactly once, and its number of data rows."""

    names: tuple[str, ...]
    cells: dict[str, Cells]
    rows: int


def file_name(key: str) -> str:
    return PurePosixPath(key).name


def format_for(name: str) -> FileFormat | None:
    """The format a file claims by its extension (case-insensitive), or None for an unsupported one."""
    return EXTENSIONS.get(PurePosixPath(name).suffix.lower())


def binary_signature(data: bytes) -> str | None:
    return next((what for magic, what in BINARY_SIGNATURES.items() if data.startswith(magic)), None)


def null_tokens(column: Column) -> frozenset[str]:
    """The column's null tokens: every token, except a category's own declared values."""
    return NULL_TOKENS - set(column.categories or [])


def parse_csv(data: bytes | str, schema: DataSchema) -> Parsed:
    """Parse CSV text; string and category columns stay text, the others are typed as pandas typed them.

    Structure is explained in a person's words (issue 14, finding 9): a ';'-separated file, rows with more or
    fewer fields than the header, a file that ends inside a quoted cell. Blank lines are skipped, a leading
    byte-order mark (Excel writes one) is dropped, and duplicated column names are kept as written.
    """
    tokens = _Tokens(data)
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
        position: _builder(declared[name], data, position)
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


class _Chunk(ABC):
    """Consecutive records of a file, blank lines left out."""

    # Known to hold only ASCII and no "_": no cell is a number to Python that is text to pandas.
    plain = False

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def record(self, index: int) -> list[str]: ...

    @abstractmethod
    def without_first(self) -> _Chunk: ...

    @abstractmethod
    def widths(self) -> Ints: ...

    def regular(self, width: int) -> bool:
        """Whether every record has `width` fields."""
        return bool((self.widths() == width).all())

    @abstractmethod
    def column(self, position: int, width: int) -> Sequence[str]:
        """One column's cells; every record must have `width` fields."""


class _Lines(_Chunk):
    """Records without quotes or carriage returns: a line each, its fields split on commas."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        # One split for the whole chunk (the fast part), a "\n" field between lines to check widths by.
        text = ",\n,".join(lines)
        self.plain = text.isascii() and "_" not in text
        self.fields = text.split(",")

    def __len__(self) -> int:
        return len(self.lines)

    def record(self, index: int) -> list[str]:
        return self.lines[index].split(",")

    def without_first(self) -> _Lines:
        return _Lines(self.lines[1:])

    def regular(self, width: int) -> bool:
        lines, fields = len(self.lines), self.fields
        # Line ends are single-character strings, which CPython shares: count() compares identities.
        return len(fields) == lines * (width + 1) - 1 and fields[width :: width + 1].count("\n") == lines - 1

    def widths(self) -> Ints:
        commas = np.fromiter(map(str.count, self.lines, repeat(",")), np.int64, len(self.lines))
        return commas + 1

    def column(self, position: int, width: int) -> Sequence[str]:
        return self.fields[position :: width + 1]


class _Records(_Chunk):
    """Records as the csv module split them (quoted cells, any line ends)."""

    def __init__(self, records: list[list[str]]) -> None:
        self.records = records
        self._columns: list[tuple[str, ...]] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def record(self, index: int) -> list[str]:
        return self.records[index]

    def without_first(self) -> _Records:
        return _Records(self.records[1:])

    def widths(self) -> Ints:
        return np.fromiter(map(len, self.records), np.int64, len(self.records))

    def column(self, position: int, width: int) -> Sequence[str]:
        if self._columns is None:
            self._columns = list(zip(*self.records, strict=True))
        return self._columns[position]


class _Tokens:
    """A CSV file's records, chunk by chunk. Like pandas: lines that are empty or hold only spaces and tabs
    are skipped, and a lone carriage return ends a line."""

    def __init__(self, data: bytes | str) -> None:
        self.data = data
        # pandas' number (0-based, counting every line) of the record the file ends inside, if it does.
        self.unterminated: int | None = None

    def chunks(self) -> Iterator[_Chunk]:
        data = self.data
        if isinstance(data, bytes):
            quoted, returns = b'"' in data, b"\r" in data
            lone = returns and data.count(b"\r") != data.count(b"\r\n")
        else:
            quoted, returns = '"' in data, "\r" in data
            lone = returns and data.count("\r") != data.count("\r\n")
        if quoted or lone:
            return self._records()
        return self._lines(returns)

    def _lines(self, crlf: bool) -> Iterator[_Lines]:
        for block in _blocks(self.data):
            if crlf:
                block = block.replace("\r\n", "\n")
            lines = block.split("\n")
            if block.startswith((" ", "\t")) or "\n " in block or "\n\t" in block:
                lines = [line for line in lines if line.strip(" \t")]
            elif "" in lines:
                lines = list(filter(None, lines))
            yield _Lines(lines)

    def _records(self) -> Iterator[_Records]:
        data = self.data
        source: io.TextIOBase = (
            io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="replace", newline="")
            if isinstance(data, bytes)
            else io.StringIO(data.removeprefix("\ufeff"), newline="")
        )
        # The csv module refuses a cell over 128 KiB, pandas did not: the upload's size limit bounds a cell.
        csv.field_size_limit(max(csv.field_size_limit(), len(data) + len(_END)))
        reader = csv.reader(chain(source, [_END]))
        seen = 0
        while records := list(islice(reader, BLOCK_RECORDS)):
            last = records[-1]
            if last == [_END]:
                records.pop()
            elif last and last[-1].endswith(_END):
                last[-1] = last[-1].removesuffix(_END)
                self.unterminated = seen + len(records) - 1
            seen += len(records)
            yield _Records([r for r in records if r and (len(r) > 1 or r[0].strip(" \t"))])


def _blocks(data: bytes | str) -> Iterator[str]:
    """The text in pieces of about BLOCK_CHARS that end at a line end, the byte-order mark left out."""
    if isinstance(data, str):
        start = 1 if data.startswith("\ufeff") else 0
        while start < len(data):
            end = data.find("\n", start + BLOCK_CHARS) + 1 or len(data)
            yield data[start:end]
            start = end
        return
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while start < len(data):
        # A line end is never inside a UTF-8 sequence, so each piece decodes by itself.
        end = data.find(b"\n", start + BLOCK_CHARS) + 1 or len(data)
        yield data[start:end].decode("utf-8", errors="replace")
        start = end


class _Ragged:
    """Data rows whose field count differs from the header's, counted over the whole file."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.sample: list[tuple[int, int]] = []  # (1-based data row, fields)
        self.count = 0
        # Every row has exactly one field more than the header, and it is empty: a comma at each line's end.
        self.trailing_comma = True

    def add(self, chunk: _Chunk, before: int) -> None:
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


def _plain_numbers(cells: Sequence[str], integers: bool, plain: bool) -> Floats | None:
    """The cells as floats when every one is a finite number pandas and Python read alike, else None.

    A column of few distinct values (a count, a flag, a rating) parses each value once; Python's int() is
    three times faster than its float(), so an integer column tries it first."""
    try:
        head = cells[:1024]
        if len(set(head)) * 16 <= len(head):
            parsed = {text: float(text) for text in dict.fromkeys(cells)}
            values = np.fromiter(map(parsed.__getitem__, cells), np.float64, len(cells))
            cells = list(parsed)  # what the check below must look at
        elif integers:
            try:
                values = np.fromiter(map(int, cells), np.int64, len(cells)).astype(np.float64)
            except (ValueError, OverflowError):
                values = np.array(cells, dtype=np.float64)
        else:
            values = np.array(cells, dtype=np.float64)
    except ValueError:
        return None
    if not np.isfinite(values).all():
        return None
    if not plain:
        joined = "".join(cells)
        if not joined.isascii() or "_" in joined:
            return None
    return values


def _numbers(cells: Sequence[str], integers: bool) -> tuple[Floats, Mask | None]:
    """The cells as numbers (NaN where not one), and which are not numbers (None when all are)."""
    values = _plain_numbers(cells, integers, plain=False)
    if values is not None:
        return values, None
    parsed = [number(cell) for cell in cells]
    missing = np.fromiter((value is None for value in parsed), np.bool_, len(parsed))
    values = np.array([math.nan if value is None else value for value in parsed], np.float64)
    return values, (missing if missing.any() else None)


class _Builder(ABC):
    """One column's cells, added chunk by chunk (`plain` as `_Chunk.plain`), then joined."""

    @abstractmethod
    def add(self, cells: Sequence[str], plain: bool) -> None: ...

    @abstractmethod
    def cells(self) -> Cells: ...


def _builder(column: Column, data: bytes | str, position: int) -> _Builder:
    tokens = null_tokens(column)
    if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
        return _NumberBuilder(tokens, column.type is ColumnType.INTEGER, data, position)
    if column.type is ColumnType.BOOLEAN:
        return _BooleanBuilder(tokens)
    if column.type is ColumnType.CATEGORY:
        return _CodeBuilder(tokens)
    return _TextBuilder(tokens)


class _NumberBuilder(_Builder):
    """An integer or float column. pandas typed a column of numbers as numbers, one of true/false words as
    booleans (1/0), and any other as text, whose cells it then converted one by one: words became NaN."""

    def __init__(self, tokens: frozenset[str], integers: bool, data: bytes | str, position: int) -> None:
        self.tokens = tokens
        self.integers = integers
        self.data = data
        self.position = position
        self.values: list[Floats] = []
        self.nulls: list[Mask] = []
        self.literals: dict[int, float] = {}  # row -> 1/0 for true/false words
        self.words: dict[int, str] = {}  # the first cells that are neither number nor true/false, as written
        self.rows = 0
        self.present = 0
        self.only_numbers = True

    def add(self, cells: Sequence[str], plain: bool) -> None:
        self.rows += len(cells)
        values = _plain_numbers(cells, self.integers, plain)  # the common case: no nulls, all numbers
        if values is not None:
            self.values.append(values)
            self.nulls.append(np.zeros(len(cells), np.bool_))
            self.present += len(cells)
            return
        first = self.rows - len(cells)
        null = np.fromiter(map(self.tokens.__contains__, cells), np.bool_, len(cells))
        at = np.flatnonzero(~null)
        present = list(compress(cells, (~null).tolist())) if len(at) < len(cells) else cells
        parsed, missing = _numbers(present, self.integers)
        values = np.full(len(cells), math.nan)
        values[at] = parsed
        self.values.append(values)
        self.nulls.append(null)
        if missing is not None:
            self.only_numbers = False
            for index in np.flatnonzero(missing):
                row, cell = first + int(at[index]), present[index]
                literal = _LITERALS.get(cell.lower())
                if literal is not None:
                    self.literals[row] = literal
                elif len(self.words) < SAMPLE_SIZE:
                    self.words[row] = cell
        self.present += len(at)

    def cells(self) -> Numbers:
        values = np.concatenate(self.values) if self.values else np.empty(0)
        null = np.concatenate(self.nulls) if self.nulls else np.empty(0, np.bool_)
        if self.only_numbers:
            return Numbers(values, null, lambda rows: values[rows].tolist())
        if len(self.literals) == self.present:
            values[list(self.literals)] = list(self.literals.values())
            return Numbers(values, null, lambda rows: [bool(values[row]) for row in rows])
        return Numbers(values, null, _AsWritten(self.data, self.position, self.words))


class _AsWritten:
    """Cells of a column as written, for the problems of a column pandas would have read as text: the first
    few words are kept while reading; any other cell is read again (a rejected file only, a few cells)."""

    def __init__(self, data: bytes | str, position: int, known: dict[int, str]) -> None:
        self.data = data
        self.position = position
        self.known = dict(known)

    def __call__(self, rows: list[int]) -> list[Any]:
        wanted = sorted({row for row in rows if row not in self.known})
        if wanted:
            self.known.update(zip(wanted, _cells_at(self.data, self.position, wanted), strict=True))
        return [self.known[row] for row in rows]


def _cells_at(data: bytes | str, position: int, rows: list[int]) -> list[str]:
    """The cells of one column at the given 0-based data rows (ascending), read again from the start."""
    found: list[str] = []
    wanted = iter(rows)
    row = next(wanted)
    before = -1  # the header is record -1
    for chunk in _Tokens(data).chunks():
        while row - before < len(chunk):
            found.append(chunk.record(row - before)[position])
            row = next(wanted, -1)
            if row < 0:
                return found
        before += len(chunk)
    raise LookupError(f"data row {row + 1} is not in the file")


class _CodeBuilder(_Builder):
    """A category column: each distinct value is held once, each cell as its index."""

    def __init__(self, tokens: frozenset[str]) -> None:
        self.tokens = tokens
        self.index: dict[str, int] = {}
        self.codes: list[Codes] = []

    def add(self, cells: Sequence[str], plain: bool) -> None:
        index = self.index
        try:
            codes = np.fromiter(map(index.__getitem__, cells), np.int32, len(cells))
        except KeyError:  # values not seen before: add the chunk's distinct ones (in C, few per chunk)
            for value in dict.fromkeys(cells):
                index.setdefault(value, len(index))
            codes = np.fromiter(map(index.__getitem__, cells), np.int32, len(cells))
        self.codes.append(codes)

    def cells(self) -> Text:
        distinct = np.array(list(self.index), dtype=object)
        nulls = np.fromiter(map(self.tokens.__contains__, distinct), np.bool_, len(distinct))
        recode = np.where(nulls, -1, np.arange(len(distinct), dtype=np.int32))
        codes = recode[np.concatenate(self.codes)] if self.codes else np.empty(0, np.int32)
        return Text(codes, distinct)


class _BooleanBuilder(_Builder):
    """A boolean column, read as distinct words first. Typed as pandas typed it: a column of numbers holds
    booleans as 0 and 1 (other numbers are not booleans), any other holds words, compared stripped and
    lower-cased with TRUE_TOKENS and FALSE_TOKENS."""

    def __init__(self, tokens: frozenset[str]) -> None:
        self.tokens = tokens
        self.words = _CodeBuilder(tokens)

    def add(self, cells: Sequence[str], plain: bool) -> None:
        self.words.add(cells, plain)

    def cells(self) -> Numbers:
        text = self.words.cells()
        words: list[str] = list(self.words.index)
        present = [code for code, word in enumerate(words) if word not in self.tokens]
        flags = np.full(len(words) + 1, math.nan)  # the last one for a null's code, -1
        numbers = [number(words[code]) for code in present]
        shown: Callable[[str], Any] = str
        # A column of true/false words reads the same either way: as booleans, or as words.
        if all(value is not None for value in numbers):
            flags[present] = [value if value in (0.0, 1.0) else math.nan for value in numbers]
            shown = number
        else:
            for code in present:
                word = words[code].strip().lower()
                flags[code] = 1.0 if word in TRUE_TOKENS else 0.0 if word in FALSE_TOKENS else math.nan
        codes = text.codes
        return Numbers(flags[codes], text.null, lambda rows: [shown(words[codes[row]]) for row in rows])


class _TextBuilder(_Builder):
    """A string column: every cell kept as written (free text seldom repeats)."""

    def __init__(self, tokens: frozenset[str]) -> None:
        self.tokens = tokens
        self.chunks: list[Objects] = []
        self.nulls: list[Mask] = []

    def add(self, cells: Sequence[str], plain: bool) -> None:
        values = np.empty(len(cells), dtype=object)
        values[:] = cells
        self.chunks.append(values)
        self.nulls.append(np.fromiter(map(self.tokens.__contains__, cells), np.bool_, len(cells)))

    def cells(self) -> Text:
        distinct = np.concatenate(self.chunks) if self.chunks else np.empty(0, dtype=object)
        null = np.concatenate(self.nulls) if self.nulls else np.empty(0, np.bool_)
        return Text(np.where(null, -1, np.arange(len(distinct), dtype=np.int32)), distinct)


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


def read_parquet(data: bytes) -> pd.DataFrame:
    """A Parquet dataset as a pandas frame, for the trainer's splits (ingest reads with `parse_parquet`);
    raises ReadFailure for a truncated or invalid file."""
    import pandas as pd

    frame: pd.DataFrame = _parquet_table(data).to_pandas()
    # Dictionary-encoded columns arrive as pandas Categoricals; the trainer wants plain values.
    for position, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.CategoricalDtype):
            frame.isetitem(position, frame.iloc[:, position].astype(object).to_numpy())
    return frame
