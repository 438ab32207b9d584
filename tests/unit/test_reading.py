"""Reading a CSV without pandas reads it as pandas' read_csv did (issue 15): numbers, words, nulls, blank
lines and structure, in chunks that change nothing."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from headrace.config import Column, ColumnType, DataSchema
from headrace.ingest import csv_tokens
from headrace.ingest.problems import Problem, Rule
from headrace.ingest.reading import parse_csv
from headrace.ingest.validation import inspect

SCHEMA = DataSchema(
    columns=[
        Column(name="x", type=ColumnType.FLOAT, nullable=True),
        Column(name="n", type=ColumnType.INTEGER, min=0, max=100),
        Column(name="flag", type=ColumnType.BOOLEAN),
        Column(name="region", type=ColumnType.CATEGORY, categories=["north", "a,b"]),
    ],
    target="n",
    min_rows=1,
)


def problems(data: bytes, schema: DataSchema = SCHEMA) -> list[Problem]:
    return inspect("f.csv", data, schema).problems


def rules(data: bytes) -> list[tuple[Rule, str | None, list[int], list[str]]]:
    return [(p.rule, p.column, p.rows, p.values) for p in problems(data)]


@pytest.mark.parametrize(
    ("cell", "value"),
    [(" 1.5 ", 1.5), ("+2", 2.0), ("1e3", 1000.0), (".5", 0.5), ("5.", 5.0), ("\t7\t", 7.0)],
)
def test_a_number_pandas_reads_is_a_number(cell: str, value: float) -> None:
    inspection = inspect("f.csv", f"x,n,flag,region\n{cell},1,true,north\n".encode(), SCHEMA)

    assert inspection.problems == []
    assert inspection.frame is not None and inspection.frame["x"].tolist() == [value]


# Python's float() reads all but the last; pandas read them as text, or infinity as a number not finite.
@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        *[(cell, cell) for cell in ["1_000", "\uff11", "\u0663", "\u00a01", "1e400", "NAN"]],
        ("infinity", "inf"),
        ("-Inf", "-inf"),
        ("0x10", "0x10"),
    ],
)
def test_what_only_python_reads_as_a_number_is_a_type_problem(cell: str, shown: str) -> None:
    assert rules(f"x,n,flag,region\n{cell},1,true,north\n".encode()) == [(Rule.TYPE, "x", [1], [shown])]


def test_a_number_is_quoted_as_pandas_held_it_unless_its_column_also_holds_words() -> None:
    numbers = rules(b"x,n,flag,region\n1,0500,true,north\n2,7.0,true,north\n")
    words = rules(b"x,n,flag,region\n1,0500,true,north\n2,seven,true,north\n")

    assert numbers == [(Rule.RANGE, "n", [1], ["500"])]
    assert words == [(Rule.TYPE, "n", [2], ["seven"]), (Rule.RANGE, "n", [1], ["0500"])]


def test_true_and_false_in_a_number_column_are_one_and_zero_unless_mixed_with_numbers() -> None:
    words = inspect("f.csv", b"x,n,flag,region\nTrue,1,true,north\nfalse,2,true,north\n", SCHEMA)
    mixed = rules(b"x,n,flag,region\nTrue,1,true,north\n1.5,2,true,north\n")

    assert words.problems == [] and words.frame is not None and words.frame["x"].tolist() == [1.0, 0.0]
    assert mixed == [(Rule.TYPE, "x", [1], ["True"])]


def test_a_boolean_column_of_numbers_reads_them_as_numbers() -> None:
    numbers = inspect("f.csv", b"x,n,flag,region\n1,1,01,north\n1,2,0.0,north\n", SCHEMA)
    words = rules(b"x,n,flag,region\n1,1,01,north\n1,2,no,north\n")

    assert numbers.problems == [] and numbers.frame is not None
    assert numbers.frame["flag"].tolist() == [1.0, 0.0]
    assert words == [(Rule.TYPE, "flag", [1], ["01"])]  # words are compared as written


def test_a_null_token_is_null_but_spaces_around_it_make_it_a_value() -> None:
    found = rules(b"x,n,flag,region\nNA,1,true,north\n#N/A,2,true,north\n NA,3,true,north\n")

    assert found == [(Rule.NULL_FRACTION, "x", [1, 2], []), (Rule.TYPE, "x", [3], [" NA"])]


def test_a_byte_order_mark_blank_lines_and_lines_of_blanks_are_skipped() -> None:
    data = b"\xef\xbb\xbf\nx,n,flag,region\n\n1,1,true,north\n   \n\t\n2,2,yes,north\n\n"

    inspection = inspect("f.csv", data, SCHEMA)

    assert (inspection.problems, inspection.rows, inspection.columns) == ([], 2, ["x", "n", "flag", "region"])


@pytest.mark.parametrize("end", [b"\r\n", b"\r"])
def test_windows_and_old_mac_line_ends_end_lines(end: bytes) -> None:
    data = b"x,n,flag,region\n1,1,true,north\n2,200,true,north\n".replace(b"\n", end)

    assert rules(data) == [(Rule.RANGE, "n", [2], ["200"])]


def test_quoted_cells_may_hold_commas_quotes_and_line_ends() -> None:
    data = b'x,n,flag,region\n1,1,true,"a,b"\n"2",2,true,"no""rth\n"\n'

    assert rules(data) == [(Rule.CATEGORY, "region", [2], ['no"rth\n'])]


def test_a_quoted_cell_may_be_larger_than_the_csv_modules_limit() -> None:
    big = "north" + " " * 200_000

    [(rule, _, rows, [shown])] = rules(f'x,n,flag,region\n1,1,true,"{big}"\n'.encode())

    assert (rule, rows, shown.endswith("(200,005 characters)")) == (Rule.CATEGORY, [1], True)


def test_a_file_that_ends_inside_a_quoted_cell_cannot_be_parsed() -> None:
    found = problems(b'x,n,flag,region\n1,1,true,north\n2,2,true,"north\n')

    assert [p.rule for p in found] == [Rule.FORMAT]
    assert found[0].message.startswith("the CSV cannot be parsed (EOF inside string starting at row 2)")


def test_a_short_row_is_ragged_even_when_the_last_column_is_not_the_schemas() -> None:
    # pandas padded it with a null where no rule looked, so only its field count can tell.
    found = problems(b"x,n,flag,region,notes\n1,1,true,north,a\n2,2,true,north\n")

    assert [(p.rule, p.rows) for p in found] == [(Rule.FORMAT, [2])]
    assert found[0].message.startswith("row 2 has 4 fields, the header has 5")


def test_a_file_read_in_small_chunks_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # A word in "n" makes its range problem quote cells as written: read again, across chunks.
    counts = [str(i % 150) if i % 97 != 5 else "many" for i in range(400)]
    lines = [
        f"{i}.5,{n},{'yes' if i % 3 else 'maybe'},{'north' if i % 7 else 'south'}"
        for i, n in enumerate(counts)
    ]
    data = ("x,n,flag,region\n" + "\n\n".join(lines) + "\n").encode()
    quoted = data.replace(b"north", b'"north"')
    whole = [problems(data), problems(quoted)]

    monkeypatch.setattr(csv_tokens, "BLOCK_CHARS", 100)
    monkeypatch.setattr(csv_tokens, "BLOCK_RECORDS", 7)

    assert [problems(data), problems(quoted)] == whole
    assert [(p.rule, p.column) for p in whole[0]] == [
        (Rule.TYPE, "n"),
        (Rule.RANGE, "n"),
        (Rule.TYPE, "flag"),
        (Rule.CATEGORY, "region"),
    ]
    assert whole[0][1].values == ["101", "103", "104", "105", "106"]  # row 103 holds "many"


def test_ragged_rows_are_counted_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_tokens, "BLOCK_CHARS", 30)
    rows = "\n".join("1,1,true,north" if i % 50 else "1,1,true" for i in range(1, 400))

    found = problems(f"x,n,flag,region\n{rows}\n".encode())

    assert (found[0].rule, found[0].rows, found[0].count) == (Rule.FORMAT, [50, 100, 150, 200, 250], 7)


def test_parsed_columns_are_the_ones_the_header_names_once() -> None:
    parsed = parse_csv(b"x,n,n,,flag\n1,2,3,4,true\n", SCHEMA)

    assert (parsed.names, sorted(parsed.cells), parsed.rows) == (
        ("x", "n", "n", "", "flag"),
        ["flag", "x"],
        1,
    )


def test_statistics_of_a_csv_match_those_of_pandas_read() -> None:
    data = b"x,n,flag,region\n1.25,3,yes,north\n,4,no,a,b\n"
    frame = pd.read_csv(io.BytesIO(data.replace(b"a,b", b'"a,b"')))
    inspection = inspect("f.csv", data.replace(b"a,b", b'"a,b"'), SCHEMA)

    assert inspection.frame is not None
    assert inspection.frame["x"].tolist()[0] == frame["x"][0]
    assert inspection.frame["region"].tolist() == frame["region"].tolist()
