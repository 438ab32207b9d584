"""Accepted ground-truth label files (`inference_id,row,label`, the canonical form headrace.quality.labels
writes) read back as arrays, and merged with the later file winning: what the quality check's Partial step
reads on every batch. Apart from labels.py, whose upload rules (and the ingest problem models they report
with) the check never runs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from headrace.quality.join import key_array

ID_COLUMN, ROW_COLUMN, LABEL_COLUMN = "inference_id", "row", "label"
CSV_COLUMNS = (ID_COLUMN, ROW_COLUMN, LABEL_COLUMN)

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AcceptedLabels:
    """An accepted file's labels as arrays, for a vectorised join."""

    keys: npt.NDArray[np.bytes_]  # headrace.quality.join.key_array's form
    rows: npt.NDArray[np.int32]
    labels: Floats

    def __len__(self) -> int:
        return len(self.labels)


def read_accepted(data: bytes) -> AcceptedLabels:
    """An accepted (canonical) file as arrays. Without quotes no field holds a comma (csv quotes those), so
    the file splits on commas and newlines alone, as raw bytes: the keys come out in the join's form
    (headrace.quality.join.key_array, fixed-width UTF-8) with no str in between, a third faster than
    decoding for a million rows. A file with quoted ids goes through the csv module."""
    head, _, body = data.partition(b"\n")
    header = head.decode("utf-8", errors="replace")
    if header.split(",") != list(CSV_COLUMNS):
        from headrace.ingest.problems import clip  # a malformed file only: the rules' models cost ~3 ms

        raise ValueError(
            f"not an accepted label file: header {clip(header)!r}, expected {','.join(CSV_COLUMNS)}"
        )
    rows: Sequence[str | bytes]
    labels: Sequence[str | bytes]
    if b'"' in body:
        records = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        text = [cell for record in records if record for cell in record]
        keys, rows, labels = key_array(text[0::3]), text[1::3], text[2::3]
    else:
        raw = body.replace(b"\n", b",").split(b",")[: 3 * body.count(b"\n")]
        keys, rows, labels = np.array(raw[0::3], dtype=np.bytes_), raw[1::3], raw[2::3]
    return AcceptedLabels(
        keys=keys, rows=np.array(rows, dtype=np.int32), labels=np.array(labels, dtype=np.float64)
    )


def latest_labels(files: Sequence[tuple[str, AcceptedLabels]]) -> AcceptedLabels:
    """The labels of several accepted files, one per (inference id, row): the documented cross-file rule is
    that the LATER accepted file wins, and accepted keys sort in arrival order
    (headrace.quality.labels.accepted_key)."""
    ordered = [labels for _, labels in sorted(files, key=lambda f: f[0])]
    if not ordered:
        return AcceptedLabels(np.array([], dtype=np.bytes_), np.array([], dtype=np.int32), np.array([]))
    keys = np.concatenate([f.keys for f in ordered])
    rows = np.concatenate([f.rows for f in ordered])
    labels = np.concatenate([f.labels for f in ordered])
    # Stable sort by (key, row): within a group the last position is the latest file's.
    order = np.lexsort((np.arange(len(keys)), rows, keys))
    k, r = keys[order], rows[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (k[1:] != k[:-1]) | (r[1:] != r[:-1])
    keep = np.sort(order[last])
    return AcceptedLabels(keys[keep], rows[keep], labels[keep])
