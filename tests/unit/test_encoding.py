"""Row-by-row input encoding shared by serving: edge values a client may send."""

from __future__ import annotations

import math

import pytest

from headrace.encoding import EncodingError, RowEncoder

ENCODER = RowEncoder.of(["tenure", "region"], {"region": ["north", "south"]})


def test_an_integer_past_float_range_is_missing_not_a_server_fault() -> None:
    matrix = ENCODER.encode([[10**400, "south"], [-(10**400), "north"]])
    assert math.isnan(matrix[0, 0]) and math.isnan(matrix[1, 0])
    assert (matrix[0, 1], matrix[1, 1]) == (1.0, 0.0)


def test_text_in_a_numeric_feature_names_the_row_and_column() -> None:
    with pytest.raises(EncodingError, match="row 1, column 0 \\('tenure'\\)"):
        ENCODER.encode([[3, "north"], ["ten", "north"]])
