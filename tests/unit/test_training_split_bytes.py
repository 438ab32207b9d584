"""The splits' bytes: Prepare reads, splits and writes datasets without pandas, and writes what it wrote when
it used pandas (`read_csv(dtype=str)` / `to_parquet` + `to_pandas`, then `to_csv`), for the same rows in the
same splits. The digests below were taken from the pandas implementation; pandas itself is the oracle for
the text of each reading (this test may import it: the Prepare function must not)."""

from __future__ import annotations

import csv
import hashlib
import io
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headrace.config import Column, ColumnType, ModelConfig
from headrace.ledger import DatasetVersion, FileFormat
from headrace.training.gather import gather
from headrace.training.parquet_text import read_parquet_text
from headrace.training.splits import SplitError, read_dataset, strata_of
from headrace.training.table import Table, TableError
from tests.fakes import FakeStore

BUCKET = "data"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
# Cells a CSV file can hold that a naive writer or reader gets wrong.
AWKWARD = ["", " ", "a,b", 'say "hi"', '"', "two\nlines", "crlf\r\nline", " padded ", "nörd", "x\ty", "#"]
EXTRA_TEXT = ["seen_at", "stamped_at", "born", "price", "blob", "wide_at"]


def _tricky_csv(seed: int, rows: int) -> bytes:
    """Churn's columns in reverse plus one the schema lacks; quoted, awkward and empty cells, labels
    written as "1" and "1.0", CRLF and LF rows, blank and whitespace-only lines, a byte-order mark, no
    final newline."""
    rng = random.Random(seed)
    header = [
        "note",
        "churned",
        "senior",
        "region",
        "support_calls",
        "payment_method",
        "contract",
        "total_charges",
        "monthly_charges",
        "tenure_months",
    ]
    out = io.StringIO()
    out.write("\ufeff")
    csv.writer(out, lineterminator="\n").writerow(header)
    for _ in range(rows):
        row = [
            rng.choice(AWKWARD),
            rng.choice(["0", "0", "0", "1", "1.0", "0.0"]),
            rng.choice(["yes", "no", "True", ""]),
            rng.choice(["north", "south", *AWKWARD]),
            str(rng.randint(0, 9)),
            rng.choice(["card", "invoice", 'quoted "wallet"']),
            rng.choice(["one-year", "two-year", "a,b"]),
            rng.choice(["", "12.5", "1,05", "1e3"]),
            f"{rng.uniform(0, 200):.{rng.randint(0, 4)}f}",
            rng.choice([str(rng.randint(0, 120)), " 7", "07"]),
        ]
        quoting = csv.QUOTE_ALL if rng.random() < 0.2 else csv.QUOTE_MINIMAL
        csv.writer(out, quoting=quoting, lineterminator=rng.choice(["\n", "\r\n"])).writerow(row)
        if rng.random() < 0.05:
            out.write(rng.choice(["\n", "  \n", "\t\r\n"]))
    return out.getvalue().rstrip("\r\n").encode("utf-8")


