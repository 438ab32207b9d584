"""Train/validation/test splits: deterministic, sized by validation_fraction, stratified for classifiers."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.ledger import FileFormat
from headrace.training.splits import SplitError, read_dataset, split_dataset
from headrace.training.table import Table

SHA = hashlib.sha256(b"dataset").hexdigest()
OTHER_SHA = hashlib.sha256(b"another dataset").hexdigest()


def _table(frame: pd.DataFrame) -> Table:
    """A generated frame as Prepare reads it: its cells as text, as `read_dataset` reads a CSV."""
    return Table(list(frame.columns), list(map(tuple, frame.astype(str).to_numpy().tolist())))


@pytest.fixture(scope="module")
def frame(example_model: ModelConfig) -> Table:
    data = generate(example_model, 2_000, seed=7).to_csv(index=False).encode()
    return read_dataset(data, FileFormat.CSV, example_model.data)


def test_the_same_content_and_seed_always_give_the_same_split(
    frame: Table, example_model: ModelConfig
) -> None:
    first = split_dataset(frame, example_model, SHA)
    again = split_dataset(Table(list(frame.columns), list(frame.rows)), example_model, SHA)
    for split in ("train", "validation", "test"):
        assert first.part(split) == again.part(split)


def test_another_dataset_version_or_seed_shuffles_differently(
    frame: Table, example_model: ModelConfig
) -> None:
    first = split_dataset(frame, example_model, SHA).test
    assert first != split_dataset(frame, example_model, OTHER_SHA).test
    reseeded = example_model.model_copy(
        update={"trainer": example_model.trainer.model_copy(update={"seed": 7})}
    )
    assert first != split_dataset(frame, reseeded, SHA).test


def test_validation_and_test_each_get_validation_fraction_of_the_rows(
    frame: Table, example_model: ModelConfig
) -> None:
    rows = split_dataset(frame, example_model, SHA).rows()
    fraction = example_model.trainer.validation_fraction
    assert sum(rows.values()) == len(frame)
    for split in ("validation", "test"):
        assert abs(rows[split] - fraction * len(frame)) <= 2  # one row of rounding per class
    assert rows["train"] == len(frame) - rows["validation"] - rows["test"]


def test_every_row_lands_in_exactly_one_split(frame: Table, example_model: ModelConfig) -> None:
    splits = split_dataset(frame, example_model, SHA)
    together = splits.train.rows + splits.validation.rows + splits.test.rows
    assert sorted(together) == sorted(frame.rows)


def test_classifier_splits_keep_the_label_balance(example_model: ModelConfig) -> None:
    # 10% positives: a plain shuffle could leave a split with noticeably more or fewer.
    rows = 1_000
    frame = generate(example_model, rows, seed=3).astype(str)
    frame["churned"] = ["1" if i % 10 == 0 else "0" for i in range(rows)]
    splits = split_dataset(_table(frame), example_model, SHA)
    for split in ("train", "validation", "test"):
        labels = splits.part(split).column("churned")
        assert labels.count("1") / len(labels) == pytest.approx(0.1, abs=0.002)


def test_integer_labels_written_two_ways_are_one_class(example_model: ModelConfig) -> None:
    frame = generate(example_model, 100, seed=3).astype(str)
    frame["churned"] = ["1.0" if i < 5 else "1" if i < 10 else "0" for i in range(100)]
    test = split_dataset(_table(frame), example_model, SHA).test
    assert sum(label in ("1", "1.0") for label in test.column("churned")) == 2  # 10 positives, 20% of them


def test_regression_targets_are_not_stratified(example_model: ModelConfig) -> None:
    regression = example_model.model_copy(
        update={"trainer": example_model.trainer.model_copy(update={"objective": "reg:squarederror"})}
    )
    frame = generate(example_model, 500, seed=3).astype(str)
    assert split_dataset(_table(frame), regression, SHA).rows() == {
        "train": 300,
        "validation": 100,
        "test": 100,
    }


def test_fractions_that_leave_nothing_to_train_on_are_refused(
    frame: Table, example_model: ModelConfig
) -> None:
    greedy = example_model.model_copy(
        update={"trainer": example_model.trainer.model_copy(update={"validation_fraction": 0.5})}
    )
    with pytest.raises(SplitError, match=r"trainer.validation_fraction 0.5"):
        split_dataset(frame, greedy, SHA)


def test_a_dataset_too_small_for_a_held_out_split_is_refused(example_model: ModelConfig) -> None:
    tiny = generate(example_model, 2, seed=3).astype(str)
    with pytest.raises(SplitError, match="empty"):
        split_dataset(_table(tiny), example_model, SHA)


def test_csv_cells_are_written_back_exactly_as_ingest_accepted_them(example_model: ModelConfig) -> None:
    text = (
        "tenure_months,monthly_charges,total_charges,contract,payment_method,support_calls,region,senior,churned\n"
        + "".join(f'{i},"1,0{i % 10}",,one-year,card,0,north,yes,{i % 2}.0\n' for i in range(50))
    )
    frame = read_dataset(text.encode(), FileFormat.CSV, example_model.data)
    written = split_dataset(frame, example_model, SHA).train.to_csv().decode()
    assert written.splitlines()[0] == text.splitlines()[0]
    assert all(line.endswith((",yes,0.0", ",yes,1.0")) for line in written.splitlines()[1:])
    assert '"1,0' in written and ",," in written


def test_a_parquet_dataset_is_split_into_csv_with_the_schemas_column_order(
    example_model: ModelConfig,
) -> None:
    generated = generate(example_model, 200, seed=3)
    shuffled = generated[list(reversed(generated.columns))]
    frame = read_dataset(shuffled.to_parquet(index=False), FileFormat.PARQUET, example_model.data)
    assert list(frame.columns) == [c.name for c in example_model.data.columns]
    header = split_dataset(frame, example_model, SHA).test.to_csv().decode().splitlines()[0]
    assert header.split(",") == [c.name for c in example_model.data.columns]
