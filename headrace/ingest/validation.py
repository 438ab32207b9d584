"""Pure checks of a dropped file against its model's `DataSchema`: every broken rule, not just the first.

Three layers, cheapest first: the object's name and size (`check_upload`, before any download), the bytes
(empty, binary, encoding, parseable), then the parsed file (`check_parsed`: columns, rows, and per column
types, nulls, ranges and categories, all vectorized). `inspect` runs them all; a layer whose input is
unusable (a binary file cannot have columns) ends the inspection with what was found so far.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from headrace.config import Column, ColumnType, DataSchema
from headrace.ingest.cells import Cells, Numbers, Parsed
from headrace.ingest.parquet import parse_parquet
from headrace.ingest.problems import SAMPLE_SIZE, Problem, Rule, clip, sample_values
from headrace.ingest.reading import EXTENSIONS, ReadFailure, binary_signature, format_for, parse_csv
from headrace.ingest.table import Array, Table
from headrace.ledger import FileFormat

NUMERIC = (ColumnType.INTEGER, ColumnType.FLOAT)
MEGABYTE = 1024 * 1024
# surrogateescape maps each undecodable byte to one lone surrogate in this range (PEP 383).
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Inspection:
    """The verdict on one file. `frame` holds typed values for statistics: numeric and boolean columns
    as float64 (booleans as 1.0/0.0, NaN where null or bad), category and string columns as str (None where
    null or bad).
    """

    problems: list[Problem]
    format: FileFormat | None = None
    frame: Table | None = field(default=None, repr=False)
    columns: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.problems and self.frame is not None

    @property
    def rows(self) -> int:
        return 0 if self.frame is None else self.frame.rows


def check_upload(name: str, size: int, schema: DataSchema) -> list[Problem]:
    """The rules an object's name and size decide, so an oversized or misnamed file is never downloaded."""
    problems: list[Problem] = []
    limit = schema.max_file_mb * MEGABYTE
    if size > limit:
        problems.append(
            Problem(
                rule=Rule.SIZE,
                message=f"the file is {size / MEGABYTE:.1f} MB ({size} bytes); this model accepts files of "
                f"at most {schema.max_file_mb:g} MB (schema.max_file_mb): split it into smaller files",
                values=[str(size)],
            )
        )
    if format_for(name) is None:
        suffix = name.rsplit(".", 1)[1] if "." in name else ""
        problems.append(
            Problem(
                rule=Rule.FORMAT,
                message=f"'{name}' has "
                + (f"the unsupported extension '.{suffix}'" if suffix else "no file extension")
                + f"; expected one of {', '.join(sorted(EXTENSIONS))}",
                values=[f".{suffix}" if suffix else name],
            )
        )
    return problems


def inspect(name: str, data: bytes, schema: DataSchema) -> Inspection:
    """Every problem of the file `name` holding `data`, plus the typed table when it could be read."""
    problems = check_upload(name, len(data), schema)
    kind = format_for(name)
    if kind is None or problems:
        return Inspection(problems, kind)
    if not data.strip():
        what = "empty (0 bytes)" if not data else f"blank ({len(data)} bytes of whitespace only)"
        problems.append(
            Problem(
                rule=Rule.EMPTY,
                message=f"the file is {what}; expected a header and at least {schema.min_rows} data rows",
            )
        )
        return Inspection(problems, kind)
    try:
        if kind is FileFormat.PARQUET:
            parsed = parse_parquet(data, schema)
        else:
            text_problems, text = _check_text(data)
            problems += text_problems
            if text is None:
                return Inspection(problems, kind)
            parsed = parse_csv(text, schema)
    except ReadFailure as failure:
        rule = Rule.PARQUET_CORRUPT if kind is FileFormat.PARQUET else Rule.FORMAT
        problems.append(Problem(rule=rule, message=failure.message, rows=failure.rows, count=failure.count))
        return Inspection(problems, kind)
    parsed_problems, typed = check_parsed(parsed, schema)
    return Inspection(problems + parsed_problems, kind, typed, list(parsed.names))


def _check_text(data: bytes) -> tuple[list[Problem], bytes | str | None]:
    """A CSV must be UTF-8 text. Returns what to parse: the bytes themselves, text with undecodable bytes
    replaced (so the other rules still run), or None when the file is binary and parsing is pointless."""
    signature = binary_signature(data)
    nul = data.find(b"\x00")
    if signature is not None or nul >= 0:
        looks = (
            f"it looks like {signature}" if signature else f"it contains NUL bytes (the first at byte {nul})"
        )
        hint = " (name it .parquet)" if signature == "Parquet data" else ""
        return [
            Problem(
                rule=Rule.BINARY,
                message=f"the file is not text: {looks}; expected a UTF-8 text CSV{hint}",
                values=[data[:8].hex(" ")],
            )
        ], None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return [_encoding_problem(data, error)], data.decode("utf-8", errors="replace")
    return [], data


