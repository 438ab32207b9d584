"""Labelled production rows as a dataset: the captured features joined with their ground truth, in the
schema's columns, written under `<model>/incoming/production/` where ingest validates them like any upload
and records them as a `production` dataset version with this lineage (which capture window, which label
files, which check)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from headrace.config import ModelConfig


class Lineage(BaseModel):
    """lineage.json beside the check's result (`<model>/monitoring/quality/<check>/lineage.json`)."""

    model_config = ConfigDict(frozen=True)

    check_id: str
    since: datetime  # the capture window
    until: datetime
    capture_objects: int
    label_files: list[str]  # the accepted label files used, in arrival order
    rows: int
    dataset_key: str


def production_csv(model: ModelConfig, parts: Iterable[bytes]) -> bytes:
    """The header (the schema's columns in config order, target included) and the partials' rows."""
    out = io.BytesIO()
    out.write((",".join(c.name for c in model.data.columns) + "\n").encode())
    for part in parts:
        out.write(part)
    return out.getvalue()
