"""Request bodies → rows of cells in feature order; predictions → response bodies.

Every problem with a payload is a `PayloadError` carrying its HTTP status and a message that names the row
and column where there is one; the server turns it into a JSON error body.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.encoding import EncodingError, FloatMatrix, RowEncoder

CSV: Final = "text/csv"
JSON: Final = "application/json"
SUPPORTED: Final = (CSV, JSON)
# Rows per encoder call for a large batch (about 10 ms of pandas work each).
SLICE_ROWS: Final = 2048
# In a batch transform (SageMaker sets SAGEMAKER_BATCH=true,
# https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-batch-code.html) plain CSV bodies are
# encoded column by column: the same numbers as the row encoder, five times faster. Rows per slice.
BATCH: Final = os.environ.get("SAGEMAKER_BATCH", "").lower() == "true"
COLUMN_SLICE_ROWS: Final = 32_768

Row = Sequence[Any]


class PayloadError(Exception):
    def __init__(self, status: int, message: str, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.row = row
        self.column = column

    def body(self) -> dict[str, Any]:
        where = {k: v for k, v in (("row", self.row), ("column", self.column)) if v is not None}
        return {"error": self.message, **where}


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def encode(body: bytes, content_type: str, features: Sequence[str], encoder: RowEncoder) -> FloatMatrix:
    if not body.strip():
        raise PayloadError(400, "empty request body: send one or more rows")
    rows: Sequence[Row]
    if BATCH and content_type == CSV:
        columnar = csv_columns(body, encoder)
        if columnar is not None:
            return columnar
    if content_type == CSV:
        rows = csv_rows(body, features)
    elif content_type == JSON:
        rows = json_rows(body, features)
    else:
        raise PayloadError(
            415, f"unsupported content type '{content_type or '(none)'}': send {' or '.join(SUPPORTED)}"
        )
    if len(rows) <= SLICE_ROWS:
        return _encoded(encoder, rows, 0)
    # A large batch is encoded in slices: each pandas call holds the GIL, and /ping, answered on the event
    # loop while this runs on the worker thread, waits for it (a whole 6 MB batch held it for 0.7 s).
    return np.vstack(
        [
            _encoded(encoder, rows[start : start + SLICE_ROWS], start)
            for start in range(0, len(rows), SLICE_ROWS)
        ]
    )


def _encoded(encoder: RowEncoder, rows: Sequence[Row], first: int) -> FloatMatrix:
    try:
        return encoder.encode(rows)
    except EncodingError as exc:
        row = exc.row + first
        message = str(exc).replace(f"row {exc.row},", f"row {row},", 1) if first else str(exc)
        raise PayloadError(400, message, row, exc.column) from None


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(400, f"the body is not UTF-8 text: {exc}") from None


def _width_error(row: int, got: int, features: Sequence[str]) -> PayloadError:
    return PayloadError(
        400,
        f"row {row} has {got} value(s); the model takes {len(features)}: {', '.join(features)}",
        row,
    )


def csv_rows(body: bytes, features: Sequence[str]) -> list[list[str]]:
    """CSV without a header, one row per line; blank lines are skipped."""
    text = _text(body)
    width = len(features)
    if '"' in text:
        try:
            rows = [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]
        except csv.Error as exc:  # a field over the csv module's size limit, a stray quote in strict mode
            raise PayloadError(400, f"the body is not valid CSV: {exc}") from None
    else:
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
    for r, row in enumerate(rows):
        if len(row) != width:
            raise _width_error(r, len(row), features)
    return rows


def csv_columns(body: bytes, encoder: RowEncoder) -> FloatMatrix | None:
    """`encoder.encode(csv_rows(body))` for a regular body, computed per column: every line holds exactly the
    model's width of unquoted cells, and every numeric cell is a number or empty. None for any other body,
    which the row encoder then reads (and explains what is wrong with it)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    width = len(encoder.features)
    commas = width - 1
    if '"' in text:
        return None
    lines = text.splitlines()
    if not lines or any(line.count(",") != commas for line in lines):
        return None  # a blank line, a row of another width: the row path skips or refuses it
    parts = [
        _columns(lines[start : start + COLUMN_SLICE_ROWS], encoder)
        for start in range(0, len(lines), COLUMN_SLICE_ROWS)
    ]
    if any(part is None for part in parts):
        return None
    return np.vstack(parts)  # type: ignore[arg-type]  # None was ruled out above


