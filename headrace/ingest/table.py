"""A validated file as named numpy columns: float64 for numbers and booleans (1.0/0.0), object arrays of str
for text, NaN or None where a cell is null or bad. What ingest needs of a frame, without pandas' import
(about 300 ms of the ingest function's cold start, issue 15).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Table:
    names: tuple[str, ...]
    arrays: tuple[Array, ...]
    rows: int

    def __post_init__(self) -> None:
        if len(self.names) != len(self.arrays) or any(len(a) != self.rows for a in self.arrays):
            raise ValueError("a table needs one array per name, each as long as the table")

    @classmethod
    def of(cls, columns: Mapping[str, Array], rows: int | None = None) -> Table:
        """The columns in the mapping's order; `rows` is needed only when there are no columns."""
        arrays = tuple(columns.values())
        return cls(tuple(columns), arrays, len(arrays[0]) if arrays else rows or 0)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> Array:
        return self.arrays[self.names.index(name)]

    def select(self, names: Iterable[str]) -> Table:
        return Table.of({name: self[name] for name in names}, self.rows)

    def slice(self, start: int, stop: int) -> Table:
        """Rows start to stop (exclusive), as views of these arrays."""
        arrays = tuple(a[start:stop] for a in self.arrays)
        return Table(self.names, arrays, len(range(self.rows)[start:stop]))
