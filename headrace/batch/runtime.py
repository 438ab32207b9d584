"""What the batch functions' handlers build once per environment: settings, models and the batch ports."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from headrace.batch.aws import connect_batch
from headrace.batch.ports import BatchPorts
from headrace.lambda_env import BusSettings, NonEmpty, Runtime, models_for

BATCH_DOMAIN = "headrace.batch"


class BatchSettings(BusSettings):
    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


def batch_runtime(settings: BatchSettings, models_document: Path) -> Runtime[BatchSettings, BatchPorts]:
    return Runtime(
        settings=settings, models=models_for(settings, models_document), ports=connect_batch(settings)
    )
