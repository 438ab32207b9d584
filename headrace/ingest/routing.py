"""Which model a dropped key belongs to: the first path segment names the model, files go under `incoming/`
(datasets; `incoming/production/` holds the labelled production rows the quality check writes) or under
`ground-truth/incoming/` (label files, issue 16).

Keys the pipeline writes itself (quarantine copies, reason documents, dataset copies, runs, capture,
monitoring) are ignored, so a bucket-wide notification rule can never make ingest chase its own output. Any
other key is a file someone dropped in the wrong place: misplaced, recorded and shown by `headrace status`
(issue 14, finding 10), with a hint where it probably belongs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from headrace.config import MODEL_NAME_PATTERN, ModelConfig

# Where a key with no usable first segment (no '/', or not a possible model name) is recorded.
UNROUTED_PREFIX = "unknown"
INCOMING = "incoming"
QUARANTINE = "quarantine"
# `<model>/incoming/production/<name>.csv`: labelled production rows the quality check writes (issue 16).
PRODUCTION = "production"
# `<model>/ground-truth/`: people drop label files in incoming/, ingest writes accepted/ (issue 16).
GROUND_TRUTH = "ground-truth"
GROUND_TRUTH_ACCEPTED = "accepted"
# The folders the pipeline writes under `<model>/`: ModelConfig.datasets_prefix, training.layout (runs),
# serving.rollout.capture_prefix, monitoring.check.monitoring_prefix, and our own quarantine
# (tests/unit/test_ingest_routing.py checks them against those modules).
PIPELINE_FOLDERS = ("datasets", "runs", "capture", "monitoring", QUARANTINE)
# `<model>/batch/`: people drop files to score in incoming/ (issue 17); the pipeline writes input/, output/.
BATCH = "batch"
BATCH_OUTPUT = ("input", "output")
# Pipeline output inside a folder that also takes drops: the data-arrival rule leaves out only these.
PIPELINE_SUBFOLDERS = (
    f"{GROUND_TRUTH}/{GROUND_TRUTH_ACCEPTED}",
    *(f"{BATCH}/{folder}" for folder in BATCH_OUTPUT),
)


class RouteKind(StrEnum):
    INGEST = "ingest"  # <model>/incoming/<file>
    PRODUCTION = "production"  # <model>/incoming/production/<file>: a dataset version, no training run
    GROUND_TRUTH = "ground_truth"  # <model>/ground-truth/incoming/<file>: a label file
    BATCH = "batch"  # <model>/batch/incoming/[v<N>/]<file>: rows to score
    UNKNOWN_MODEL = "unknown_model"  # <not a model>/.../incoming/<file>: quarantine with rule key_prefix
    MISPLACED = "misplaced"  # anywhere else: record it, say where it belongs
    IGNORE = "ignore"  # not a drop: our own output, or a folder marker


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    # INGEST: the model; UNKNOWN_MODEL and MISPLACED: the prefix (ledger partition) to record it under.
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
        if segments[1] == INCOMING:
            production = len(segments) == 4 and segments[2] == PRODUCTION
            return Route(RouteKind.PRODUCTION if production else RouteKind.INGEST, first)
        if segments[1] == GROUND_TRUTH:
            return _ground_truth(key, segments, models)
        if segments[1] == BATCH:
            return _batch(key, segments)
        if segments[1] in PIPELINE_FOLDERS:
            return Route(RouteKind.IGNORE, first, f"{first}/{segments[1]}/ is pipeline output")
        return Route(RouteKind.MISPLACED, first, misplaced_hint(key, models))
    prefix = first if re.fullmatch(MODEL_NAME_PATTERN, first) else UNROUTED_PREFIX
    # Only keys under some `.../incoming/` are readable by the ingest function (stacks/ingest.py grants
    # INCOMING_KEYS): those are quarantined as before; the rest are recorded without being read.
    if INCOMING in segments[1:-1]:
        return Route(RouteKind.UNKNOWN_MODEL, prefix, f"'{first or key}' is not a model")
    return Route(RouteKind.MISPLACED, prefix, misplaced_hint(key, models))


def _ground_truth(key: str, segments: list[str], models: Mapping[str, ModelConfig]) -> Route:
    model = segments[0]
    if len(segments) > 3 and segments[2] == INCOMING:
        return Route(RouteKind.GROUND_TRUTH, model)
    if len(segments) > 2 and segments[2] == GROUND_TRUTH_ACCEPTED:
        output = f"{model}/{GROUND_TRUTH}/{GROUND_TRUTH_ACCEPTED}/"
        return Route(RouteKind.IGNORE, model, f"{output} is pipeline output")
    meant = f"{model}/{GROUND_TRUTH}/{INCOMING}/{segments[-1]}"
    return Route(
        RouteKind.MISPLACED,
        model,
        f"'{key}' is not where model '{model}' looks for ground truth; did you mean {meant}?",
    )


def _batch(key: str, segments: list[str]) -> Route:
    model = segments[0]
    if len(segments) > 3 and segments[2] == INCOMING:
        return Route(RouteKind.BATCH, model)
    if len(segments) > 3 and segments[2] in BATCH_OUTPUT:
        return Route(RouteKind.IGNORE, model, f"{model}/{BATCH}/{segments[2]}/ is pipeline output")
    meant = f"{model}/{BATCH}/{INCOMING}/{segments[-1]}"
    return Route(
        RouteKind.MISPLACED,
        model,
        f"'{key}' is not where model '{model}' looks for files to score; did you mean {meant}?",
    )


def lineage_uri(bucket: str, key: str) -> str:
    """A production dataset's lineage: `<model>/incoming/production/<check folder>.csv` was written by the
    quality check whose folder holds lineage.json (`<model>/monitoring/quality/<check folder>/`)."""
    model, name = key.split("/")[0], key.rsplit("/", 1)[-1]
    folder = name.rsplit(".", 1)[0] if "." in name else name
    return f"s3://{bucket}/{model}/monitoring/quality/{folder}/lineage.json"


def misplaced_hint(key: str, models: Mapping[str, ModelConfig]) -> str:
    """Why no model reads `key`, and the key it was probably meant to have."""
    segments = key.split("/")
    name = segments[-1]
    known = ", ".join(sorted(models)) or "none"
    if len(segments) == 1:
        example = next(iter(sorted(models)), "<model>")
        return (
            f"'{key}' is at the bucket's root, where no model looks; "
            f"drop it under <model>/{INCOMING}/ (models: {known}), e.g. {example}/{INCOMING}/{name}"
        )
    first = segments[0]
    model: str | None = first if first in models else _closest(first, list(models))
    if model is None:
        return (
            f"'{first}' is not a model (models: {known}); drop the file under <model>/{INCOMING}/, "
            f"e.g. {next(iter(sorted(models)), '<model>')}/{INCOMING}/{name}"
        )
    folder = f"'{first}/{segments[1]}/'" if len(segments) > 2 else f"'{first}/'"
    meant = f"{model}/{INCOMING}/{name}"
    return f"{folder} is not where model '{model}' looks for data; did you mean {meant}?"


def _closest(word: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return found[0] if found else None
