"""The rows a run trains on: every dataset version of the execution read and SHA-256 verified, oldest
first, concatenated and capped at `monitoring.retrain_data.max_rows` keeping the newest rows; then split.

A run of one dataset version (what ingest starts) is split exactly as `split_dataset` always has. A run
with labelled production data draws its test split (the holdout the gate judges) from the newest
production dataset only, so challenger and champion are compared on recent labelled rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from headrace.config import ModelConfig
from headrace.ledger import DatasetVersion
from headrace.ports import ObjectStore
from headrace.training.payloads import RunDataset
from headrace.training.splits import Splits, read_dataset, split_dataset, split_with_holdout
from headrace.training.table import Table


class DatasetMismatch(ValueError):
    """A dataset file is not the version the execution was started with."""


@dataclass(frozen=True)
class Gathered:
    splits: Splits
    # Oldest first; rows are what each contributed after the cap.
    datasets: list[RunDataset]
    holdout: RunDataset | None


def read_verified(store: ObjectStore, version: DatasetVersion, model: ModelConfig) -> Table:
    if version.model != model.name:
        raise DatasetMismatch(
            f"the dataset version {version.sha256[:12]} belongs to model '{version.model}', "
            f"not '{model.name}'"
        )
    data = store.read(version.bucket, version.dataset_key)
    digest = hashlib.sha256(data).hexdigest()
    if digest != version.sha256:
        raise DatasetMismatch(
            f"s3://{version.bucket}/{version.dataset_key} has SHA-256 {digest}, but the execution was "
            f"started for {version.sha256}: the content-addressed copy was changed after ingest"
        )
    return read_dataset(data, version.format, model.data)


def _entry(version: DatasetVersion, rows: int) -> RunDataset:
    return RunDataset(
        sha256=version.sha256,
        dataset_key=version.dataset_key,
        source=version.source,
        rows=rows,
        lineage_uri=version.lineage_uri,
    )


def gather(
    store: ObjectStore, dataset: DatasetVersion, extra: Sequence[DatasetVersion], model: ModelConfig
) -> Gathered:
    if not extra:
        table = read_verified(store, dataset, model)
        return Gathered(split_dataset(table, model, dataset.sha256), [_entry(dataset, len(table))], None)
    unique = {v.sha256: v for v in [dataset, *extra]}  # the same content listed twice is read once
    versions = sorted(unique.values(), key=lambda v: (v.received_at, v.sha256))
    tables = [read_verified(store, version, model) for version in versions]
    origin = np.concatenate([np.full(len(t), i) for i, t in enumerate(tables)])
    table = Table.concat(tables)
    cap = model.monitoring.retrain_data.max_rows
    if len(table) > cap:  # the newest rows are the end of the oldest-first concatenation
        table, origin = table.tail(cap), origin[len(table) - cap :]
    counts = np.bincount(origin, minlength=len(versions))
    kept = [(i, v) for i, v in enumerate(versions) if counts[i]]
    entries = [_entry(v, int(counts[i])) for i, v in kept]
    key = hashlib.sha256("\n".join(v.sha256 for _, v in kept).encode()).hexdigest()
    production = [(i, v) for i, v in kept if v.source == "production"]
    if not production:
        return Gathered(split_dataset(table, model, key), entries, None)
    index, newest = production[-1]
    splits = split_with_holdout(table, origin == index, model, newest.sha256, key)
    return Gathered(splits, entries, _entry(newest, int(counts[index])))
