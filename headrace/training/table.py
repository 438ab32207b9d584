"""A dataset's cells as text, row by row: what Prepare reads from a dataset version, splits and writes back.

Prepare copies cells, it never computes on them, so it keeps the exact text of the file and needs neither
pandas (about 300 ms of cold start) nor pyarrow for a CSV dataset: the stdlib csv module reads and writes
the very text pandas' `read_csv(dtype=str, na_filter=False)` and `to_csv(index=False)` did, which the
splits' bytes (and the runs' lineage) were defined by.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
import numpy.typing as npt

Row = tuple[str, ...]


class TableError(ValueError):
    """The text is not a table: no header, or rows whose field count differs from the header's."""


class MissingColumns(TableError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(f"no columns {', '.join(names)}")
        self.names = names


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[Row]

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[str]:
        position = self.columns.index(name)
        return [row[position] for row in self.rows]

    def select(self, names: Sequence[str]) -> Table:
        """These columns in this order; names the table lacks raise MissingColumns, listing every one.
        A duplicated header name means its first column, as pandas (which renames the others) read it."""
        positions: dict[str, int] = {}
        for position, name in enumerate(self.columns):
            positions.setdefault(name, position)
        missing = [name for name in names if name not in positions]
        if missing:
            raise MissingColumns(missing)
        if list(names) == self.columns:
            return self
        picked = [positions[name] for name in names]
        if len(picked) == 1:  # itemgetter of one index returns the cell, not a 1-tuple
            return Table(list(names), [(row[picked[0]],) for row in self.rows])
        pick = itemgetter(*picked)
        return Table(list(names), list(map(pick, self.rows)))

    def take(self, mask: npt.NDArray[np.bool_]) -> Table:
        """The rows where `mask` is true, in their order."""
        rows = self.rows
        return Table(self.columns, [rows[i] for i in np.flatnonzero(mask).tolist()])

    def tail(self, count: int) -> Table:
        return Table(self.columns, self.rows[len(self.rows) - count :]) if count < len(self.rows) else self

    @staticmethod
    def concat(tables: Sequence[Table]) -> Table:
        """Rows one table after another; every table has the same columns (read for one schema)."""
        rows: list[Row] = []
        for table in tables:
            rows.extend(table.rows)
        return Table(tables[0].columns, rows)

    @classmethod
    def from_csv(cls, data: bytes) -> Table:
        """Every cell as the exact text of the file (no type inference, no null tokens), a byte-order mark
        dropped, and blank or whitespace-only lines skipped as pandas' C parser skips them."""
        text = data.decode("utf-8-sig")
        records = (
            tuple(record) for record in csv.reader(io.StringIO(text, newline="")) if not _blank(record)
        )
        header = next(records, None)
        if header is None:
            raise TableError("the file has no header line")
        rows = list(records)
        widths = set(map(len, rows)) - {len(header)}
        if widths:
            # Ingest refuses such a file, so a dataset version never has one; pandas would have padded a
            # short row and turned a long row's first field into an index, silently shifting cells.
            raise TableError(
                f"rows of {', '.join(map(str, sorted(widths)))} fields, the header has {len(header)}"
            )
        return cls(list(header), rows)

    def to_csv(self) -> bytes:
        """Header, no index, "\\n" after each row, quotes only where a cell needs them: pandas'
        `to_csv(index=False, lineterminator="\\n")` byte for byte (it writes with this very csv module)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue().encode("utf-8")


def _blank(record: Sequence[str]) -> bool:
    """An empty line, or one of spaces and tabs only (pandas skips both; a quoted `""` is a cell)."""
    return not record or (len(record) == 1 and record[0] != "" and not record[0].strip(" \t"))


def from_columns(names: Sequence[str], cells: Iterable[Sequence[str]]) -> Table:
    """A table from its columns' cells, one sequence per name."""
    return Table(list(names), list(zip(*cells, strict=True)))
