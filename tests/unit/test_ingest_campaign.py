"""The hostile-file campaign (issue 14, findings 6-10) as tests: every bad file is quarantined with a reason a
person understands, or recorded as misplaced; none is lost, none is silent, none echoes a huge cell."""

from __future__ import annotations

import pandas as pd
import pytest

from headrace.config import DataSchema, ModelConfig
from headrace.datagen import generate
from headrace.ingest import IngestResult, Outcome
from headrace.ingest.events import object_key
from headrace.ingest.problems import VALUE_CHARS, Problem, Rule
from headrace.ingest.routing import RouteKind, route
from headrace.ingest.validation import inspect
from headrace.ledger import MemoryLedger, MisplacedItem, RejectionItem
from headrace.ledger.datasets import upload_digest
from tests.fakes import FakeEvents, FakeMetrics, MemoryOnce
from tests.unit.test_ingest_service import FakeRuns, FakeStore, World

ROWS = 600


@pytest.fixture
def world(example_model: ModelConfig) -> World:
    return World(
        FakeStore(),
        MemoryLedger(),
        FakeRuns(),
        FakeEvents(),
        FakeMetrics(),
        MemoryOnce[IngestResult](),
        {"churn": example_model},
    )


@pytest.fixture
def good(example_model: ModelConfig) -> bytes:
    return generate(example_model, ROWS, seed=5).to_csv(index=False).encode()


@pytest.fixture
def schema(example_model: ModelConfig) -> DataSchema:
    return example_model.data


@pytest.fixture
def frame(example_model: ModelConfig) -> pd.DataFrame:
    return generate(example_model, ROWS, seed=21).astype(object)


def lines(frame: pd.DataFrame) -> list[str]:
    return frame.to_csv(index=False).splitlines()


def problems_of(text: str, schema: DataSchema) -> list[Problem]:
    return inspect("customers.csv", text.encode(), schema).problems


def only(found: list[Problem], rule: Rule) -> Problem:
    assert [p.rule for p in found] == [rule], [p.message for p in found]
    return found[0]


# --- finding 9: reasons a person understands --------------------------------------------------------------


def test_a_semicolon_separated_file_is_explained_as_such(frame: pd.DataFrame, schema: DataSchema) -> None:
    text = frame.to_csv(index=False, sep=";")

    problem = only(problems_of(text, schema), Rule.FORMAT)

    assert "not comma-separated" in problem.message
    assert "semicolon (';')" in problem.message


