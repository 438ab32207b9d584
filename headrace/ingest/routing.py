"""Which model a dropped key belongs to: the first path segment names the model, files go under `incoming/`.

Keys the pipeline writes itself (quarantine copies, reason documents, dataset copies) are ignored, so a
bucket-wide notification rule can never make ingest chase its own output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from headrace.config import MODEL_NAME_PATTERN, ModelConfig

# Where a key with no usable first segment (no '/', or not a possible model name) is quarantined.
UNROUTED_PREFIX = "unknown"
INCOMING = "incoming"
QUARANTINE = "quarantine"


class RouteKind(StrEnum):
    INGEST = "ingest"  # <model>/incoming/<file>
    UNKNOWN_MODEL = "unknown_model"  # quarantine with rule key_prefix
    IGNORE = "ignore"  # not a drop: our own output, or a folder marker


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    # The model for INGEST; for UNKNOWN_MODEL the prefix the quarantine goes under.
    model: str
    reason: str = ""


def route(key: str, models: Mapping[str, ModelConfig]) -> Route:
    segments = key.split("/")
    first = segments[0] if len(segments) > 1 else ""
    if key.endswith("/"):
        return Route(RouteKind.IGNORE, first, "a folder marker, not a file")
    if len(segments) > 1 and segments[1] == QUARANTINE:
        return Route(RouteKind.IGNORE, first, "a quarantined file")
    if first in models:
        if segments[1] != INCOMING:
            return Route(RouteKind.IGNORE, first, f"not under {first}/{INCOMING}/ (pipeline output)")
        return Route(RouteKind.INGEST, first)
    prefix = first if re.fullmatch(MODEL_NAME_PATTERN, first) else UNROUTED_PREFIX
    return Route(RouteKind.UNKNOWN_MODEL, prefix, f"'{first or key}' is not a model")
