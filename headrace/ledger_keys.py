"""The run ledger's partition key, shared by ingest's items (datasets, rejections) and training's (runs)."""

from __future__ import annotations

from datetime import UTC, datetime


def model_pk(model: str) -> str:
    """One partition per model: its datasets, rejections and runs sit side by side."""
    return f"model#{model}"


def sort_time(moment: datetime) -> str:
    """UTC with a 'Z' and fixed width, so sort keys (rejections, runs) order by time as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
