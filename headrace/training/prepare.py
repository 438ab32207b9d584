"""Prepare: a dataset version (and a retraining run's extra ones, training.gather) becomes a training run:
its job name, its train/validation/test splits and champion channel in the run's folder, and its run record
listing the datasets; for a tuned model also its tuning job's name and the newest Completed tuning job of
the model, which the new one warm-starts from. Safe to repeat: the job name comes from the execution name
and the split from the content, so a retried Prepare writes the same files and finds its record already there.
"""

from __future__ import annotations

import json
import logging

from headrace.config import ModelConfig
from headrace.ledger import DatasetVersion, RunItem
from headrace.naming import Names, training_job_name, tuning_job_name
from headrace.steps import Execution, NonEmpty, Payload
from headrace.training.champion import write_champion_channel
from headrace.training.gather import DatasetMismatch, gather
from headrace.training.layout import SPLITS, RunLayout
from headrace.training.payloads import RunInfo, SplitRows
from headrace.training.ports import TrainingPorts
from headrace.training.tuning import parent_tuning_job
from headrace.training_job import static_hyperparameters_for

log = logging.getLogger("headrace.training")

STARTED_METRIC = "TrainingRunsStarted"


class PrepareRequest(Payload):
    """`{"model.$": "$.model", "dataset.$": "$.dataset", "extra.$": "$.extra", "execution": {"name.$":
    "$$.Execution.Name", "id.$": "$$.Execution.Id"}}`."""

    model: NonEmpty
    dataset: DatasetVersion
    # A retraining run's other dataset versions (headrace.ledger.TrainingInput.extra).
    extra: list[DatasetVersion] = []
    execution: Execution


def prepare(
    request: PrepareRequest,
    model: ModelConfig,
    ports: TrainingPorts,
    *,
    names: Names,
    bucket: str,
) -> RunInfo:
    dataset = request.dataset
    gathered = gather(ports.store, dataset, request.extra, model)
    splits = gathered.splits

    layout = RunLayout(
        bucket, model.name, training_job_name(model.name, dataset.sha256, request.execution.name)
    )
    for split in SPLITS:
        ports.store.put(bucket, layout.split_key(split), splits.part(split).to_csv(), "text/csv")
    champion_version, champion = write_champion_channel(
        ports.store, layout, ports.registry.champion(names.model_package_group(model.name))
    )
    rows = SplitRows(**splits.rows())
    tuned = model.trainer.tuning is not None
    tuning_job = tuning_job_name(model.name, dataset.sha256, request.execution.name) if tuned else None
    started = ports.ledger.start_run(
        RunItem.started(
            layout.model,
            layout.job,
            dataset_sha256=dataset.sha256,
            dataset_key=dataset.dataset_key,
            dataset_version_id=dataset.version_id,
            # A tuned run's are the trials' static ones until TuningResult records the best trial's.
            hyperparameters=static_hyperparameters_for(model),
            execution_arn=request.execution.id,
            splits_prefix=layout.uri(f"{layout.prefix}splits/"),
            rows=rows.model_dump(),
            at=ports.clock(),
            datasets=json.dumps(
                {
                    "datasets": [d.model_dump(mode="json") for d in gathered.datasets],
                    "holdout": gathered.holdout.sha256 if gathered.holdout else None,
                }
            ),
        )
    )
    if started.created:
        ports.metrics.count(STARTED_METRIC, model.name)
    log.info(
        "prepared run %s (%s)",
        layout.job,
        champion,
        extra={"job_name": layout.job, "rows": rows.model_dump(), "datasets": len(gathered.datasets)},
    )
    return RunInfo(
        job_name=layout.job,
        train_uri=layout.split_uri("train"),
        validation_uri=layout.split_uri("validation"),
        test_uri=layout.split_uri("test"),
        champion_uri=layout.champion_uri,
        champion_version=champion_version,
        datasets=gathered.datasets,
        holdout=gathered.holdout,
        output_uri=layout.output_uri,
        checkpoint_uri=layout.checkpoint_uri,
        execution_arn=request.execution.id,
        started_at=started.started_at,
        rows=rows,
        tuning_job_name=tuning_job,
        parent_tuning_job=(
            parent_tuning_job(model, ports.tuning_jobs(), tuning_job) if tuning_job is not None else None
        ),
    )


__all__ = ["DatasetMismatch", "PrepareRequest", "prepare"]
