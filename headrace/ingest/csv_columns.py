"""A CSV column's cells, built chunk by chunk into numpy arrays. pandas' read_csv is reproduced where files
could tell (its import was most of the ingest function's cold start, issue 15): cells are typed as its
inference typed them (a column is numbers, true/false words or text), and a number is what pandas reads as
one, not what Python's float() accepts."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from itertools import compress
from typing import Any

import numpy as np

from headrace.config import Column, ColumnType
from headrace.ingest.cells import (
    FALSE_TOKENS,
    TRUE_TOKENS,
    Cells,
    Codes,
    Floats,
    Mask,
    Numbers,
    Objects,
    Text,
    null_tokens,
)
from headrace.ingest.csv_tokens import Tokens
from headrace.ingest.problems import SAMPLE_SIZE
from headrace.text_numbers import number

# The words pandas' reader types as booleans (any case, nothing around them): a column of only these is
# boolean, and a numeric column of only these holds 1/0.
_LITERALS = {"true": 1.0, "false": 0.0}


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
    """One column's cells, added chunk by chunk (`plain` as `Chunk.plain`), then joined."""

    @abstractmethod
    def add(self, cells: Sequence[str], plain: bool) -> None: ...

    @abstractmethod
    def cells(self) -> Cells: ...


def builder_for(column: Column, data: bytes | str, position: int) -> _Builder:
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
    for chunk in Tokens(data).chunks():
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
