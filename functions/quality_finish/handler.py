"""QualityFinish Lambda: merges the batches' metrics, judges the gate metric, publishes LiveQuality,
LabelledRows and QualityBreach (the live-quality alarm's input), records the check, writes result.json,
report.html and the labelled production rows; `$.check` out.

Thin on purpose: parse the payload, call `headrace.quality.check.finish_check`.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

# The step's metrics and report (numpy), eagerly: every check needs them, so the import belongs to init.
# (The gate's directions and slack are headrace.metric_direction's, which headrace.quality.check imports.)
import headrace.quality.metrics
import headrace.quality.production
import headrace.quality.report  # noqa: F401
from headrace.lambda_env import Runtime, per_environment
from headrace.quality.check import finish_check
from headrace.quality.payloads import QualityFinishRequest
from headrace.quality.ports import QualityPorts
from headrace.quality.runtime import MONITORING_DOMAIN, QualitySettings, quality_runtime
from headrace.steps import model_named, parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    request = parse_request(QualityFinishRequest, event)
    outcome = finish_check(
        request,
        model_named(runtime.models, request.window.model),
        runtime.ports,
        bucket=runtime.settings.data_bucket,
    )
    logger.info("quality check finished", extra=outcome.model_dump(mode="json"))
    return outcome.model_dump(mode="json")


@per_environment(QualitySettings, logger=logger, metrics=metrics, domain=MONITORING_DOMAIN)
def _runtime(settings: QualitySettings) -> Runtime[QualitySettings, QualityPorts]:
    return quality_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
