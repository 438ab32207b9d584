"""DriftFinish Lambda: merges the batches' counts, computes the statistics, publishes the drift metrics
(the drift alarm's input), writes the JSON result and the HTML report; `$.check` out.

Thin on purpose: parse the payload, call `headrace.monitoring.check.finish_check`.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

# The step's statistics and report (numpy), eagerly: every check needs them, so the import belongs to init.
import headrace.drift.check
import headrace.monitoring.report  # noqa: F401
from headrace.lambda_env import Runtime, per_environment
from headrace.monitoring.check import finish_check
from headrace.monitoring.payloads import FinishRequest
from headrace.monitoring.ports import DriftPorts
from headrace.monitoring.runtime import MONITORING_DOMAIN, DriftSettings, drift_runtime
from headrace.steps import model_named, parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    request = parse_request(FinishRequest, event)
    outcome = finish_check(
        request,
        model_named(runtime.models, request.window.model),
        runtime.ports,
        bucket=runtime.settings.data_bucket,
    )
    logger.info("drift check finished", extra=outcome.model_dump(mode="json"))
    return outcome.model_dump(mode="json")


@per_environment(DriftSettings, logger=logger, metrics=metrics, domain=MONITORING_DOMAIN)
def _runtime(settings: DriftSettings) -> Runtime[DriftSettings, DriftPorts]:
    return drift_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
