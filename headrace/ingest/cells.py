"""The cells a file is read into, whichever its format: numbers (NaN where null or not one) or text
(codes into distinct values), and the words that read as null or as a boolean."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from headrace.config import Column

# Cells read as null. "NA" is included because pandas users write it; a category that is literally one of
# these tokens is exempted for its own column (see `null_tokens`), so a region called "NA" stays a value.
NULL_TOKENS = frozenset(
    {"", "NA", "N/A", "n/a", "#N/A", "NaN", "nan", "-nan", "NULL", "null", "None", "<NA>"}
)
# Boolean cells in words (compared stripped and lower-cased), besides columns of 1/0 numbers.
TRUE_TOKENS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_TOKENS = ("false", "f", "no", "n", "0", "0.0")

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
Objects = npt.NDArray[np.object_]
Ints = npt.NDArray[np.int64]
# A text cell's index into its column's distinct values (int32: a third of a category column's memory).
Codes = npt.NDArray[np.int32]
# Cells as they would be quoted in a problem: the values pandas held for them (sample_values shows them).
Shown = Callable[[list[int]], list[Any]]


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


def null_tokens(column: Column) -> frozenset[str]:
    """The column's null tokens: every token, except a category's own declared values."""
    return NULL_TOKENS - set(column.categories or [])
