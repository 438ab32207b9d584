"""BatchResolve Lambda: which SageMaker Model scores a batch (the serving version's, or the named approved
version's), the transform job's name and S3 locations; records the job InProgress. `$.resolved` out.

Thin on purpose: parse the payload, call `headrace.batch.resolve.resolve`.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.batch.payloads import ResolveRequest
from headrace.batch.ports import BatchPorts
from headrace.batch.resolve import resolve
from headrace.batch.runtime import BATCH_DOMAIN, BatchSettings, batch_runtime
from headrace.lambda_env import Runtime, per_environment
from headrace.steps import model_named, parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    request = parse_request(ResolveRequest, event)
    resolved = resolve(
        request,
        model_named(runtime.models, request.model),
        runtime.ports,
        names=runtime.settings.names,
        bucket=runtime.settings.data_bucket,
    )
    return resolved.model_dump(mode="json")


@per_environment(BatchSettings, logger=logger, metrics=metrics, domain=BATCH_DOMAIN)
def _runtime(settings: BatchSettings) -> Runtime[BatchSettings, BatchPorts]:
    return batch_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