def _typed_parquet(seed: int, rows: int, single: pa.DataType | None = None) -> bytes:
    """Churn's columns as the Arrow types people's tools write, with nulls, and the extra text columns of
    `_wide` holding timestamps, dates, decimals and bytes. `single`: total_charges' float type."""
    rng = random.Random(seed)

    def some(values: list[object]) -> list[object]:
        return [rng.choice(values) for _ in range(rows)]

    base = datetime(2025, 3, 1, 12, 30)
    table = pa.table(
        {
            "churned": pa.array(some([0, 1]), pa.int8()),
            "tenure_months": pa.array(some([1, 24, 120])),
            "support_calls": pa.array(some([0, 3, None]), pa.int32()),
            "monthly_charges": pa.array(some([0.1, 1 / 3, 1e16, 1e-5, None, float("nan"), 12.0])),
            "total_charges": pa.array(some([0.1, 2.5, None]), single or pa.float32()),
            "contract": pa.array(some(["one-year", "two-year", None])).dictionary_encode(),
            "payment_method": pa.array(some(["card", "a,b", 'say "hi"', None])),
            "region": pa.array(some(["north", "two\nlines"]), pa.large_string()),
            "senior": pa.array(some([True, False, None])),
            "seen_at": pa.array(some([base, base + timedelta(milliseconds=5), None]), pa.timestamp("ms")),
            "stamped_at": pa.array(some([base, base + timedelta(microseconds=7)]), pa.timestamp("us", "UTC")),
            "born": pa.array(some([date(1990, 1, 2), None]), pa.date32()),
            "price": pa.array(some([Decimal("1.50"), Decimal("20.00"), None]), pa.decimal128(6, 2)),
            "blob": pa.array(some([b"ab", None]), pa.binary()),
            "wide_at": pa.array(some([datetime(2024, 1, 1), datetime(2024, 1, 2), None]), pa.timestamp("ns")),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _wide(model: ModelConfig) -> ModelConfig:
    columns = [
        *model.data.columns,
        *(Column(name=name, type=ColumnType.STRING, nullable=True) for name in EXTRA_TEXT),
    ]
    return model.model_copy(update={"data": model.data.model_copy(update={"columns": columns})})


def _version(
    store: FakeStore, body: bytes, at: datetime, source: str = "upload", kind: str = "csv"
) -> DatasetVersion:
    sha = hashlib.sha256(body).hexdigest()
    key = f"churn/datasets/{sha}/data.{kind}"
    store.put(BUCKET, key, body, "text/csv")
    return DatasetVersion.model_validate(
        {
            "model": "churn",
            "sha256": sha,
            "bucket": BUCKET,
            "key": f"churn/incoming/{source}/{sha[:8]}.{kind}",
            "version_id": None,
            "size_bytes": len(body),
            "format": FileFormat.PARQUET if kind == "parquet" else FileFormat.CSV,
            "rows": 1,
            "columns": [],
            "schema_fingerprint": "f" * 16,
            "statistics": {},
            "received_at": at,
            "dataset_key": key,
            "source": source,
            "lineage_uri": None,
        }
    )


def _digests(model: ModelConfig, bodies: list[tuple[bytes, str, str]]) -> dict[str, str]:
    """Each split's SHA-256 (first 16 digits) for a run of these (body, source, format) datasets, oldest
    first, the first of them the run's dataset."""
    store = FakeStore()
    versions = [
        _version(store, body, NOW - timedelta(days=len(bodies) - i), source, kind)
        for i, (body, source, kind) in enumerate(bodies)
    ]
    splits = gather(store, versions[0], versions[1:], model).splits
    return {
        s: hashlib.sha256(splits.part(s).to_csv()).hexdigest()[:16] for s in ("train", "validation", "test")
    }


def _capped(model: ModelConfig, rows: int) -> ModelConfig:
    retrain = model.monitoring.retrain_data.model_copy(update={"max_rows": rows})
    return model.model_copy(
        update={"monitoring": model.monitoring.model_copy(update={"retrain_data": retrain})}
    )


def _regression(model: ModelConfig) -> ModelConfig:
    trainer = model.trainer.model_copy(update={"objective": "reg:squarederror"})
    return model.model_copy(update={"trainer": trainer})


# Taken from the pandas implementation (commit cc3f95b) on these very inputs.
GOLDEN: dict[str, dict[str, str]] = {
    "one tricky csv": {
        "train": "8ea068573e54cddf",
        "validation": "80059f8f066c33d2",
        "test": "b02c3be520483675",
    },
    "csv regression": {
        "train": "3ce537e1b467e675",
        "validation": "3d1e9404537ff200",
        "test": "21ef26e6980812b0",
    },
    "csv with production, capped": {
        "train": "26265eab928ce77c",
        "validation": "7650ea488e74c0c8",
        "test": "43436168d1e9ca87",
    },
    "csv uploads only": {
        "train": "c32fd840b64b52b9",
        "validation": "c787df55428e6e0a",
        "test": "a32df6ba41d151cf",
    },
    "typed parquet": {
        "train": "9cfad366385b317b",
        "validation": "a1c4dde3c9b4e88a",
        "test": "aa17de95c810f9ca",
    },
    "parquet with csv production": {
        "train": "48dc9bfcadd70577",
        "validation": "3e7f80e3b816e8d3",
        "test": "2d673bfe15f1875c",
    },
}


def _cases(model: ModelConfig) -> dict[str, tuple[ModelConfig, list[tuple[bytes, str, str]]]]:
    return {
        "one tricky csv": (model, [(_tricky_csv(1, 400), "upload", "csv")]),
        "csv regression": (_regression(model), [(_tricky_csv(2, 300), "upload", "csv")]),
        "csv with production, capped": (
            _capped(model, 900),
            [
                (_tricky_csv(3, 500), "upload", "csv"),
                (_tricky_csv(4, 300), "production", "csv"),
                (_tricky_csv(5, 400), "production", "csv"),
            ],
        ),
        "csv uploads only": (
            model,
            [(_tricky_csv(6, 300), "upload", "csv"), (_tricky_csv(7, 200), "upload", "csv")],
        ),
        "typed parquet": (_wide(model), [(_typed_parquet(8, 400), "upload", "parquet")]),
        "parquet with csv production": (
            model,
            [
                (_typed_parquet(9, 300, pa.float64()), "upload", "parquet"),
                (_tricky_csv(10, 300), "production", "csv"),
            ],
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "one tricky csv",
        "csv regression",
        "csv with production, capped",
        "csv uploads only",
        "typed parquet",
        "parquet with csv production",
    ],
)
def test_the_splits_are_the_bytes_the_pandas_implementation_wrote(
    example_model: ModelConfig, case: str
) -> None:
    model, bodies = _cases(example_model)[case]
    assert _digests(model, bodies) == GOLDEN[case]


def _pandas_csv(data: bytes, names: list[str]) -> bytes:
    """What Prepare did with pandas: read every cell as text, keep the schema's columns, write them back."""
    frame = pd.read_csv(
        io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
    )
    return frame[names].to_csv(index=False, lineterminator="\n").encode("utf-8")


@pytest.mark.parametrize("seed", range(5))
def test_csv_cells_read_and_written_without_pandas_are_pandas_text(
    example_model: ModelConfig, seed: int
) -> None:
    data = _tricky_csv(seed, 300)
    names = [c.name for c in example_model.data.columns]
    assert read_dataset(data, FileFormat.CSV, example_model.data).to_csv() == _pandas_csv(data, names)


def test_a_one_column_file_keeps_a_quoted_empty_cell_and_skips_blank_lines() -> None:
    data = b'a\n""\n\n  \nx\n'
    assert Table.from_csv(data) == Table(["a"], [("",), ("x",)])
    assert (
        Table.from_csv(data).to_csv()
        == pd.read_csv(io.BytesIO(data), dtype=str, na_filter=False)
        .to_csv(index=False, lineterminator="\n")
        .encode()
    )


def test_parquet_cells_are_the_text_pandas_wrote_for_a_frame_pandas_saved() -> None:
    frame = pd.DataFrame(
        {
            "nullable_int": pd.array([1, None, 3], dtype="Int64"),
            "int": [1, 2, 3],
            "int_with_null": [1.0, None, 3.0],
            "flag": pd.array([True, None, False], dtype="boolean"),
            "plain_flag": [True, False, True],
            "text": pd.array(["a", None, "c,d"], dtype="string"),
            "objects": ["x", None, 'say "hi"'],
            "category": pd.Categorical(["north", None, "south"]),
            "int_category": pd.Categorical([1, None, 2]),
            "moments": pd.to_datetime(["2024-01-01", "2024-01-02 00:00:00.5", None], format="mixed"),
            "days": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "nanos": pd.to_datetime([1, 2_000_000_001, 3]),
            "zoned": pd.to_datetime(
                ["2024-06-01 12:00", "2024-01-02 00:00:00.000001", None], format="mixed"
            ).tz_localize("Europe/Paris"),
            "floats": [0.1, float("nan"), 1e16],
        }
    )
    data = frame.to_parquet(index=False)
    names = list(frame.columns)
    expected = pq.read_table(pa.BufferReader(data)).to_pandas()
    for name in names:  # as ingest's reader hands them over: categoricals as their plain values
        if isinstance(expected[name].dtype, pd.CategoricalDtype):
            expected[name] = expected[name].astype(object)
    written = read_parquet_text(data, set(names)).select(names).to_csv()
    assert written.decode() == expected[names].to_csv(index=False, lineterminator="\n")


@pytest.mark.parametrize(
    "labels",
    [
        ["0", "1", "1", "0"],
        ["1", "1.0", "0", "0.0"],
        ["2", "10", "-1", "1"],
        [" 1", "1 ", "+1", "07", "1e0"],
        ["1", "NA", "", "nan", "inf", "-inf", "x", "1_0"],
        ["1", "9223372036854775808"],
        ["-1", "9223372036854775808"],
        [".5", "1.", "2.50", "1E3"],
    ],
)
def test_numeric_labels_stratify_as_pandas_to_numeric_grouped_and_ordered_them(
    example_model: ModelConfig, labels: list[str]
) -> None:
    rows = [(*("0" for _ in example_model.data.columns[:-1]), label) for label in labels]
    table = Table([c.name for c in example_model.data.columns], rows)
    expected = pd.to_numeric(pd.Series(labels), errors="coerce").astype(str).to_numpy()
    _, inverse = np.unique(expected, return_inverse=True)
    assert strata_of(table, example_model).tolist() == inverse.tolist()


def test_a_dataset_without_a_schema_column_is_refused_naming_each(example_model: ModelConfig) -> None:
    data = b"tenure_months,churned\n1,0\n"
    with pytest.raises(SplitError, match="lacks the schema's columns monthly_charges, total_charges"):
        read_dataset(data, FileFormat.CSV, example_model.data)


def test_rows_wider_or_narrower_than_the_header_are_refused_not_shifted() -> None:
    with pytest.raises(TableError, match="rows of 1, 3 fields, the header has 2"):
        Table.from_csv(b"a,b\n1,2\n1\n1,2,3\n")
