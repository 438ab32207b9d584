"""A CSV file's records, chunk by chunk: split by the stdlib csv module (by str.split where no cell is
quoted), so memory follows the typed columns rather than the text. `reading.parse_csv` checks their
structure and `csv_columns` types their cells."""

from __future__ import annotations

import csv
import io
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from itertools import chain, islice, repeat

import numpy as np

from headrace.ingest.cells import Ints

# Files are parsed in pieces of about this size (a line is never split), so the text of the whole file is
# never held as cells at once: only the typed columns grow with the file.
BLOCK_CHARS = 4 * 1024 * 1024
BLOCK_RECORDS = 32_768
# Appended to a quoted file's lines: when it ends up inside a cell, the file ends inside a quoted cell.
_END = "\uffffheadrace: end of file\uffff"


class Chunk(ABC):
    """Consecutive records of a file, blank lines left out."""

    # Known to hold only ASCII and no "_": no cell is a number to Python that is text to pandas.
    plain = False

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def record(self, index: int) -> list[str]: ...

    @abstractmethod
    def without_first(self) -> Chunk: ...

    @abstractmethod
    def widths(self) -> Ints: ...

    def regular(self, width: int) -> bool:
        """Whether every record has `width` fields."""
        return bool((self.widths() == width).all())

    @abstractmethod
    def column(self, position: int, width: int) -> Sequence[str]:
        """One column's cells; every record must have `width` fields."""


class _Lines(Chunk):
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


class _Records(Chunk):
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


class Tokens:
    """A CSV file's records, chunk by chunk. Like pandas: lines that are empty or hold only spaces and tabs
    are skipped, and a lone carriage return ends a line."""

    def __init__(self, data: bytes | str) -> None:
        self.data = data
        # pandas' number (0-based, counting every line) of the record the file ends inside, if it does.
        self.unterminated: int | None = None

    def chunks(self) -> Iterator[Chunk]:
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