def _encoding_problem(data: bytes, error: UnicodeDecodeError) -> Problem:
    escaped = data.decode("utf-8", errors="surrogateescape")
    found = [m.start() for m in _ESCAPED_BYTE.finditer(escaped)]
    samples = found[:SAMPLE_SIZE]
    # Line n (0 = the header) is data row n when no quoted value spans lines, which is the common case.
    rows = [line for line in (escaped.count("\n", 0, at) for at in samples) if line >= 1]
    byte_values = [f"0x{ord(escaped[at]) - 0xDC00:02X}" for at in samples]
    line = data.count(b"\n", 0, error.start)
    where = "the header" if line == 0 else f"data row {line}"
    return Problem(
        rule=Rule.ENCODING,
        message=f"the file is not valid UTF-8: byte offset {error.start} ({byte_values[0]}, in {where}) "
        f"cannot be decoded, {len(found)} undecodable {_plural(len(found), 'byte')} in all; "
        "expected UTF-8 text (re-save it as 'CSV UTF-8')",
        rows=rows,
        values=byte_values,
        count=len(found),
    )


def check_parsed(parsed: Parsed, schema: DataSchema) -> tuple[list[Problem], Table]:
    """Column, row and cell rules on a parsed file; returns the problems and the typed table."""
    problems = _column_problems(parsed.names, schema)
    rows = parsed.rows
    if rows == 0:
        problems.append(
            Problem(
                rule=Rule.HEADER_ONLY,
                message=f"the file has a header but no data rows; expected at least {schema.min_rows} rows",
            )
        )
    elif rows < schema.min_rows:
        problems.append(
            Problem(
                rule=Rule.MIN_ROWS,
                message=f"the file has {rows} data {_plural(rows, 'row')}; this model needs at least "
                f"{schema.min_rows} (schema.min_rows)",
                values=[str(rows)],
            )
        )
    typed: dict[str, Array] = {}
    for column in schema.columns:
        cells = parsed.cells.get(column.name)
        if cells is None:
            continue  # missing, or duplicated (already reported): its cells cannot be judged
        cell_problems, typed[column.name] = check_cells(cells, column, schema.max_null_fraction)
        problems += cell_problems
    return problems, Table.of(typed, rows)


def _column_problems(names: tuple[str, ...], schema: DataSchema) -> list[Problem]:
    expected = [c.name for c in schema.columns]
    counts = Counter(names)
    problems: list[Problem] = []
    missing = [name for name in expected if name not in counts]
    if missing:
        problems.append(
            Problem(
                rule=Rule.MISSING_COLUMNS,
                message=f"the file lacks {len(missing)} required {_plural(len(missing), 'column')}: "
                f"{', '.join(missing)}; expected the columns {', '.join(expected)}",
                values=sample_values(missing),
                count=len(missing),
            )
        )
    unexpected = [name for name in counts if name not in expected]
    if unexpected:
        shown = [_column_label(names, name) for name in unexpected]
        problems.append(
            Problem(
                rule=Rule.UNEXPECTED_COLUMNS,
                message=f"the file has {len(unexpected)} {_plural(len(unexpected), 'column')} the schema "
                f"does not declare: {_names(shown)}; expected only the columns {', '.join(expected)}",
                values=sample_values(shown),
                count=len(unexpected),
            )
        )
    duplicated = [name for name, n in counts.items() if n > 1]
    if duplicated:
        positions = {name: [i + 1 for i, c in enumerate(names) if c == name] for name in duplicated}
        described = "; ".join(
            f"'{clip(name)}' appears {len(at)} times (columns {', '.join(map(str, at))})"
            for name, at in positions.items()
        )
        problems.append(
            Problem(
                rule=Rule.DUPLICATE_COLUMNS,
                message=f"the header names {_plural(len(duplicated), 'a column', 'columns')} more than once: "
                f"{described}; expected each column once (rename or remove the copies)",
                values=sample_values(duplicated),
                count=len(duplicated),
            )
        )
    return problems


# How reading names a column whose header field is empty (as pandas did).
_UNNAMED = re.compile(r"Unnamed: (\d+)")


def _column_label(names: tuple[str, ...], name: str) -> str:
    """A column as a person would point at it: its name, or where it is when its header field is empty."""
    unnamed = _UNNAMED.fullmatch(name)
    if unnamed is None:
        return name
    position = int(unnamed.group(1)) + 1
    hint = " (does the header line end with a comma?)" if position == len(names) else ""
    return f"column {position}, which has no name{hint}"


