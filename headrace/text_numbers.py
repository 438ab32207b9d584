"""Cells to floats without pandas: what `pandas.to_numeric(values, errors="coerce")` gives for text and JSON
scalars, at the cost of numpy alone (a Lambda that imports pandas pays ~300 ms more at cold start).

Python's `float()` accepts what pandas parses (surrounding whitespace, `1e3`, `.5`, `+5`, `inf`, `nan`) and
three things pandas refuses, which are refused here too: digit separators (`1_000`), non-ASCII digits
(`١٢`) and numbers beyond a double's range (`1e999`, which float() rounds to infinity).
tests/unit/test_text_numbers.py holds the two to the same answers.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_INFINITY = re.compile(r"[+-]?inf(inity)?", re.IGNORECASE)


def to_floats(values: npt.NDArray[Any]) -> FloatArray:
    """`values` (text, numbers, booleans, None) as floats; NaN where a value is missing or not a number."""
    array = np.asarray(values, dtype=object)
    if all(isinstance(value, str) for value in array.flat) and _plain("".join(array.flat)):
        try:
            parsed = array.astype(np.float64)  # one C loop for the usual all-numbers chunk
        except ValueError:
            pass
        else:
            if not np.isinf(parsed).any():
                return parsed
    return np.fromiter((_float(value) for value in array.flat), dtype=np.float64, count=array.size)


def number(text: str) -> float | None:
    """A cell as pandas reads a number (ASCII digits, blanks around them allowed, inf spelled out), or None.

    Python's float() takes more: "1_000", non-ASCII digits and blanks, "nan" and an overflowing "1e400"; to
    pandas those are text. (Ingest's CSV reader reads numbers by this rule too.)"""
    if not _plain(text):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or (math.isinf(value) and not _INFINITY.fullmatch(text)):
        return None
    return value


def _plain(text: str) -> bool:
    return text.isascii() and "_" not in text


def _float(value: Any) -> float:
    if isinstance(value, str):
        parsed = number(value.strip())
        return np.nan if parsed is None else parsed
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return np.nan