def _columns(lines: list[str], encoder: RowEncoder) -> FloatMatrix | None:
    width = len(encoder.features)
    cells = np.array(",".join(lines).split(","), dtype=object).reshape(len(lines), width)
    matrix = np.full((len(lines), width), np.nan)
    if encoder.numeric:
        numeric = cells[:, list(encoder.numeric)].ravel()
        parsed = np.asarray(pd.to_numeric(numeric, errors="coerce"), dtype=np.float64)
        unparsed = np.isnan(parsed)
        if unparsed.any() and (numeric[unparsed] != "").any():
            return None  # words ("true", "NA") and mistakes: the row encoder's rules
        parsed[~np.isfinite(parsed)] = np.nan
        matrix[:, list(encoder.numeric)] = parsed.reshape(len(lines), len(encoder.numeric))
    for column, codes in encoder.codes:
        found, labels = pd.factorize(cells[:, column])
        table = np.array([codes.get(str(label).strip(), math.nan) for label in labels] + [math.nan])
        matrix[:, column] = table[found]
    return matrix


def json_rows(body: bytes, features: Sequence[str]) -> list[Row]:
    """`{"instances": [[...], ...]}`, `{"instances": [{...}, ...]}`, one object `{"feature": value}`, a list
    of rows, or one row as a list."""
    try:
        try:
            document = json.loads(body)
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
                raise
            # An integer over Python's 4,300-digit conversion limit: parsed again with the slower hook
            # that makes it a float (infinite, so missing as in CSV) rather than failing.
            document = json.loads(body, parse_int=_integer)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError(400, "the body is not valid JSON: arrays or objects nested too deeply") from None
    if isinstance(document, dict) and "instances" in document:
        instances = document["instances"]
        if not isinstance(instances, list) or not instances:
            raise PayloadError(400, "'instances' must be a non-empty list of rows")
    elif isinstance(document, dict) or (
        isinstance(document, list) and document and not isinstance(document[0], list | dict)
    ):
        instances = [document]  # one row: an object of features, or a list of values
    elif isinstance(document, list) and document:
        instances = document
    else:
        raise PayloadError(400, 'expected {"instances": [...]}, an object of features, or a list of rows')
    return [_json_row(r, instance, features) for r, instance in enumerate(instances)]


def _integer(text: str) -> int | float:
    """A JSON integer; past Python's 4,300-digit conversion limit it is far past float64's range, so it is
    the infinity that float64 makes of it (missing, as in CSV and in training), not a ValueError."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _json_row(r: int, instance: Any, features: Sequence[str]) -> Row:
    if isinstance(instance, dict):
        unknown = [str(k) for k in instance if k not in features]
        if unknown:
            raise PayloadError(
                400,
                f"row {r} names {', '.join(unknown)}, which the model does not have; its features are "
                f"{', '.join(features)}",
                r,
                unknown[0],
            )
        row: Row = [instance.get(name) for name in features]
    elif isinstance(instance, list):
        if len(instance) != len(features):
            raise _width_error(r, len(instance), features)
        row = instance
    else:
        raise PayloadError(400, f"row {r} is a {type(instance).__name__}, not a list or an object", r)
    for c, value in enumerate(row):
        if isinstance(value, list | dict):
            raise PayloadError(
                400,
                f"row {r}, column {c} ('{features[c]}') holds a {type(value).__name__}, not a value",
                r,
                features[c],
            )
    return row


def render(predictions: npt.NDArray[Any], accept: str) -> tuple[bytes, str]:
    """The response body and its content type: JSON unless the caller asks for CSV."""
    if accept == CSV:
        if predictions.ndim == 1:
            lines = [repr(float(p)) for p in predictions.tolist()]
        else:
            lines = [",".join(repr(float(v)) for v in row) for row in predictions.tolist()]
        return ("\n".join(lines) + "\n").encode(), CSV
    values = predictions.tolist()
    if len(values) <= SLICE_ROWS:
        return json.dumps({"predictions": values}).encode(), JSON
    # In slices, as encoding is: one json.dumps of 100,000 floats holds the GIL for 0.1 s.
    parts = (json.dumps(values[i : i + SLICE_ROWS])[1:-1] for i in range(0, len(values), SLICE_ROWS))
    return ('{"predictions": [' + ", ".join(parts) + "]}").encode(), JSON
