"""SageMaker's data-capture format read back: one JSON line per invocation, the request under
`captureData.endpointInput` (CSV rows without a header in the model's feature order, or the JSON shapes the
serving container accepts), base64 when the content type was neither CSV nor JSON."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


class CaptureError(ValueError):
    pass


def rows_from_json(data: Any, features: Sequence[str]) -> list[list[Any]]:
    instances = data.get("instances", data) if isinstance(data, dict) else data
    if isinstance(instances, dict):
        instances = [instances]
    if isinstance(instances, list) and instances and not isinstance(instances[0], list | dict):
        instances = [instances]
    rows: list[list[Any]] = []
    for instance in instances if isinstance(instances, list) else []:
        if isinstance(instance, dict):
            rows.append([instance.get(name) for name in features])
        elif isinstance(instance, list):
            rows.append(list(instance))
    return rows


def decode_block(block: dict[str, Any]) -> tuple[str, str]:
    encoding = str(block.get("encoding", "CSV")).upper()
    data = str(block.get("data", ""))
    if encoding == "BASE64":
        data = base64.b64decode(data).decode("utf-8", errors="replace")
    return encoding, data


def request_rows(block: dict[str, Any], features: Sequence[str]) -> list[list[Any]]:
    """The rows of one captured request (`captureData.endpointInput`); ValueError when its JSON does not
    parse."""
    encoding, data = decode_block(block)
    observed = str(block.get("observedContentType", "")).split(";")[0].strip()
    if encoding == "JSON" or observed == "application/json":
        return rows_from_json(json.loads(data), features)
    return [list(r) for r in csv.reader(io.StringIO(data)) if r]


def _feature_rows(lines: Iterable[bytes | str], features: Sequence[str]) -> list[list[Any]]:
    """The feature rows of captured requests, as the requests held them.

    A line that is not a capture record, or a row of the wrong width, is skipped: the container refused those
    requests (4xx), so they never reached the model.
    """
    rows: list[list[Any]] = []
    for line in lines:
        if not line or not line.strip():
            continue
        try:
            record = json.loads(line)
            encoding, data = decode_block(record["captureData"]["endpointInput"])
            block = record["captureData"]["endpointInput"]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        observed = str(block.get("observedContentType", "")).split(";")[0].strip()
        if encoding == "JSON" or observed == "application/json":
            try:
                rows.extend(rows_from_json(json.loads(data), features))
            except ValueError:
                continue
        else:
            rows.extend(list(r) for r in csv.reader(io.StringIO(data)) if r)
    width = len(features)
    return [row for row in rows if len(row) == width]


def capture_rows(lines: Iterable[bytes | str], features: Sequence[str]) -> dict[str, npt.NDArray[np.object_]]:
    """The feature columns of captured requests, each an object array of the cells as the requests held
    them: text, or JSON's numbers, booleans and nulls (see `_feature_rows` for what is skipped). numpy, not
    pandas: the drift check's Partial step reads nothing else, and pandas would triple its cold start."""
    rows = _feature_rows(lines, features)
    table = np.empty((len(rows), len(features)), dtype=object)
    for i, row in enumerate(rows):
        table[i] = row
    return {name: table[:, j] for j, name in enumerate(features)}
