"""headrace.text_numbers against what it stands in for: pandas.to_numeric(errors="coerce")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.text_numbers import to_floats

CELLS: list[Any] = [
    "1", " 1 ", "\t2\n", "+5", "-0.5", "1.", ".5", "1e3", "1E-3", "1e999", "-2e308", "1e-400",
    "inf", "-Infinity", "INF", "nan", "NaN", "", " ", "abc", "None", "True", "false",
    "0x10", "1,5", "1 000", "1_000", "1d3",
    "\u0661\u0662", "\u0661", "\u00bd",  # Arabic-Indic digits 12 and 1, one half
    0, 7, -3.25, True, False, None, float("nan"),
]  # fmt: skip


def _same(ours: np.ndarray, theirs: np.ndarray) -> bool:
    return bool(np.array_equal(ours, theirs, equal_nan=True))


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_each_cell_parses_as_pandas_parses_it(cell: Any) -> None:
    expected = pd.to_numeric(pd.Series([cell], dtype=object), errors="coerce").to_numpy(dtype=np.float64)

    assert _same(to_floats(np.array([cell], dtype=object)), expected)


def test_a_column_of_text_numbers_takes_the_fast_path_and_agrees() -> None:
    cells = np.array([f"{x:.6g}" for x in np.random.default_rng(1).normal(size=1000)], dtype=object)

    expected = pd.to_numeric(pd.Series(cells), errors="coerce").to_numpy(dtype=np.float64)
    assert _same(to_floats(cells), expected)


def test_one_bad_cell_leaves_the_others_parsed() -> None:
    assert _same(to_floats(np.array(["1", "1_0", "x", "2"], dtype=object)), np.array([1, np.nan, np.nan, 2]))


def test_a_column_mixing_everything_agrees_with_pandas() -> None:
    cells = np.array(CELLS, dtype=object)

    expected = pd.to_numeric(pd.Series(cells), errors="coerce").to_numpy(dtype=np.float64)
    assert _same(to_floats(cells), expected)
