"""What is wrong with a dropped file: one `Problem` per broken rule, for programs and people alike."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# How many offending rows and values a problem quotes: enough to find the pattern, small enough for an event.
SAMPLE_SIZE = 5
# A quoted value (a cell, a column name) is cut to this many characters: a 10 MB cell must not be echoed into
# reason.json, the "Dataset Rejected" event and the idempotency record (issue 14, finding 7).
VALUE_CHARS = 120
# A message quotes column names and values; past this it is cut (reason.json still says what was wrong).
MESSAGE_CHARS = 2000


class Rule(StrEnum):
    """Short ids a program can match on; the message explains them to a person."""

    SIZE = "size"
    EMPTY = "empty"
    BINARY = "binary"
    ENCODING = "encoding"
    FORMAT = "format"
    PARQUET_CORRUPT = "parquet_corrupt"
    HEADER_ONLY = "header_only"
    MIN_ROWS = "min_rows"
    MISSING_COLUMNS = "missing_columns"
    UNEXPECTED_COLUMNS = "unexpected_columns"
    DUPLICATE_COLUMNS = "duplicate_columns"
    TYPE = "type"
    NULLS = "nulls"
    NULL_FRACTION = "null_fraction"
    RANGE = "range"
    CATEGORY = "category"
    KEY_PREFIX = "key_prefix"
    # Ground-truth label files (headrace/quality/labels.py); the file-level rules above apply to them too.
    NOT_JSON = "not_json"
    MISSING_FIELD = "missing_field"
    LABEL_ENCODING = "label_encoding"
    LABEL = "label"
    LABEL_COUNT = "label_count"
    LABEL_ROW = "label_row"
    INFERENCE_ID = "inference_id"
    DUPLICATE_LABEL = "duplicate_label"


class Problem(BaseModel):
    """One broken rule. `rows` are 1-based data row numbers (the header is not a data row)."""

    model_config = ConfigDict(frozen=True)

    rule: Rule
    column: str | None = None
    message: str
    rows: list[int] = Field(default_factory=list, max_length=SAMPLE_SIZE)
    values: list[str] = Field(default_factory=list, max_length=SAMPLE_SIZE)
    count: int = Field(default=1, ge=1)

    # Enforced here rather than at each rule, so no rule can echo an oversized cell or header.
    @field_validator("column")
    @classmethod
    def _short_column(cls, column: str | None) -> str | None:
        return None if column is None else clip(column)

    @field_validator("message")
    @classmethod
    def _short_message(cls, message: str) -> str:
        return clip(message, MESSAGE_CHARS)

    @field_validator("values")
    @classmethod
    def _short_values(cls, values: list[str]) -> list[str]:
        return [clip(v) for v in values]


def clip(text: str, limit: int = VALUE_CHARS) -> str:
    """`text`, or its first characters and how long it was: enough to recognise it, never the whole cell."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def sample_values(values: Iterable[Any]) -> list[str]:
    """Up to SAMPLE_SIZE offending values as text, the way a person would type them."""
    return [_as_text(v) for _, v in zip(range(SAMPLE_SIZE), values, strict=False)]


def _as_text(value: Any) -> str:
    # A float that holds a whole number came from an integer cell ("7"), so show it as one.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rules(problems: Iterable[Problem]) -> list[str]:
    """The distinct rules broken, in first-seen order."""
    return list(dict.fromkeys(p.rule.value for p in problems))
