"""DriftPartial Lambda: one Map iteration counts one batch of captured objects against the reference and
writes the counts to S3; the key out (partials are too large for a state's payload).

Thin on purpose: parse the payload, call `headrace.monitoring.check.count_batch`.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

# The step's data stack (numpy, no pandas: capture_rows gives arrays), eagerly: every batch parses captures
# and counts them, so the imports belong to init, not to the first event.
import headrace.drift.partial
import headrace.monitoring.capture  # noqa: F401
from headrace.lambda_env import Runtime, per_environment
from headrace.monitoring.check import count_batch
from headrace.monitoring.payloads import PartialRequest
from headrace.monitoring.ports import DriftPorts
from headrace.monitoring.runtime import MONITORING_DOMAIN, DriftSettings, drift_runtime
from headrace.steps import parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    request = parse_request(PartialRequest, event)
    counted = count_batch(request, runtime.ports, bucket=runtime.settings.data_bucket)
    logger.info(
        "batch counted", extra={"model": request.model, "objects": len(request.keys), "rows": counted.rows}
    )
    return counted.model_dump(mode="json")


@per_environment(DriftSettings, logger=logger, metrics=metrics, domain=MONITORING_DOMAIN)
def _runtime(settings: DriftSettings) -> Runtime[DriftSettings, DriftPorts]:
    return drift_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
