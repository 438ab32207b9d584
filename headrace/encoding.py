"""How a model's input is encoded: one definition shared by the trainer and the inference container.

The trainer turns channel frames into XGBoost's input with `model_input`; serving turns request rows into
the same numbers with `encode_rows`, which never builds a DataFrame (a single row must cost microseconds)
but applies the same rules, with the same converters:
- a categorical feature is its value as text, surrounding spaces dropped (`headrace.profile.category_values`),
  coded by its position in the declared categories; a value outside them is missing;
- any other feature is a number parsed by `pandas.to_numeric`, booleans and "true"/"false" as 1/0,
  infinities missing (`headrace.profile.numeric_values`). `pandas.to_numeric` is the parser `read_csv` uses
  for the training channels (not always the correctly rounded one Python's `float` is: they differ in the
  last bit for about one long decimal in eight), so a value sent as text reaches the model as the same double.
Pure numpy/pandas, so both containers (and Lambda) can import it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.profile import TRUE_FALSE, category_values, numeric_values

FloatMatrix = npt.NDArray[np.float64]

_FLOAT_LIMIT: Final = 2**1024
# The spellings CSV writers use, mapped before parsing: pandas.to_numeric is slow on text it rejects.
_WORDS: Final = {"True": "1", "False": "0", "true": "1", "false": "0", "TRUE": "1", "FALSE": "0"}
# Text a numeric cell may hold to say "no value" (pandas.read_csv's own missing markers, in part).
MISSING_TEXT: Final = frozenset({"", "nan", "na", "n/a", "null", "none"})
# A decimal number literal (ASCII digits only, as pandas parses them).
_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?")


def model_input(
    frame: pd.DataFrame, features: Sequence[str], categorical: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """The model's input: categoricals with the declared categories, every other feature as float."""
    columns: dict[str, Any] = {}
    for name in features:
        if name in categorical:
            columns[name] = pd.Categorical(category_values(frame[name]), categories=list(categorical[name]))
        else:
            columns[name] = numeric_values(frame[name])
    return pd.DataFrame(columns, index=frame.index)


def frame_from_codes(
    matrix: FloatMatrix, features: Sequence[str], categorical: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """The inverse of `RowEncoder.encode`: the frame `model_input` gives for the same cells (numerics as
    float64, categoricals as pandas Categoricals of the declared categories, missing where a code is NaN),
    so a model that takes frames (user code) sees at serving time exactly what it saw in training."""
    if matrix.ndim != 2 or matrix.shape[1] != len(features):
        raise ValueError(
            f"expected a matrix of {len(features)} column(s) ({', '.join(features)}), "
            f"got shape {matrix.shape}"
        )
    matrix = np.asarray(matrix, dtype=np.float64)
    columns: dict[str, Any] = {}
    for i, name in enumerate(features):
        column = matrix[:, i]
        if name in categorical:
            # pandas-stubs type the codes as a Sequence[int]; pandas takes (and wants) an integer array.
            codes: Sequence[int] = np.where(np.isnan(column), -1, column).astype(np.int64)  # type: ignore[assignment]
            columns[name] = pd.Categorical.from_codes(codes, dtype=_categories(tuple(categorical[name])))
        else:
            columns[name] = column
    return pd.DataFrame(columns)  # copies the columns: the frame never aliases the caller's matrix


@functools.lru_cache(maxsize=256)
def _categories(categories: tuple[str, ...]) -> pd.CategoricalDtype:
    # Built once per category list: validating the categories is most of a single row's frame cost.
    return pd.CategoricalDtype(list(categories))


class EncodingError(ValueError):
    """A cell that is not a value of its feature; `row` and `column` say where (rows counted from 0)."""

    def __init__(self, message: str, row: int, column: str) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


@dataclass(frozen=True)
class RowEncoder:
    """Rows of cells (text or JSON scalars, in feature order) → the float matrix XGBoost takes, with
    categoricals as their category codes: the numbers `model_input` gives XGBoost for the same values."""

    features: tuple[str, ...]
    numeric: tuple[int, ...]
    codes: tuple[tuple[int, dict[str, float]], ...]

    @classmethod
    def of(cls, features: Sequence[str], categorical: Mapping[str, Sequence[str]]) -> RowEncoder:
        return cls(
            features=tuple(features),
            numeric=tuple(i for i, name in enumerate(features) if name not in categorical),
            codes=tuple(
                (i, {label: float(code) for code, label in enumerate(categorical[name])})
                for i, name in enumerate(features)
                if name in categorical
            ),
        )

    def encode(self, rows: Sequence[Sequence[Any]]) -> FloatMatrix:
        matrix = np.full((len(rows), len(self.features)), np.nan)
        if self.numeric:
            matrix[:, self.numeric] = self._numbers(rows)
        for column, codes in self.codes:
            target = matrix[:, column]
            for r, row in enumerate(rows):
                value = row[column]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                target[r] = codes.get(str(value).strip(), math.nan)
        return matrix

    def _numbers(self, rows: Sequence[Sequence[Any]]) -> FloatMatrix:
        width = len(self.numeric)
        cells = np.empty(len(rows) * width, dtype=object)
        k = 0
        for row in rows:
            for column in self.numeric:
                value = row[column]
                if isinstance(value, int) and abs(value) >= _FLOAT_LIMIT:
                    # Past float64's range: infinite, hence missing like other infinities (not an overflow).
                    value = math.inf if value > 0 else -math.inf
                cells[k] = _WORDS.get(value, value) if isinstance(value, str) else value
                k += 1
        parsed = np.asarray(pd.to_numeric(cells, errors="coerce"), dtype=np.float64)
        for k in np.flatnonzero(np.isnan(parsed)):
            parsed[k] = self._word(cells[k], int(k) // width, self.numeric[int(k) % width])
        parsed[~np.isfinite(parsed)] = np.nan
        return parsed.reshape(len(rows), width)

    def _word(self, value: Any, row: int, column: int) -> float:
        if value is None or isinstance(value, float):
            return math.nan
        if isinstance(value, str):
            text = value.strip().lower()
            if text in TRUE_FALSE:
                return TRUE_FALSE[text]
            if text in MISSING_TEXT:
                return math.nan
            if _DECIMAL.fullmatch(text):
                # A number past float64's range ("1e400", 5,000 digits), which pandas.to_numeric refuses:
                # infinite, hence missing, as read_csv makes it in training and as the same JSON number is.
                return math.nan
        name = self.features[column]
        shown = repr(value)
        if len(shown) > 100:  # the caller sees which cell, not a megabyte of it echoed back
            shown = f"{shown[:80]}... ({len(str(value))} characters)"
        raise EncodingError(
            f"row {row}, column {column} ('{name}'): {shown} is not a number; '{name}' is a numeric "
            "feature (numbers, true/false, or empty for missing)",
            row,
            name,
        )
