"""Ground-truth label files: what a dropped file must look like, its canonical accepted form, and how the
quality check reads accepted files back and merges them.

A file dropped under `<model>/ground-truth/incoming/` is either
- SageMaker's ground-truth JSON lines (`.jsonl`/`.json`), one record per line:
  `{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<key>"}, ...}`
  (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html); `data` holds one
  label, or N comma-separated labels (CSV) / a JSON list (JSON) for an N-row inference, label i for row i;
- or a CSV (`.csv`) with the header `inference_id,label` and an optional `row` (default 0), in any order.

The key is the inference's join key (the caller's InferenceId, else the capture's eventId). An accepted
file becomes `inference_id,row,label` with a numeric label, encoded as the trainer encodes the target
(containers/train/trainer/data.py): binary 0/1, regression the number, multi-class the class's position in
the target's declared categories (or the class number itself for a numeric target). Files are held whole
in the ingest function's memory, so they are capped at LABEL_FILE_MAX_BYTES (about 300,000 labels).

No pandas: the ingest function imports this module for ground-truth files alone. The quality check reads
accepted files with headrace.quality.accepted, which needs none of the rules here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from headrace.aws.inference_id import INFERENCE_ID_MAX, is_inference_id
from headrace.config import ColumnType, ModelConfig
from headrace.ingest.problems import SAMPLE_SIZE, Problem, Rule, clip
from headrace.ingest.routing import GROUND_TRUTH, GROUND_TRUTH_ACCEPTED
from headrace.quality.accepted import CSV_COLUMNS, ID_COLUMN, LABEL_COLUMN, ROW_COLUMN

# Documented cap (README "Ground truth", this module's docstring): a file is parsed whole in memory.
LABEL_FILE_MAX_BYTES = 32 * 1024 * 1024
JSONL_EXTENSIONS = (".jsonl", ".json")
CSV_EXTENSION = ".csv"
# SageMaker's ground-truth encodings (groundTruthData.encoding); a record without one is read as CSV, the
# encoding of the documented example.
ENCODINGS = ("CSV", "JSON")
# Row numbers are stored as int32 by the quality check.
ROW_MAX = 2**31 - 1
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Booleans as the trainer reads a numeric target (headrace.profile.TRUE_FALSE).
_TRUE_FALSE = {"true": 1.0, "false": 0.0}


@dataclass(frozen=True)
class LabelSpec:
    """Which labels a model takes, and the number each becomes (as the trainer encodes its target)."""

    objective: str
    target: str
    # A category target's classes, in declared order: a label is its class's position.
    classes: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    num_class: int | None = None

    @classmethod
    def of(cls, model: ModelConfig) -> LabelSpec:
        target = model.data.column(model.data.target)
        categorical = target.type is ColumnType.CATEGORY
        num_class = model.trainer.hyperparameters.get("num_class")
        return cls(
            objective=model.trainer.objective,
            target=target.name,
            classes=tuple(target.categories or ()) if categorical else None,
            minimum=target.min,
            maximum=target.max,
            num_class=int(num_class) if isinstance(num_class, int | float | str) and num_class else None,
        )

    def encode(self, text: str) -> float | None:
        """The label's number, or None when it is not a valid label for this model."""
        value = text.strip()
        if self.classes is not None:
            if value in self.classes:
                return float(self.classes.index(value))
            if self.objective != "binary:logistic":
                return None
        number = _number(value)
        if number is None:
            return None
        if self.objective == "binary:logistic":
            return number if number in (0.0, 1.0) else None
        if self.minimum is not None and number < self.minimum:
            return None
        if self.maximum is not None and number > self.maximum:
            return None
        if self.objective == "multi:softprob":
            whole = number >= 0 and number.is_integer()
            return number if whole and (self.num_class is None or number < self.num_class) else None
        return number

    def expected(self) -> str:
        """What a valid label is, for a reason a person reads."""
        if self.objective == "binary:logistic":
            names = f" or the target's classes {', '.join(self.classes)}" if self.classes else ""
            return f"0 or 1 (or true/false){names} for objective binary:logistic"
        if self.classes is not None:
            return f"one of the target's classes {', '.join(self.classes)} for objective {self.objective}"
        bounds = _bounds(self.minimum, self.maximum)
        if self.objective == "multi:softprob":
            limit = f" below num_class {self.num_class}" if self.num_class else ""
            return f"a class number 0, 1, 2, ...{limit}{bounds} for objective multi:softprob"
        return f"a finite number{bounds} for objective {self.objective}"


