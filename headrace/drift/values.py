"""Captured values read as the trainer reads them, with numpy and the standard library only.

A drift check's Partial step counts captured requests; importing pandas for that cost a third of a second of
every cold start (bench/cold_start.py). The rules are `headrace.profile`'s, which the trainer and serving
share, and `tests/unit/test_drift_values.py` checks these functions against them value for value:

- `numeric_values`: `headrace.profile.numeric_values` on an object column, i.e. `pandas.to_numeric(...,
  errors="coerce")` as pandas 2.x computes it (its `maybe_convert_numeric` over `precise_xstrtod`, the parser
  `read_csv` uses for the training channels, which is not always the correctly rounded one `float` is), then
  "true"/"false" as 1/0 and non-finite as missing;
- `category_counts`: `CategoricalProfile.bin_counts`, i.e. `pandas.factorize` (equal values are one value,
  the first seen names it), each distinct value as text with surrounding spaces dropped.

A column here is a 1-D object array of what the requests held: text from CSV, or JSON's str, int, float,
bool and None.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from headrace.profile import TRUE_FALSE, CategoricalProfile

ObjectArray = npt.NDArray[np.object_]
FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]

# precise_xstrtod (pandas/_libs/src/parser/tokenizer.c, pandas 2.x): 17 significant digits at most, its
# powers of ten as C double literals (correctly rounded, as float() of the same text is).
_MAX_DIGITS: Final = 17
_POWERS: Final = tuple(float(f"1e{k}") for k in range(309))
_SPACE: Final = frozenset(" \t\n\v\f\r")  # its isspace_ascii
_DIGITS: Final = frozenset("0123456789")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_UINT64_MAX: Final = 2**64 - 1


def _int32(value: int) -> int:
    """C int arithmetic (the exponent's accumulator wraps like the C code's)."""
    return (value + 2**31) % 2**32 - 2**31


def _digits(s: str, i: int, number: float, digits: int) -> tuple[float, int, int, int]:
    """Digits from `i` into `number` while fewer than 17 were taken: (number, digits, taken, next index)."""
    taken = 0
    while digits < _MAX_DIGITS and i < len(s) and s[i] in _DIGITS:
        number = number * 10.0 + (ord(s[i]) - 48)
        i, digits, taken = i + 1, digits + 1, taken + 1
    return number, digits, taken, i


def _skip(s: str, i: int, chars: frozenset[str]) -> int:
    while i < len(s) and s[i] in chars:
        i += 1
    return i


def _exponent(s: str, i: int) -> tuple[int, int]:
    """After an "e": its signed value (C int arithmetic, 17 digits at most) and the next index; an "e" with
    no digits is not consumed."""
    sign = -1 if i < len(s) and s[i] == "-" else 1
    start = i + 1 if i < len(s) and s[i] in "+-" else i
    power, count, i = 0, 0, start
    while count < _MAX_DIGITS and i < len(s) and s[i] in _DIGITS:
        power = _int32(power * 10 + ord(s[i]) - 48)
        count, i = count + 1, i + 1
    return (sign * power, i) if count else (0, start - 1)


def _scale(number: float, exponent: int) -> float:
    if exponent > 0:
        return number * _POWERS[exponent]
    if exponent < -616:
        return 0.0
    if exponent < -308:  # subnormal
        return number / _POWERS[-308 - exponent] / _POWERS[308]
    return number / _POWERS[-exponent]


def _xstrtod(text: str) -> tuple[float, bool] | None:
    """`precise_xstrtod` + `to_double`: the value and whether the text is an integer literal, or None where
    pandas reports an error (no digits, trailing text, out of range)."""
    s = text.split("\0", 1)[0]  # a C string ends at NUL
    i = _skip(s, 0, _SPACE)
    negative = s.startswith("-", i)
    i += 1 if s.startswith(("-", "+"), i) else 0
    # Integer digits past the 17th only scale the number.
    number, digits, _, i = _digits(s, i, 0.0, 0)
    after = _skip(s, i, _DIGITS)
    exponent, i, maybe_int = after - i, after, True
    if s.startswith(".", i):
        maybe_int = False
        number, digits, decimals, i = _digits(s, i + 1, number, digits)
        i = _skip(s, i, _DIGITS) if digits >= _MAX_DIGITS else i
        exponent -= decimals
    if digits == 0:
        return None
    number = -number if negative else number
    if i < len(s) and s[i] in "eE":
        maybe_int = False
        power, i = _exponent(s, i + 1)
        exponent = _int32(exponent + power)
    if exponent > 308:
        return None
    number = _scale(number, exponent)
    i = _skip(s, i, _SPACE)
    return (number, maybe_int) if i == len(s) and not math.isinf(number) else None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _word(value: Any) -> float:
    """Where a value is not a number: "true"/"false" text (any case, spaces dropped) as 1/0."""
    if _is_missing(value):
        return math.nan
    return TRUE_FALSE.get(str(value).strip().lower(), math.nan)


class _Column:
    """What pandas.to_numeric learns of a column while converting it: the dtype it ends with decides how
    integer literals become floats."""

    def __init__(self, count: int) -> None:
        self.floats = np.full(count, np.nan)
        self.exact: dict[int, int] = {}  # integer literals by position, used if the column is all integers
        self.floating = self.signed = self.unsigned = False
        self.parsed: dict[str, tuple[float, bool] | None] = {}

    def integer(self, whole: int) -> None:
        self.signed, self.unsigned = self.signed or whole < 0, self.unsigned or whole > _INT64_MAX
        self.floating = self.floating or not _INT64_MIN <= whole <= _UINT64_MAX

    def text(self, position: int, value: str) -> None:
        if value not in self.parsed:
            self.parsed[value] = _xstrtod(value)
        result = self.parsed[value]
        if result is None or (result[1] and "\0" in value):  # int(text) fails on NUL: coerced
            self.floats[position], self.floating = _word(value), True
            return
        self.floats[position], maybe_int = result
        if not maybe_int:
            self.floating = True
            return
        whole = int(value)
        self.integer(whole)
        if _INT64_MIN <= whole <= _UINT64_MAX:
            self.exact[position] = whole

    def result(self) -> FloatArray:
        if not self.floating and not (self.signed and self.unsigned):
            # An all-integer column is converted from the integers themselves (correctly rounded).
            for position, whole in self.exact.items():
                self.floats[position] = float(whole)
        self.floats[~np.isfinite(self.floats)] = np.nan
        return self.floats


def numeric_values(values: ObjectArray) -> FloatArray:
    """A column as floats: booleans and "true"/"false" as 1/0; missing, unparseable, infinite: NaN."""
    column = _Column(len(values))
    for position, value in enumerate(values):
        if isinstance(value, bool):
            column.floats[position] = float(value)
        elif isinstance(value, int):
            column.floats[position] = float(value)
            column.integer(value)
        elif isinstance(value, float):
            column.floats[position], column.floating = value, True
        elif isinstance(value, str) and value:
            column.text(position, value)
        else:  # None, empty text, lists and objects: coerced to missing
            column.floats[position], column.floating = _word(value), True
    return column.result()


def category_counts(profile: CategoricalProfile, values: ObjectArray) -> CountArray:
    """Counts per bucket (`profile.buckets` order) of `values`; missing values are not counted."""
    position = {category: i for i, category in enumerate(profile.categories)}
    other = len(profile.categories)
    counts = np.zeros(other + 1, dtype=np.int64)
    # Equal values are one value, named by the first seen (as pandas.factorize groups them).
    tally: dict[Any, list[Any]] = {}
    for value in values:
        if _is_missing(value):
            continue
        try:
            hash(value)
            key = value
        except TypeError:  # a list or object in a JSON request: by its text
            key = (_Unhashable, str(value))
        seen = tally.get(key)
        if seen is None:
            tally[key] = [value, 1]
        else:
            seen[1] += 1
    for first, times in tally.values():
        counts[position.get(str(first).strip(), other)] += times
    return counts


class _Unhashable:
    """Tags the text of an unhashable value, so that it never equals a value that is that text."""
