"""The run ledger's partition key, shared by ingest's items (datasets, rejections) and training's (runs)."""

from __future__ import annotations


def model_pk(model: str) -> str:
    """One partition per model: its datasets, rejections and runs sit side by side."""
    return f"model#{model}"