def _bounds(minimum: float | None, maximum: float | None) -> str:
    parts = [
        f">= {minimum:g}" if minimum is not None else "",
        f"<= {maximum:g}" if maximum is not None else "",
    ]
    shown = " and ".join(p for p in parts if p)
    return f" ({shown}, the target's min/max)" if shown else ""


def _number(text: str) -> float | None:
    lowered = text.lower()
    if lowered in _TRUE_FALSE:
        return _TRUE_FALSE[lowered]
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


# --- checking a dropped file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRow:
    inference_id: str
    row: int
    label: float


@dataclass(frozen=True)
class CheckedLabels:
    """A checked file: its problems, or (when there are none) its canonical accepted CSV."""

    problems: list[Problem]
    rows: list[LabelRow] = field(default_factory=list)
    # Records read: lines of a JSON-lines file, data lines of a CSV.
    records: int = 0

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def labels(self) -> int:
        return len(self.rows)

    @property
    def inferences(self) -> int:
        return len({r.inference_id for r in self.rows})

    def canonical(self) -> bytes:
        return canonical_csv(self.rows)


def check_label_upload(name: str, size: int) -> list[Problem]:
    """What can be said before reading the file: its extension and its size."""
    problems: list[Problem] = []
    if size > LABEL_FILE_MAX_BYTES:
        problems.append(
            Problem(
                rule=Rule.SIZE,
                message=f"the ground-truth file is {size} bytes; label files are read whole, so they may be "
                f"at most {LABEL_FILE_MAX_BYTES // 2**20} MiB ({LABEL_FILE_MAX_BYTES} bytes): split it",
                values=[str(size)],
            )
        )
    suffix = _suffix(name)
    if suffix not in (*JSONL_EXTENSIONS, CSV_EXTENSION):
        shown = f"the unsupported extension '{suffix}'" if suffix else "no file extension"
        problems.append(
            Problem(
                rule=Rule.FORMAT,
                message=f"ground-truth file '{clip(name)}' has {shown}; expected .jsonl or .json "
                "(SageMaker's ground-truth JSON lines) or .csv (inference_id,label[,row])",
                values=[suffix or clip(name)],
            )
        )
    return problems


