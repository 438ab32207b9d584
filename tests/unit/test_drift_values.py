"""Captured values read without pandas give exactly what headrace.profile's pandas rules give, value for
value: the numbers a drift check bins and the category counts it compares are the trainer's."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from headrace.drift.values import category_counts, numeric_values
from headrace.profile import CategoricalProfile
from headrace.profile import numeric_values as pandas_numeric_values

TRICKY = [
    "1", "1.5", " 2 ", "\t3\n", "1e3", "1E3", "+3", "-4", "-0", "1.", ".5", "-.5", "+.5e-3", "1e", "1e+",
    "e5", "--1", "inf", "-inf", "Infinity", "nan", "NaN", "NA", "null", "", " ", "1_000", "0x10", "1,5", "1d",
    "\uff11",
    "true", "True", " FALSE ", "yes", "1e308", "1e309", "1e-308", "1e-400", "1e-700", "0e400", "1e400",
    "9" * 400, "0." + "0" * 30 + "123", "123456789012345678901234567890", "12\0", "1.5\0x", "1e99999999999",
    "0.1", "0.30000000000000004", "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308",
]  # fmt: skip


def _same(ours: npt.NDArray[np.float64], theirs: npt.NDArray[np.float64]) -> None:
    assert ours.dtype == np.float64
    assert ours.tobytes() == theirs.tobytes() or np.array_equal(ours, theirs, equal_nan=True)
    # bit for bit where both are numbers (a last-bit difference would move a value across a bin edge)
    both = ~np.isnan(theirs)
    assert ours[both].tolist() == theirs[both].tolist()
    assert np.isnan(ours[~both]).all()


def _check(values: list[Any]) -> None:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    _same(numeric_values(column), pandas_numeric_values(pd.Series(column, dtype=object)))


def _decimal(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
    point = rng.randint(0, len(digits))
    text = f"{rng.choice(['', '-', '+'])}{digits[:point]}.{digits[point:]}"
    return text + (f"e{rng.randint(-330, 320)}" if rng.random() < 0.4 else "")


def test_tricky_text_parses_as_pandas_parses_it() -> None:
    for value in TRICKY:
        _check([value])
    _check(TRICKY)


def test_long_decimals_get_pandas_last_bit_not_the_correctly_rounded_one() -> None:
    rng = random.Random(7)
    values = [_decimal(rng) for _ in range(20_000)]
    _check(values)
    # the case that matters: float() and pandas disagree on many of these, and we side with pandas
    assert any(float(v) != pandas_numeric_values(pd.Series([v], dtype=object))[0] for v in values[:200])


@pytest.mark.parametrize("extra", [[], ["1.5"], ["x"], [None], ["-1"], [-1], [2.0]])
def test_large_integers_depend_on_the_whole_column_as_in_pandas(extra: list[Any]) -> None:
    rng = random.Random(3)
    integers = [str(rng.randint(2**53, 2**64 - 1)) for _ in range(300)]
    _check(integers + extra)
    _check([str(rng.randint(-(2**63), -(2**53))) for _ in range(300)] + extra)
    _check(["1" * 25, "12", *extra])


def test_json_values_parse_as_pandas_parses_them() -> None:
    _check([1, 2.5, True, False, None, "3", "true", [1], {"a": 1}, float("nan"), float("inf"), 2**60])
    _check([1, 2, 3, True])
    _check([2**64 - 1, -1])


def test_category_counts_match_the_profile_bin_counts() -> None:
    profile = CategoricalProfile(
        count=0, missing_rate=0.0, categories=["a", "1", "True", ""], counts={}, frequencies={}
    )
    values = ["a", " a ", "b", None, float("nan"), "", " ", 1, 1.0, True, "1", "True", "x", "a"]
    column = np.empty(len(values), dtype=object)
    column[:] = values
    assert category_counts(profile, column).tolist() == profile.bin_counts(pd.Series(column)).tolist()
    # 1, 1.0 and True are one value to pandas.factorize, named by the first seen
    other = np.array([True, 1, 1.0, "a"], dtype=object)
    assert category_counts(profile, other).tolist() == profile.bin_counts(pd.Series(other)).tolist()


def test_columns_of_captured_text_count_as_their_frame_does() -> None:
    from headrace.drift import partial_from_columns, partial_from_frame
    from headrace.profile import FeatureInfo, build_profile

    rng = np.random.default_rng(5)
    training = pd.DataFrame(
        {
            "x": rng.normal(size=3_000).round(3),
            "n": rng.integers(0, 9, 3_000),
            "c": rng.choice(["a", "b"], 3_000),
        }
    )
    profile = build_profile(training, FeatureInfo(features=["x", "n", "c"], categorical={"c": ["a", "b"]}))
    # as captured: CSV text of training values and of others, JSON values, junk
    text = (
        [str(v) for v in training["x"][:500]]
        + [repr(v) for v in rng.normal(size=400)]
        + ["x", "", None, 2, True]
    )
    ints = [str(v) for v in training["n"][:900]] + ["1.0", "-", None, 3, False]
    cats = [*training["c"][:900], " a", "z", None, 1, ""]
    columns = {
        name: np.fromiter(values, dtype=object, count=len(values))
        for name, values in {"x": text, "n": ints, "c": cats}.items()
    }
    frame = pd.DataFrame(columns, dtype=object)
    for chunk_rows in (64, 65_536):
        ours = partial_from_columns(profile, columns, chunk_rows=chunk_rows)
        theirs = partial_from_frame(profile, frame, chunk_rows=chunk_rows)
        assert ours.rows == theirs.rows == 905
        assert ours.missing.tolist() == theirs.missing.tolist()
        assert [c.tolist() for c in ours.numeric] == [c.tolist() for c in theirs.numeric]
        assert [c.tolist() for c in ours.categorical] == [c.tolist() for c in theirs.categorical]
    with pytest.raises(ValueError, match="no column c"):
        partial_from_columns(profile, {"x": columns["x"], "n": columns["n"]})
