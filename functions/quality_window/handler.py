"""QualityWindow Lambda: which captured objects and accepted label files this quality check reads, in
batches for the Map; `$.window` out.

Thin on purpose: parse the payload, call `headrace.quality.check.plan_window`.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import Runtime, per_environment
from headrace.quality.check import plan_window
from headrace.quality.payloads import WindowRequest
from headrace.quality.ports import QualityPorts
from headrace.quality.runtime import MONITORING_DOMAIN, QualitySettings, quality_runtime
from headrace.steps import model_named, parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "execution"])
    request = parse_request(WindowRequest, event)
    logger.append_keys(model=request.model, execution=request.execution.name)
    window = plan_window(
        request,
        model_named(runtime.models, request.model),
        runtime.ports,
        names=runtime.settings.names,
        bucket=runtime.settings.data_bucket,
    )
    logger.info(
        "quality window",
        extra={"objects": window.objects, "batches": len(window.batches), "label_files": window.label_files},
    )
    return window.model_dump(mode="json")


@per_environment(QualitySettings, logger=logger, metrics=metrics, domain=MONITORING_DOMAIN)
def _runtime(settings: QualitySettings) -> Runtime[QualitySettings, QualityPorts]:
    return quality_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
