"""BatchRecord Lambda: how a batch's transform job ended (Completed with its output, or Failed/Stopped with
SageMaker's reason): the ledger item, a `Batch Completed`/`Batch Failed` event and metrics. `$.recorded` out.

Thin on purpose: parse the payload, call `headrace.batch.record.record`.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.batch.payloads import RecordRequest
from headrace.batch.ports import BatchPorts
from headrace.batch.record import record
from headrace.batch.runtime import BATCH_DOMAIN, BatchSettings, batch_runtime
from headrace.lambda_env import Runtime, per_environment
from headrace.steps import model_named, parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    request = parse_request(RecordRequest, event)
    outcome = record(request, model_named(runtime.models, request.resolved.model), runtime.ports)
    return outcome.model_dump(mode="json")


@per_environment(BatchSettings, logger=logger, metrics=metrics, domain=BATCH_DOMAIN)
def _runtime(settings: BatchSettings) -> Runtime[BatchSettings, BatchPorts]:
    return batch_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
