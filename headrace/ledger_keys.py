"""The run ledger's partition key, shared by ingest's items (datasets, rejections) and training's (runs)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def model_pk(model: str) -> str:
    """One partition per model: its datasets, rejections and runs sit side by side."""
    return f"model#{model}"


def sort_time(moment: datetime) -> str:
    """UTC with a 'Z' and fixed width, so sort keys (rejections, runs) order by time as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plain(value: Any) -> Any:
    """DynamoDB numbers arrive as Decimal: ints stay ints, the rest become floats (for JSON and tables)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | set):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
