"""Validation of dropped files: each rule on a small, otherwise good file built from the data generator."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from headrace.config import Column, ColumnType, DataSchema, ModelConfig
from headrace.datagen import generate
from headrace.ingest.problems import Problem, Rule
from headrace.ingest.validation import check_upload, inspect

ROWS = 600  # the example model needs at least 500


@pytest.fixture
def schema(example_model: ModelConfig) -> DataSchema:
    return example_model.data


@pytest.fixture
def frame(example_model: ModelConfig) -> pd.DataFrame:
    """A good file's content; object dtype so a test may write any value into any cell."""
    return generate(example_model, ROWS, seed=11).astype(object)


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def problems(data: bytes, schema: DataSchema, name: str = "customers.csv") -> list[Problem]:
    return inspect(name, data, schema).problems


def only(found: list[Problem], rule: Rule) -> Problem:
    assert [p.rule for p in found] == [rule], [p.message for p in found]
    return found[0]


def test_a_good_csv_has_no_problems(frame: pd.DataFrame, schema: DataSchema) -> None:
    assert problems(csv(frame), schema) == []


def test_a_good_parquet_file_has_no_problems(example_model: ModelConfig, schema: DataSchema) -> None:
    data = parquet(generate(example_model, ROWS, seed=12))

    assert problems(data, schema, "customers.parquet") == []


def test_a_good_file_yields_a_typed_frame_with_every_row(frame: pd.DataFrame, schema: DataSchema) -> None:
    inspection = inspect("customers.csv", csv(frame), schema)

    assert inspection.accepted
    assert inspection.rows == ROWS
    assert inspection.columns == [c.name for c in schema.columns]


def test_extensions_are_matched_case_insensitively(frame: pd.DataFrame, schema: DataSchema) -> None:
    assert problems(csv(frame), schema, "CUSTOMERS.CSV") == []


def test_a_file_over_the_size_limit_is_refused_from_its_size_alone(schema: DataSchema) -> None:
    size = int(schema.max_file_mb * 1024 * 1024) + 1

    problem = only(check_upload("customers.csv", size, schema), Rule.SIZE)

    assert f"at most {schema.max_file_mb:g} MB" in problem.message
    assert problem.values == [str(size)]


@pytest.mark.parametrize("name", ["customers.txt", "customers.json", "customers"])
def test_an_unsupported_extension_is_a_format_problem(
    name: str, frame: pd.DataFrame, schema: DataSchema
) -> None:
    problem = only(problems(csv(frame), schema, name), Rule.FORMAT)

    assert "expected one of .csv, .parquet, .pq" in problem.message


def test_an_empty_file_is_refused(schema: DataSchema) -> None:
    problem = only(problems(b"", schema), Rule.EMPTY)

    assert "0 bytes" in problem.message


def test_a_file_of_blank_lines_is_refused_as_empty(schema: DataSchema) -> None:
    only(problems(b"\n\n  \r\n", schema), Rule.EMPTY)


def test_nul_bytes_in_a_csv_make_it_binary(frame: pd.DataFrame, schema: DataSchema) -> None:
    data = csv(frame)
    corrupted = data[:40] + b"\x00\x00" + data[40:]

    problem = only(problems(corrupted, schema), Rule.BINARY)

    assert "NUL bytes (the first at byte 40)" in problem.message


def test_parquet_content_named_csv_is_binary_with_a_hint(frame: pd.DataFrame, schema: DataSchema) -> None:
    problem = only(problems(parquet(frame), schema, "customers.csv"), Rule.BINARY)

    assert "Parquet" in problem.message
    assert "name it .parquet" in problem.message