def test_a_duplicated_column_is_named_as_written_not_as_pandas_renames_it(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    column = schema.columns[1].name
    doubled = pd.concat([frame, frame[[column]]], axis=1)

    problem = only(problems_of(doubled.to_csv(index=False), schema), Rule.DUPLICATE_COLUMNS)

    assert f"'{column}' appears 2 times" in problem.message
    assert ".1" not in problem.message
    assert problem.values == [column]


def test_a_trailing_comma_on_every_row_is_one_problem_saying_so(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    header, *rows = lines(frame)
    text = "\n".join([header, *(row + "," for row in rows)])

    problem = only(problems_of(text, schema), Rule.FORMAT)

    assert "every data row ends with a comma" in problem.message
    assert problem.count == ROWS


def test_a_trailing_comma_on_every_line_names_the_unnamed_column(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    text = "\n".join(line + "," for line in lines(frame))

    problem = only(problems_of(text, schema), Rule.UNEXPECTED_COLUMNS)

    assert f"column {len(schema.columns) + 1}, which has no name" in problem.message
    assert "Unnamed" not in problem.message


def test_a_short_row_is_reported_by_its_field_count_not_as_nulls(
    frame: pd.DataFrame, schema: DataSchema
) -> None:
    header, *rows = lines(frame)
    rows[299] = ",".join(rows[299].split(",")[:3])

    problem = only(problems_of("\n".join([header, *rows]), schema), Rule.FORMAT)

    assert problem.message.startswith(f"row 300 has 3 fields, the header has {len(schema.columns)}")
    assert (problem.rows, problem.count) == ([300], 1)


def test_a_nullable_last_column_with_nulls_is_not_a_ragged_row(example_model: ModelConfig) -> None:
    frame = generate(example_model, ROWS, seed=22)

    assert problems_of(frame.to_csv(index=False), example_model.data) == []


# --- finding 7: an oversized cell is never echoed whole ---------------------------------------------------


def test_a_ten_megabyte_cell_is_cut_in_the_reason(frame: pd.DataFrame, schema: DataSchema) -> None:
    numeric = next(c.name for c in schema.columns if c.type.value in ("integer", "float"))
    frame.loc[3, numeric] = "9" * 10_000_000 + "x"

    [problem] = [p for p in problems_of(frame.to_csv(index=False), schema) if p.column == numeric]

    assert problem.rule is Rule.TYPE
    assert len(problem.values[0]) < VALUE_CHARS + 40
    assert "10,000,001 characters" in problem.values[0]


def test_a_huge_header_name_is_cut_in_the_message(frame: pd.DataFrame, schema: DataSchema) -> None:
    renamed = frame.rename(columns={schema.columns[0].name: "n" * 1_000_000})

    found = problems_of(renamed.to_csv(index=False), schema)

    assert all(len(p.model_dump_json()) < 10_000 for p in found)


def test_a_quarantined_result_stays_small_for_the_idempotency_record(
    world: World, frame: pd.DataFrame, schema: DataSchema
) -> None:
    for column in schema.columns:  # every column broken, with a huge value each
        frame[column.name] = "z" * 200_000
    result = world.drop("churn/incoming/huge.csv", frame.to_csv(index=False).encode())

    assert result.outcome is Outcome.QUARANTINED
    assert len(result.model_dump_json()) < 64_000


# --- finding 8: rejection keys are unique per object ------------------------------------------------------


def test_the_same_bad_bytes_under_two_keys_in_one_second_are_two_records(world: World) -> None:
    world.drop("churn/incoming/a.csv", b"")
    world.drop("churn/incoming/b.csv", b"")

    items = world.ledger.of_kind(RejectionItem, "churn")
    assert sorted(i.key for i in items) == ["churn/incoming/a.csv", "churn/incoming/b.csv"]


def test_a_replayed_rejection_rewrites_its_own_record(world: World) -> None:
    world.drop("churn/incoming/a.csv", b"")
    world.once.done.clear()  # the idempotency record expired: the ledger key alone must not duplicate
    world.drop("churn/incoming/a.csv", b"")

    assert len(world.ledger.of_kind(RejectionItem, "churn")) == 1
    assert (
        upload_digest("churn/incoming/a.csv", None) in world.ledger.of_kind(RejectionItem, "churn")[0].sort_id
    )


# --- finding 10: misplaced files get feedback --------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "partition", "hint"),
    [
        ("customers.csv", "unknown", "bucket's root"),
        ("churn/incomming/customers.csv", "churn", "did you mean churn/incoming/customers.csv?"),
        ("chrun/incomming/customers.csv", "chrun", "did you mean churn/incoming/customers.csv?"),
        ("churn/customers.csv", "churn", "did you mean churn/incoming/customers.csv?"),
        ("other-team/data/customers.csv", "other-team", "'other-team' is not a model"),
    ],
)
def test_a_misplaced_file_is_recorded_counted_and_explained(
    world: World, good: bytes, key: str, partition: str, hint: str
) -> None:
    result = world.drop(key, good)

    assert (result.outcome, result.model) == (Outcome.MISPLACED, partition)
    assert hint in (result.note or "")
    [item] = world.ledger.everywhere(MisplacedItem)
    assert (item.model, item.key) == (partition, key)
    assert ("FilesMisplaced", partition) in world.metrics.counted
    assert world.store.reads == []  # never read: the function may only read */incoming/*


def test_pipeline_output_under_a_model_is_still_ignored(example_model: ModelConfig) -> None:
    for folder in ("datasets", "runs", "capture", "monitoring", "quarantine"):
        assert route(f"churn/{folder}/x/y.csv", {"churn": example_model}).kind is RouteKind.IGNORE


def test_a_file_under_an_unknown_models_incoming_folder_is_still_quarantined(
    world: World, good: bytes
) -> None:
    result: IngestResult = world.drop("fraud/incoming/x.csv", good)

    assert result.outcome is Outcome.QUARANTINED
    assert [i.model for i in world.ledger.everywhere(RejectionItem)] == ["fraud"]


# --- finding 6: keys decoded exactly as S3 encodes them ---------------------------------------------------


@pytest.mark.parametrize(
    ("delivered", "key"),
    [
        ("churn/incoming/red+flower.csv", "churn/incoming/red flower.csv"),
        ("churn/incoming/a%2Bb.csv", "churn/incoming/a+b.csv"),
        ("churn/incoming/a%2520b.csv", "churn/incoming/a%20b.csv"),
        ("churn/incoming/caf%C3%A9.csv", "churn/incoming/café.csv"),
    ],
)
def test_a_delivered_key_is_decoded_once_as_s3_encodes_it(delivered: str, key: str) -> None:
    assert object_key(delivered) == key
