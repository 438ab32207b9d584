"""`frame_from_codes` undoes `RowEncoder.encode`: for any cells, the frame it rebuilds from the encoder's
codes is the frame `model_input` (the trainer's encoding) gives for the same cells, dtypes and categories
included, so user code sees at serving time exactly what it saw in training."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.encoding import RowEncoder, frame_from_codes, model_input

FEATURES = ["tenure", "region", "charges", "plan", "active"]
CATEGORICAL = {"region": ["north", "south", "east"], "plan": ["basic", "pro", "1", "2.5"]}
NUMERIC_CELLS: list[Any] = [
    0,
    7,
    -3,
    2.5,
    -0.0,
    1e300,
    "12",
    " 4.25 ",
    "1e3",
    "true",
    "False",
    True,
    False,
    None,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "NA",
    "null",
    "inf",
    "0.1000000000000000055511151231257827",
]
CATEGORY_CELLS: list[Any] = [
    "north",
    " south ",
    "east",
    "west",  # not a declared category: missing, as in training
    "North",
    "",
    None,
    math.nan,
    1,  # the text "1" is a declared plan
    2.5,
    "pro",
    "basic",
]


def _cells(generator: random.Random, rows: int) -> list[list[Any]]:
    return [
        [generator.choice(CATEGORY_CELLS if name in CATEGORICAL else NUMERIC_CELLS) for name in FEATURES]
        for _ in range(rows)
    ]


def _trained_on(rows: list[list[Any]]) -> pd.DataFrame:
    # Each column as the cells it holds (object dtype), as a channel's mixed column reaches model_input.
    frame = pd.DataFrame(
        {name: pd.Series([row[i] for row in rows], dtype=object) for i, name in enumerate(FEATURES)}
    )
    return model_input(frame, FEATURES, CATEGORICAL)


@pytest.mark.parametrize("seed", range(40))
def test_the_frame_rebuilt_from_codes_is_the_training_frame_of_the_same_cells(seed: int) -> None:
    generator = random.Random(seed)
    rows = _cells(generator, generator.randint(1, 60))
    matrix = RowEncoder.of(FEATURES, CATEGORICAL).encode(rows)
    rebuilt = frame_from_codes(matrix, FEATURES, CATEGORICAL)
    pd.testing.assert_frame_equal(rebuilt, _trained_on(rows), check_exact=True)


def test_categoricals_keep_the_declared_categories_in_order_even_when_unseen() -> None:
    rebuilt = frame_from_codes(
        RowEncoder.of(FEATURES, CATEGORICAL).encode([[1, "east", 2, "west", 0]]), FEATURES, CATEGORICAL
    )
    assert list(rebuilt.columns) == FEATURES
    assert list(rebuilt["region"].cat.categories) == CATEGORICAL["region"]
    assert list(rebuilt["plan"].cat.categories) == CATEGORICAL["plan"]
    assert rebuilt["region"].tolist() == ["east"]
    assert pd.isna(rebuilt["plan"].iloc[0])  # an unknown category is missing
    assert [str(rebuilt[name].dtype) for name in ("tenure", "charges", "active")] == ["float64"] * 3


def test_the_frame_does_not_share_memory_with_the_matrix() -> None:
    matrix = RowEncoder.of(FEATURES, CATEGORICAL).encode([[1, "east", 2, "pro", 0]])
    rebuilt = frame_from_codes(matrix, FEATURES, CATEGORICAL)
    matrix[:] = 99.0
    assert rebuilt["tenure"].tolist() == [1.0]
    assert rebuilt["plan"].tolist() == ["pro"]


def test_a_matrix_of_another_width_names_the_features_it_needs() -> None:
    with pytest.raises(ValueError, match=r"5 column\(s\) \(tenure, region, charges, plan, active\)"):
        frame_from_codes(np.zeros((2, 3)), FEATURES, CATEGORICAL)