def test_a_latin1_csv_is_an_encoding_problem_naming_the_byte_offset(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    data = csv(frame)
    offset = data.index(b"\n", data.index(b"\n") + 1) + 1  # the start of data row 2
    corrupted = data[:offset] + "é".encode("latin-1") + data[offset:]

    problem = problems(corrupted, schema)[0]  # the cell it landed in is also reported, see below

    assert problem.rule is Rule.ENCODING
    assert f"byte offset {offset}" in problem.message
    assert (problem.values, problem.rows, problem.count) == (["0xE9"], [2], 1)


def test_an_encoding_problem_does_not_hide_the_other_problems(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    frame.loc[0, "region"] = "Zürich".encode().decode("utf-8")
    data = csv(frame).replace("Zürich".encode(), "Zürich".encode("latin-1"))

    found = problems(data, schema)

    assert [p.rule for p in found] == [Rule.ENCODING, Rule.CATEGORY]


def test_a_utf8_byte_order_mark_is_accepted(frame: pd.DataFrame, schema: DataSchema) -> None:
    assert problems(b"\xef\xbb\xbf" + csv(frame), schema) == []


def test_rows_with_extra_fields_are_a_format_problem_listing_every_one(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    lines = csv(frame).decode().splitlines()
    for row in (3, 7):
        lines[row] += ",surplus"

    problem = only(problems("\n".join(lines).encode(), schema), Rule.FORMAT)

    assert (problem.rows, problem.count) == ([3, 7], 2)
    assert f"the header's {len(schema.columns)} fields" in problem.message


def test_a_truncated_parquet_file_is_corrupt(frame: pd.DataFrame, schema: DataSchema) -> None:
    data = parquet(frame)

    problem = only(problems(data[: len(data) // 2], schema, "customers.parquet"), Rule.PARQUET_CORRUPT)

    assert "truncated" in problem.message


def test_a_parquet_file_with_a_damaged_footer_is_corrupt(frame: pd.DataFrame, schema: DataSchema) -> None:
    data = parquet(frame)
    damaged = data[:-12] + b"\xff" * 8 + data[-4:]  # keep the magic, break the footer length and metadata

    only(problems(damaged, schema, "customers.parquet"), Rule.PARQUET_CORRUPT)


def test_text_named_parquet_is_corrupt(frame: pd.DataFrame, schema: DataSchema) -> None:
    problem = only(problems(csv(frame), schema, "customers.parquet"), Rule.PARQUET_CORRUPT)

    assert "PAR1" in problem.message


def test_a_header_without_rows_is_header_only(frame: pd.DataFrame, schema: DataSchema) -> None:
    only(problems(csv(frame.head(0)), schema), Rule.HEADER_ONLY)


def test_a_parquet_file_without_rows_is_header_only(frame: pd.DataFrame, schema: DataSchema) -> None:
    data = parquet(generate_like(frame).head(0))

    only(problems(data, schema, "customers.parquet"), Rule.HEADER_ONLY)


def test_fewer_rows_than_the_schema_asks_for_is_min_rows(frame: pd.DataFrame, schema: DataSchema) -> None:
    problem = only(problems(csv(frame.head(12)), schema), Rule.MIN_ROWS)

    assert f"12 data rows; this model needs at least {schema.min_rows}" in problem.message


def test_missing_columns_are_named(frame: pd.DataFrame, schema: DataSchema) -> None:
    problem = only(problems(csv(frame.drop(columns=["region", "senior"])), schema), Rule.MISSING_COLUMNS)

    assert (problem.values, problem.count) == (["region", "senior"], 2)


def test_unexpected_columns_are_named(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame["customer_id"] = range(ROWS)

    problem = only(problems(csv(frame), schema), Rule.UNEXPECTED_COLUMNS)

    assert problem.values == ["customer_id"]


def test_an_integer_column_accepts_whole_numbers_written_as_floats(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    frame.loc[4, "tenure_months"] = "3.0"

    assert problems(csv(frame), schema) == []


def test_an_integer_column_refuses_fractions(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[4, "tenure_months"] = "3.5"

    problem = only(problems(csv(frame), schema), Rule.TYPE)

    assert (problem.column, problem.rows, problem.values) == ("tenure_months", [5], ["3.5"])


def test_text_in_a_float_column_is_a_type_problem(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[0, "monthly_charges"] = "twelve"
    frame.loc[1, "monthly_charges"] = "inf"

    problem = only(problems(csv(frame), schema), Rule.TYPE)

    assert (problem.values, problem.count) == (["twelve", "inf"], 2)
    assert "expected finite numbers" in problem.message


def test_an_unrecognised_boolean_is_a_type_problem(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[9, "senior"] = "maybe"

    problem = only(problems(csv(frame), schema), Rule.TYPE)

    assert (problem.column, problem.rows, problem.values) == ("senior", [10], ["maybe"])


def test_booleans_accept_the_common_spellings(frame: pd.DataFrame, schema: DataSchema) -> None:
    spellings = ["yes", "No", "1", "0", "TRUE", "f"]
    frame.loc[: len(spellings) - 1, "senior"] = spellings

    assert problems(csv(frame), schema) == []


def test_nulls_in_a_non_nullable_column_are_refused(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[[2, 5], "contract"] = None

    problem = only(problems(csv(frame), schema), Rule.NULLS)

    assert (problem.column, problem.rows, problem.count) == ("contract", [3, 6], 2)


def test_a_few_nulls_in_a_nullable_column_are_fine(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[:20, "total_charges"] = None

    assert problems(csv(frame), schema) == []


def test_a_nan_flood_in_a_nullable_column_is_refused(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[: ROWS // 2, "total_charges"] = "NaN"

    problem = only(problems(csv(frame), schema), Rule.NULL_FRACTION)

    assert problem.column == "total_charges"
    assert f"at most {schema.max_null_fraction:.0%}" in problem.message


def test_values_outside_the_range_are_refused(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[3, "tenure_months"] = -1
    frame.loc[8, "tenure_months"] = 121

    problem = only(problems(csv(frame), schema), Rule.RANGE)

    assert (problem.rows, problem.values) == ([4, 9], ["-1", "121"])
    assert "1 below the minimum 0, 1 above the maximum 120" in problem.message


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [({"min": 0.0}, "expected values at least 0"), ({"max": 10.0}, "expected values at most 10")],
)
def test_a_column_with_one_bound_is_checked_against_it(bounds: dict[str, float], expected: str) -> None:
    schema = DataSchema(
        columns=[
            Column(name="x", type=ColumnType.FLOAT, **bounds),
            Column(name="y", type=ColumnType.INTEGER),
        ],
        target="y",
        min_rows=1,
    )

    problem = only(problems(b"x,y\n-1,1\n11,2\n5,3\n", schema), Rule.RANGE)

    assert problem.message.endswith(expected)


def test_an_unknown_category_is_refused(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[7, "region"] = "atlantis"

    problem = only(problems(csv(frame), schema), Rule.CATEGORY)

    assert (problem.column, problem.rows, problem.values) == ("region", [8], ["atlantis"])
    assert "expected one of north, south, east, west" in problem.message


def test_a_category_spelled_like_a_null_token_is_a_value() -> None:
    schema = DataSchema(
        columns=[
            Column(name="market", type=ColumnType.CATEGORY, categories=["NA", "EU"]),
            Column(name="sold", type=ColumnType.INTEGER),
        ],
        target="sold",
        min_rows=1,
    )

    assert problems(b"market,sold\nNA,3\nEU,4\n", schema) == []


def test_parquet_values_are_checked_like_csv_values(frame: pd.DataFrame, schema: DataSchema) -> None:
    typed = generate_like(frame)
    typed.loc[0, "region"] = "atlantis"
    typed.loc[1, "monthly_charges"] = 9_999.0

    found = problems(parquet(typed), schema, "customers.parquet")

    assert [(p.rule, p.rows) for p in found] == [(Rule.RANGE, [2]), (Rule.CATEGORY, [1])]


def test_every_problem_is_found_at_once(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame = frame.drop(columns=["support_calls"])
    frame["notes"] = "x"
    frame.loc[0, "tenure_months"] = "3.5"
    frame.loc[1, "tenure_months"] = 500
    frame.loc[2, "contract"] = None
    frame.loc[3, "region"] = "mars"
    frame.loc[4, "senior"] = "perhaps"
    frame.loc[:400, "total_charges"] = None

    found = problems(csv(frame), schema)

    assert [(p.rule, p.column) for p in found] == [
        (Rule.MISSING_COLUMNS, None),
        (Rule.UNEXPECTED_COLUMNS, None),
        (Rule.TYPE, "tenure_months"),
        (Rule.RANGE, "tenure_months"),
        (Rule.NULL_FRACTION, "total_charges"),
        (Rule.NULLS, "contract"),
        (Rule.CATEGORY, "region"),
        (Rule.TYPE, "senior"),
    ]
    assert all("expected" in p.message for p in found)


def test_row_numbers_are_one_based_data_rows(frame: pd.DataFrame, schema: DataSchema) -> None:
    frame.loc[0, "region"] = "mars"  # the first line after the header
    frame.loc[ROWS - 1, "region"] = "venus"  # the last line of the file

    problem = only(problems(csv(frame), schema), Rule.CATEGORY)

    assert problem.rows == [1, ROWS]


def test_samples_are_capped_at_five_while_the_count_is_complete(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    frame.loc[10:29, "region"] = "mars"

    problem = only(problems(csv(frame), schema), Rule.CATEGORY)

    assert (problem.rows, problem.values, problem.count) == ([11, 12, 13, 14, 15], ["mars"] * 5, 20)


def generate_like(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its natural dtypes back (the fixture is object-typed for free editing)."""
    return frame.infer_objects()


def test_a_parquet_timestamp_column_declared_numeric_is_a_type_problem(example_model: ModelConfig) -> None:
    frame = generate(example_model, 600, seed=9)
    frame["tenure_months"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(frame["tenure_months"], unit="D")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    problems = inspect("x.parquet", buffer.getvalue(), example_model.data).problems
    assert [(p.rule.value, p.column) for p in problems] == [("type", "tenure_months")]
