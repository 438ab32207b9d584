"""Captured inferences read back for the quality check: per row of each captured request, its join key, its
row index within the request, its features (text, in the model's feature order) and the model's score(s).

The join key is `eventMetadata.inferenceId` (InvokeEndpoint's InferenceId) when the caller gave one, else
`eventMetadata.eventId`: SageMaker Model Quality Monitor's convention, whose ground truth carries that key in
its own `eventMetadata.eventId`
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html).
The scores are what the serving container answered (containers/serve/CONTRACT.md): `{"predictions": [...]}`
or, with `Accept: text/csv`, one line per row; one value per row (a probability for binary:logistic, a
value for regression) or K class probabilities per row (multi:softprob).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from headrace.monitoring.capture import decode_block, request_rows
from headrace.quality.join import key_array


@dataclass(frozen=True)
class CapturedRows:
    keys: NDArray[np.bytes_]  # the join key of each row's inference (headrace.quality.join.key_array)
    rows: NDArray[np.int64]  # the row's index within its inference
    names: tuple[str, ...]  # the model's features, in order
    features: NDArray[np.object_]  # (n, len(names)): text, or the JSON scalars sent
    scores: NDArray[np.float64]  # (n,) one value per row, or (n, K) class probabilities
    inferences: int  # capture records read
    skipped: int  # records that are no scored request (refused, no output captured, widths that differ)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> NDArray[np.object_] | None:
        """One feature's values; None when the model has no such feature."""
        return self.features[:, self.names.index(name)] if name in self.names else None


def _matrix(rows: list[list[Any]], width: int) -> NDArray[np.object_]:
    matrix = np.empty((len(rows), width), dtype=object)
    try:
        matrix[...] = rows
    except ValueError:  # a JSON list or object in a cell: numpy would read it as a dimension
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                matrix[i, j] = value
    return matrix


def join_key(record: dict[str, Any]) -> str:
    meta = record["eventMetadata"]
    return str(meta.get("inferenceId") or meta["eventId"])


def response_scores(block: dict[str, Any]) -> list[list[float]]:
    """One list of scores per row of a captured response (`captureData.endpointOutput`)."""
    encoding, data = decode_block(block)
    observed = str(block.get("observedContentType", "")).split(";")[0].strip()
    if encoding == "JSON" or observed == "application/json":
        predictions = json.loads(data)["predictions"]
        return [[float(v) for v in p] if isinstance(p, list) else [float(p)] for p in predictions]
    return [[float(v) for v in line] for line in csv.reader(io.StringIO(data)) if line]


def read_captured(lines: Iterable[bytes | str], features: Sequence[str], width: int) -> CapturedRows:
    """The scored rows of captured records; `width` is the scores per row (1, or K for multi:softprob).

    A record without a response (an error the container answered, a capture without Output mode), or whose
    rows and scores do not match in number or width, is counted as skipped: it has no prediction to judge.
    """
    keys: list[str] = []
    indexes: list[int] = []
    rows: list[list[Any]] = []
    scores: list[list[float]] = []
    inferences = skipped = 0
    for line in lines:
        if not line or not line.strip():
            continue
        inferences += 1
        try:
            record = json.loads(line)
            key = join_key(record)
            inputs = request_rows(record["captureData"]["endpointInput"], features)
            outputs = response_scores(record["captureData"]["endpointOutput"])
        except (ValueError, KeyError, TypeError, AttributeError, csv.Error):
            skipped += 1
            continue
        if (
            not inputs
            or len(inputs) != len(outputs)
            or any(len(r) != len(features) for r in inputs)
            or any(len(s) != width for s in outputs)
        ):
            skipped += 1
            continue
        keys.extend([key] * len(inputs))
        indexes.extend(range(len(inputs)))
        rows.extend(inputs)
        scores.extend(outputs)
    matrix = np.asarray(scores, dtype=np.float64).reshape(len(scores), width)
    return CapturedRows(
        keys=key_array(keys),  # the form the join takes without a conversion
        rows=np.asarray(indexes, dtype=np.int64),
        names=tuple(features),
        features=_matrix(rows, len(features)),
        scores=matrix[:, 0] if width == 1 else matrix,
        inferences=inferences,
        skipped=skipped,
    )
