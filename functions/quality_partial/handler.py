"""QualityPartial Lambda: one Map iteration joins one batch of captured inferences with the accepted labels
and writes its mergeable metrics, matched-label mask and labelled rows to S3; their keys out (too large for
a state's payload).

Thin on purpose: parse the payload, call `headrace.quality.check.count_batch`.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

# The step's data stack, eagerly: every batch parses captures, joins and counts them (numpy), so
# the imports belong to init, not to the first event.
import headrace.quality.accepted
import headrace.quality.captured
import headrace.quality.join
import headrace.quality.metrics  # noqa: F401
from headrace.lambda_env import Runtime, per_environment
from headrace.quality.check import count_batch
from headrace.quality.payloads import QualityPartRequest
from headrace.quality.ports import QualityPorts
from headrace.quality.runtime import MONITORING_DOMAIN, QualitySettings, quality_runtime
from headrace.steps import model_named, parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    request = parse_request(QualityPartRequest, event)
    counted = count_batch(
        request,
        model_named(runtime.models, request.model),
        runtime.ports,
        bucket=runtime.settings.data_bucket,
    )
    logger.info(
        "batch joined",
        extra={
            "model": request.model,
            "objects": len(request.keys),
            "rows": counted.rows,
            "labelled": counted.labelled,
        },
    )
    return counted.model_dump(mode="json")


@per_environment(QualitySettings, logger=logger, metrics=metrics, domain=MONITORING_DOMAIN)
def _runtime(settings: QualitySettings) -> Runtime[QualitySettings, QualityPorts]:
    return quality_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