def _names(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(clip(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_cells(cells: Cells, column: Column, max_null_fraction: float) -> tuple[list[Problem], Array]:
    """Nulls, types, ranges and categories of one column; returns its problems and typed values."""
    null = cells.null
    problems = _null_problems(cells, null, column, max_null_fraction)
    present = ~null
    if isinstance(cells, Numbers):
        numbers = cells.values
        if column.type is ColumnType.BOOLEAN:
            bad = present & np.isnan(numbers)
            problems += _type_problem(cells, bad, column)
            return problems, numbers
        bad = present & ~np.isfinite(numbers)
        if column.type is ColumnType.INTEGER:
            # "3" and "3.0" are integers, "3.5" is not; NaN/inf are already bad, so mask them out of fmod.
            bad |= present & ~bad & (np.fmod(np.where(bad, 0.0, numbers), 1.0) != 0.0)
        problems += _type_problem(cells, bad, column)
        good = present & ~bad
        problems += _range_problems(cells, numbers, good, column)
        # A null is NaN already, so an accepted column is typed as read: no copy of the file's largest part.
        return problems, numbers if bool(good[present].all()) else np.where(good, numbers, np.nan)
    if column.type is ColumnType.CATEGORY:
        categories = column.categories or []
        allowed = set(categories)
        known = np.fromiter((value in allowed for value in cells.distinct), np.bool_, len(cells.distinct))
        bad = present & ~known[np.where(present, cells.codes, 0)]
        problems += _category_problem(cells, bad, column, categories)
        present &= ~bad
    return problems, cells.values(present)


def _located(rule: Rule, cells: Cells, mask: Mask, column: Column, message: str) -> Problem:
    positions = np.flatnonzero(mask)
    sample = positions[:SAMPLE_SIZE]
    values = [] if rule is Rule.NULLS else sample_values(cells.shown(sample.tolist()))
    return Problem(
        rule=rule,
        column=column.name,
        message=message,
        rows=(sample + 1).tolist(),
        values=values,
        count=len(positions),
    )


def _null_problems(cells: Cells, null: Mask, column: Column, max_null_fraction: float) -> list[Problem]:
    nulls = int(null.sum())
    if not nulls:
        return []
    if not column.nullable:
        message = (
            f"{nulls} {_plural(nulls, 'row')} {_plural(nulls, 'has', 'have')} no value for '{column.name}', "
            "which is not nullable; expected a value in every row"
        )
        return [_located(Rule.NULLS, cells, null, column, message)]
    fraction = nulls / len(null)
    if fraction <= max_null_fraction:
        return []
    message = (
        f"{fraction:.1%} of '{column.name}' is null ({nulls} of {len(null)} rows); expected at most "
        f"{max_null_fraction:.0%} nulls in a nullable column (schema.max_null_fraction)"
    )
    problem = _located(Rule.NULL_FRACTION, cells, null, column, message)
    return [problem.model_copy(update={"values": []})]


_EXPECTED_TYPE = {
    ColumnType.INTEGER: "whole numbers (like 3 or 3.0)",
    ColumnType.FLOAT: "finite numbers (like 12.5)",
    ColumnType.BOOLEAN: "booleans (true/false, yes/no or 1/0)",
}


def _type_problem(cells: Cells, bad: Mask, column: Column) -> list[Problem]:
    count = int(bad.sum())
    if not count:
        return []
    message = f"{_values_are(count, column)} not {column.type.value}; expected {_EXPECTED_TYPE[column.type]}"
    return [_located(Rule.TYPE, cells, bad, column, message)]


def _range_problems(cells: Cells, numbers: Floats, good: Mask, column: Column) -> list[Problem]:
    below: Mask = good & (numbers < column.min) if column.min is not None else np.zeros_like(good)
    above: Mask = good & (numbers > column.max) if column.max is not None else np.zeros_like(good)
    outside = below | above
    count = int(outside.sum())
    if not count:
        return []
    parts = []
    if column.min is not None and below.any():
        parts.append(f"{int(below.sum())} below the minimum {column.min:g}")
    if column.max is not None and above.any():
        parts.append(f"{int(above.sum())} above the maximum {column.max:g}")
    if column.min is not None and column.max is not None:
        allowed = f"between {column.min:g} and {column.max:g}"
    elif column.min is not None:
        allowed = f"at least {column.min:g}"
    else:
        allowed = f"at most {column.max:g}"
    message = f"{_values_are(count, column)} out of range ({', '.join(parts)}); expected values {allowed}"
    return [_located(Rule.RANGE, cells, outside, column, message)]


def _category_problem(cells: Cells, bad: Mask, column: Column, categories: list[str]) -> list[Problem]:
    count = int(bad.sum())
    if not count:
        return []
    message = f"{_values_are(count, column)} not a known category; expected one of {', '.join(categories)}"
    return [_located(Rule.CATEGORY, cells, bad, column, message)]


def _values_are(count: int, column: Column) -> str:
    """How each column problem's message starts: "3 values in 'age' are"."""
    return f"{count} {_plural(count, 'value')} in '{column.name}' {_plural(count, 'is', 'are')}"


def _plural(count: int, one: str, many: str | None = None) -> str:
    return one if count == 1 else (many or f"{one}s")
