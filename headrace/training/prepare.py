"""Prepare: a dataset version becomes a training run: its job name, its train/validation/test splits in
the run's folder, and its run record. Safe to repeat: the job name comes from the execution name and the
split from the content, so a retried Prepare writes the same files and finds its record already there.
"""

from __future__ import annotations

import hashlib
import logging

from headrace.config import ModelConfig
from headrace.ledger import DatasetVersion, RunItem
from headrace.naming import training_job_name
from headrace.steps import Execution, NonEmpty, Payload
from headrace.training.layout import SPLITS, RunLayout
from headrace.training.payloads import RunInfo, SplitRows
from headrace.training.ports import TrainingPorts
from headrace.training.splits import read_dataset, split_dataset, to_csv
from headrace.training_job import hyperparameters_for

log = logging.getLogger("headrace.training")

STARTED_METRIC = "TrainingRunsStarted"


class PrepareRequest(Payload):
    """`{"model.$": "$.model", "dataset.$": "$.dataset", "execution": {"name.$": "$$.Execution.Name",
    "id.$": "$$.Execution.Id"}}`."""

    model: NonEmpty
    dataset: DatasetVersion
    execution: Execution


class DatasetMismatch(ValueError):
    """The dataset file is not the version the execution was started with."""


def prepare(
    request: PrepareRequest,
    model: ModelConfig,
    ports: TrainingPorts,
    *,
    bucket: str,
) -> RunInfo:
    dataset = request.dataset
    if dataset.model != model.name:
        raise DatasetMismatch(f"the dataset version belongs to model '{dataset.model}', not '{model.name}'")
    data = ports.store.read(dataset.bucket, dataset.dataset_key)
    digest = hashlib.sha256(data).hexdigest()
    if digest != dataset.sha256:
        raise DatasetMismatch(
            f"s3://{dataset.bucket}/{dataset.dataset_key} has SHA-256 {digest}, but the execution was "
            f"started for {dataset.sha256}: the content-addressed copy was changed after ingest"
        )
    splits = split_dataset(read_dataset(data, dataset.format, model.data), model, dataset.sha256)

    layout = RunLayout(
        bucket, model.name, training_job_name(model.name, dataset.sha256, request.execution.name)
    )
    for split in SPLITS:
        ports.store.put(bucket, layout.split_key(split), to_csv(splits.part(split)), "text/csv")
    rows = SplitRows(**splits.rows())
    started = ports.ledger.start_run(
        RunItem.started(
            layout.model,
            layout.job,
            dataset_sha256=dataset.sha256,
            dataset_key=dataset.dataset_key,
            dataset_version_id=dataset.version_id,
            hyperparameters=hyperparameters_for(model),
            execution_arn=request.execution.id,
            splits_prefix=layout.uri(f"{layout.prefix}splits/"),
            rows=rows.model_dump(),
            at=ports.clock(),
        )
    )
    if started.created:
        ports.metrics.count(STARTED_METRIC, model.name)
    log.info("prepared run %s", layout.job, extra={"job_name": layout.job, "rows": rows.model_dump()})
    return RunInfo(
        job_name=layout.job,
        train_uri=layout.split_uri("train"),
        validation_uri=layout.split_uri("validation"),
        test_uri=layout.split_uri("test"),
        output_uri=layout.output_uri,
        checkpoint_uri=layout.checkpoint_uri,
        execution_arn=request.execution.id,
        started_at=started.started_at,
        rows=rows,
    )
