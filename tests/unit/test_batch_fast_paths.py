"""Issue 17's batch speed-ups give the same numbers as the paths they shortcut: the ingest's header-less
input written by Arrow parses, in the serving container, to the very doubles pandas' to_csv gave; the
container's column-wise CSV encoding (batch mode) equals its row encoder bit for bit, and leaves every
irregular body to the row encoder; the drift check's Arrow read of that input gives back the validated
doubles and the counts pandas' read gave."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from headrace.batch.monitor import scored_rows
from headrace.config import ModelConfig, load_models
from headrace.datagen import generate
from headrace.drift import DriftReference, compile_reference, partial_from_frame
from headrace.encoding import RowEncoder
from headrace.ingest.batch import batch_schema, header_less_csv
from headrace.ingest.table import Table
from headrace.ingest.validation import inspect
from headrace.profile import build_profile

REPO = Path(__file__).resolve().parents[2]
SERVE = Path(__file__).resolve().parents[2] / "containers" / "serve"
if str(SERVE) not in sys.path:
    sys.path.insert(0, str(SERVE))  # the container's import root, as its `serve` script sets

from inference.payload import csv_columns, csv_rows  # noqa: E402


@pytest.fixture(scope="module")
def churn() -> ModelConfig:
    return next(m for m in load_models(REPO / "models") if m.name == "churn")


def _validated(model: ModelConfig, rows: int) -> tuple[Table, RowEncoder]:
    schema = batch_schema(model.data)
    frame = generate(model, rows, seed=11).drop(columns=[model.data.target])
    nullable = next(c.name for c in schema.columns if c.nullable)
    floats = [c.name for c in schema.columns if c.type == "float"]
    # Nulls, tiny numbers and long decimals: where float formatting could differ.
    frame.loc[frame.index[::7], nullable] = None
    frame.loc[frame.index[1::13], floats[0]] = frame[floats[0]].iloc[1::13] * 1e-9
    inspection = inspect("b.csv", frame.to_csv(index=False).encode(), schema)
    assert inspection.accepted and inspection.frame is not None, inspection.problems
    features = [c.name for c in schema.columns]
    categorical = {c.name: list(c.categories or []) for c in schema.columns if c.categories}
    return inspection.frame.select(features), RowEncoder.of(features, categorical)


def _pandas(table: Table) -> pd.DataFrame:
    return pd.DataFrame(dict(zip(table.names, table.arrays, strict=True)))


def _row_encoded(body: bytes, encoder: RowEncoder) -> np.ndarray:
    return encoder.encode(csv_rows(body, encoder.features))


def test_arrow_written_input_parses_to_the_same_doubles_as_pandas(churn: ModelConfig) -> None:
    table, encoder = _validated(churn, 20_000)
    old = io.StringIO()
    _pandas(table).to_csv(old, header=False, index=False)
    new = header_less_csv(table)
    assert new != old.getvalue().encode()  # really another writer
    assert np.array_equal(
        _row_encoded(new, encoder).view(np.uint64),
        _row_encoded(old.getvalue().encode(), encoder).view(np.uint64),
    )


def test_a_value_that_needs_quoting_is_written_quoted_as_pandas_wrote_it() -> None:
    table = Table.of({"x": np.array([1.5, np.nan]), "c": np.array(["a,b", "c"], dtype=object)})
    assert header_less_csv(table) == b'1.5,"a,b"\n,c\n'
    assert header_less_csv(table) == _pandas(table).to_csv(header=False, index=False).encode()


def test_column_wise_encoding_equals_the_row_encoder(churn: ModelConfig) -> None:
    table, encoder = _validated(churn, 50_000)
    body = header_less_csv(table)
    # Spaces around a category and a category the model does not know: coded as the row encoder codes them.
    body = body.replace(b",north,", b", north ,", 50).replace(b",east,", b",mars,", 50)
    columns = csv_columns(body, encoder)
    assert columns is not None
    assert np.array_equal(columns.view(np.uint64), _row_encoded(body, encoder).view(np.uint64))


@pytest.mark.parametrize(
    "body",
    [
        b"1,2\n",  # too few cells
        b'1,2.5,3,"one-year",card,1,north,0\n',  # quoted
        b"1,2.5,3,one-year,card,1,north,0\n\n1,2.5,3,one-year,card,1,north,0\n",  # a blank line
        b"1,2.5,3,one-year,card,1,north,true\n",  # a word the row encoder reads
        b"1,x,3,one-year,card,1,north,0\n",  # a mistake the row encoder explains
    ],
)
def test_irregular_bodies_are_left_to_the_row_encoder(churn: ModelConfig, body: bytes) -> None:
    _, encoder = _validated(churn, 10)
    assert csv_columns(body, encoder) is None


def test_the_monitor_reads_the_transform_input_back_to_the_validated_doubles(churn: ModelConfig) -> None:
    table, _ = _validated(churn, 20_000)
    frame = _pandas(table)
    reference = _drift_reference(churn)
    read = scored_rows(header_less_csv(table), table.names, reference)
    for feature in reference.numeric:
        assert np.array_equal(
            read[feature.name].to_numpy(np.float64).view(np.uint64),
            frame[feature.name].to_numpy(np.float64).view(np.uint64),
        ), feature.name
    for category in reference.categorical:
        assert read[category.name].isna().equals(frame[category.name].isna())
        assert (read[category.name].dropna() == frame[category.name].dropna().astype(str)).all()


def test_the_monitor_s_arrow_read_counts_as_pandas_read_did(churn: ModelConfig) -> None:
    table, _ = _validated(churn, 50_000)
    reference = _drift_reference(churn)
    body = header_less_csv(table)
    before = pd.read_csv(io.BytesIO(body), header=None, names=list(table.names), low_memory=False)
    old = partial_from_frame(reference, before)
    new = partial_from_frame(reference, scored_rows(body, table.names, reference))
    assert new.rows == old.rows == table.rows
    assert np.array_equal(new.missing, old.missing) and new.missing.sum() > 0
    assert all(np.array_equal(a, b) for a, b in zip(new.numeric, old.numeric, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(new.categorical, old.categorical, strict=True))


def _drift_reference(model: ModelConfig) -> DriftReference:
    return compile_reference(build_profile(generate(model, 5_000, seed=3), model.data))


def test_words_in_a_numeric_column_are_counted_as_pandas_read_counted_them(churn: ModelConfig) -> None:
    raw = generate(churn, 5_000, seed=13).drop(columns=[churn.data.target])
    raw["senior"] = raw["senior"].astype(str).str.lower()
    body = raw.to_csv(header=False, index=False).encode()
    assert b",true\n" in body  # a word where Arrow was told to read a double
    reference = _drift_reference(churn)
    before = pd.read_csv(io.BytesIO(body), header=None, names=list(raw.columns), low_memory=False)
    old = partial_from_frame(reference, before)
    new = partial_from_frame(reference, scored_rows(body, tuple(raw.columns), reference))
    assert np.array_equal(new.missing, old.missing)
    assert all(np.array_equal(a, b) for a, b in zip(new.numeric, old.numeric, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(new.categorical, old.categorical, strict=True))