def check_labels(name: str, data: bytes, spec: LabelSpec) -> CheckedLabels:
    """Every problem of the ground-truth file `name` holding `data`, or its rows when there are none."""
    problems = check_label_upload(name, len(data))
    if problems:
        return CheckedLabels(problems)
    if not data.strip():
        what = "empty (0 bytes)" if not data else f"blank ({len(data)} bytes of whitespace only)"
        return CheckedLabels(
            [
                Problem(
                    rule=Rule.EMPTY, message=f"the ground-truth file is {what}; expected at least one label"
                )
            ]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = f"0x{data[error.start]:02X}"
        return CheckedLabels(
            [
                Problem(
                    rule=Rule.ENCODING,
                    message=f"the ground-truth file is not valid UTF-8: byte {error.start} ({byte}, on line "
                    f"{line}) cannot be decoded; expected UTF-8 text",
                    rows=[line],
                    values=[byte],
                )
            ]
        )
    found = _Found()
    if _suffix(name) == CSV_EXTENSION:
        rows, records = _read_csv(text, spec, found)
    else:
        rows, records = _read_jsonl(text, spec, found)
    _check_duplicates(rows, found)
    return CheckedLabels(found.problems(), [] if found else [r for r, _ in rows], records)


def _suffix(name: str) -> str:
    return "." + name.rsplit(".", 1)[1].lower() if "." in name else ""


class _Found:
    """Problems gathered per rule: the first occurrence's message, how many, where (a sample)."""

    def __init__(self) -> None:
        self._first: dict[Rule, str] = {}
        self._count: dict[Rule, int] = {}
        self._rows: dict[Rule, list[int]] = {}
        self._values: dict[Rule, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self._first)

    def add(self, rule: Rule, line: int, value: str, message: str) -> None:
        self._first.setdefault(rule, message)
        self._count[rule] = self._count.get(rule, 0) + 1
        rows, values = self._rows.setdefault(rule, []), self._values.setdefault(rule, [])
        if len(rows) < SAMPLE_SIZE:
            rows.append(line)
            values.append(value)

    def problems(self) -> list[Problem]:
        found = []
        for rule, first in self._first.items():
            count = self._count[rule]
            more = (
                f" ({count} in all, on lines {', '.join(map(str, self._rows[rule]))}...)" if count > 1 else ""
            )
            found.append(
                Problem(
                    rule=rule,
                    message=first + more,
                    rows=self._rows[rule],
                    values=self._values[rule],
                    count=count,
                )
            )
        return found


# A row read from the file, with the line it came from.
Located = tuple[LabelRow, int]


def _read_jsonl(text: str, spec: LabelSpec, found: _Found) -> tuple[list[Located], int]:
    rows: list[Located] = []
    records = 0
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        records += 1
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            found.add(
                Rule.NOT_JSON,
                line,
                clip(raw.strip()),
                f"line {line} is not JSON ({error.msg} at column {error.colno}); expected one JSON object "
                'per line like {"groundTruthData": {"data": "1", "encoding": "CSV"}, '
                '"eventMetadata": {"eventId": "<inference id>"}, "eventVersion": "0"}',
            )
            continue
        located = _record(record, line, spec, found)
        rows.extend((label, line) for label in located)
    return rows, records


def _record(record: Any, line: int, spec: LabelSpec, found: _Found) -> list[LabelRow]:
    truth = record.get("groundTruthData") if isinstance(record, dict) else None
    metadata = record.get("eventMetadata") if isinstance(record, dict) else None
    key = metadata.get("eventId") if isinstance(metadata, dict) else None
    missing = [
        name
        for name, absent in (
            ("groundTruthData.data", not isinstance(truth, dict) or "data" not in truth),
            ("eventMetadata.eventId", not isinstance(key, str)),
        )
        if absent
    ]
    if missing:
        shown = type(record).__name__ if not isinstance(record, dict) else ", ".join(missing)
        found.add(
            Rule.MISSING_FIELD,
            line,
            shown,
            f"line {line} lacks {' and '.join(missing)}"
            + ("" if isinstance(record, dict) else f" (it is a JSON {_json_kind(record)}, not an object)")
            + "; every ground-truth record needs groundTruthData.data (the label) and eventMetadata.eventId "
            "(the inference's id)",
        )
        return []
    assert isinstance(truth, dict) and isinstance(key, str)
    if not _valid_id(key, line, found):
        return []
    encoding = truth.get("encoding", "CSV")
    if not isinstance(encoding, str) or encoding.upper() not in ENCODINGS:
        found.add(
            Rule.LABEL_ENCODING,
            line,
            clip(str(encoding)),
            f"line {line} has groundTruthData.encoding {clip(json.dumps(encoding))}; expected one of "
            f"{', '.join(ENCODINGS)}",
        )
        return []
    texts = _label_texts(truth["data"], encoding.upper())
    if not texts:
        found.add(
            Rule.LABEL_COUNT,
            line,
            clip(json.dumps(truth["data"])),
            f"line {line} (inference '{key}') has no label in groundTruthData.data "
            f"({clip(json.dumps(truth['data']))}); expected one label per row of the inference",
        )
        return []
    return _labels(key, texts, line, spec, found)


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _label_texts(data: Any, encoding: str) -> list[str]:
    """The labels `data` holds, as text: one, or one per row of the inference."""
    if encoding == "JSON" and isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            return [data]  # judged (and refused) as a label
    if isinstance(data, list):
        return [_scalar_text(v) for v in data]
    if encoding == "CSV" and isinstance(data, str):
        return [] if not data.strip() else data.split(",")
    return [_scalar_text(data)]


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _labels(key: str, texts: Sequence[str], line: int, spec: LabelSpec, found: _Found) -> list[LabelRow]:
    rows: list[LabelRow] = []
    for row, text in enumerate(texts):
        label = spec.encode(text)
        if label is None:
            where = f"row {row} of inference '{clip(key)}'" if len(texts) > 1 else f"inference '{clip(key)}'"
            found.add(
                Rule.LABEL,
                line,
                clip(text),
                f"line {line}: label {clip(repr(text))} ({where}) is not a valid label; expected "
                f"{spec.expected()}",
            )
            continue
        rows.append(LabelRow(key, row, label))
    return rows


def _valid_id(key: str, line: int, found: _Found) -> bool:
    if is_inference_id(key):
        return True
    what = (
        "is empty"
        if not key
        else f"is {len(key)} characters long"
        if len(key) > INFERENCE_ID_MAX
        else "starts with a space or holds a character outside printable ASCII"
    )
    found.add(
        Rule.INFERENCE_ID,
        line,
        clip(key),
        f"line {line}: inference id {clip(repr(key))} {what}; expected 1 to {INFERENCE_ID_MAX} printable "
        "ASCII characters, not starting with a space (SageMaker's InferenceId)",
    )
    return False


def _read_csv(text: str, spec: LabelSpec, found: _Found) -> tuple[list[Located], int]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next((r for r in reader if r), [])
        columns = _csv_columns(header, reader.line_num, found)
        if columns is None:
            return [], 0
        rows: list[Located] = []
        records = 0
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            records += 1
            rows.extend(_csv_record(record, reader.line_num, columns, spec, found))
    except csv.Error as error:
        found.add(Rule.FORMAT, reader.line_num, "", f"line {reader.line_num} cannot be read as CSV ({error})")
        return [], 0
    if not records:
        found.add(
            Rule.HEADER_ONLY,
            reader.line_num,
            "",
            "the ground-truth file has a header but no data rows; expected at least one label",
        )
    return rows, records


def _csv_columns(header: list[str], line: int, found: _Found) -> dict[str, int] | None:
    names = [name.strip() for name in header]
    expected = f"expected the columns {ID_COLUMN},{LABEL_COLUMN} and optionally {ROW_COLUMN}, in any order"
    unknown = [n for n in names if n not in CSV_COLUMNS]
    if unknown:
        shown = ", ".join(f"'{clip(n)}'" for n in unknown)
        found.add(
            Rule.UNEXPECTED_COLUMNS,
            line,
            clip(unknown[0]),
            f"the header has unknown columns {shown}; {expected}",
        )
    missing = [n for n in (ID_COLUMN, LABEL_COLUMN) if n not in names]
    if missing:
        found.add(
            Rule.MISSING_COLUMNS,
            line,
            missing[0],
            f"the header ({clip(','.join(names))}) lacks {', '.join(missing)}; {expected}",
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        found.add(
            Rule.DUPLICATE_COLUMNS,
            line,
            twice[0],
            f"the header names {', '.join(twice)} more than once; {expected}",
        )
    return None if found else {n: names.index(n) for n in names}


def _csv_record(
    record: list[str], line: int, columns: dict[str, int], spec: LabelSpec, found: _Found
) -> list[Located]:
    if len(record) != len(columns):
        found.add(
            Rule.LABEL_COUNT,
            line,
            clip(",".join(record)),
            f"line {line} has {len(record)} fields where the header has {len(columns)}; expected one "
            "inference id and one label per line (a multi-row inference takes one line per row, with "
            f"'{ROW_COLUMN}')",
        )
        return []
    key = record[columns[ID_COLUMN]]
    if not _valid_id(key, line, found):
        return []
    row = 0
    if ROW_COLUMN in columns:
        text = record[columns[ROW_COLUMN]].strip()
        if not (text.isascii() and text.isdigit() and int(text) <= ROW_MAX):
            found.add(
                Rule.LABEL_ROW,
                line,
                clip(text),
                f"line {line}: row {clip(repr(text))} of inference '{clip(key)}' is not a row number; "
                f"expected a whole number from 0 (the inference's first row) to {ROW_MAX}",
            )
            return []
        row = int(text)
    text = record[columns[LABEL_COLUMN]]
    label = spec.encode(text)
    if label is None:
        found.add(
            Rule.LABEL,
            line,
            clip(text),
            f"line {line}: label {clip(repr(text))} (inference '{clip(key)}', row {row}) is not a valid "
            f"label; expected {spec.expected()}",
        )
        return []
    return [(LabelRow(key, row, label), line)]


def _check_duplicates(rows: Iterable[Located], found: _Found) -> None:
    first: dict[tuple[str, int], int] = {}
    for label, line in rows:
        pair = (label.inference_id, label.row)
        seen = first.setdefault(pair, line)
        if seen != line:
            found.add(
                Rule.DUPLICATE_LABEL,
                line,
                clip(label.inference_id),
                f"line {line} labels inference '{clip(label.inference_id)}' row {label.row} again (first on "
                f"line {seen}); expected each (inference, row) once per file (a later file may correct it)",
            )


# --- the canonical accepted form ------------------------------------------------------------------------


def canonical_csv(rows: Iterable[LabelRow]) -> bytes:
    """`inference_id,row,label`, quoted only where CSV needs it, in the file's own order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows((r.inference_id, r.row, _label_text(r.label)) for r in rows)
    return buffer.getvalue().encode()


def _label_text(label: float) -> str:
    return str(int(label)) if label.is_integer() and abs(label) < 2**53 else repr(label)


def accepted_key(model: str, arrived: datetime, sha256: str) -> str:
    """`<model>/ground-truth/accepted/YYYY/MM/DD/HH/<YYYYmmddTHHMMSSffffff>Z-<sha256[:16]>.csv` (UTC arrival):
    keys sort in arrival order, which is the order `latest_labels` resolves duplicates in."""
    at = arrived.astimezone(UTC)
    folder = f"{model}/{GROUND_TRUTH}/{GROUND_TRUTH_ACCEPTED}/{at:%Y/%m/%d/%H}"
    return f"{folder}/{at:%Y%m%dT%H%M%S%f}Z-{sha256[:16]}.csv"
