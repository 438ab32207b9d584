"""Idle endpoints Lambda: an hourly EventBridge Scheduler tick in, one `IdleDecision` per model that sets
`rollout.idle_hours` out: its endpoint deleted after that many hours without an invocation, or kept with
the reason. A repeated tick is harmless: a deleted endpoint is "no endpoint" the next time.

Thin on purpose: build the runtime, call `headrace.serving.idle.sweep` once.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import Runtime, per_environment
from headrace.serving.idle import sweep
from headrace.serving.idle_aws import IdleSettings, idle_runtime
from headrace.serving.ports import IdlePorts
from headrace.serving.runtime import SERVING_DOMAIN

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    models = [runtime.models[name] for name in sorted(runtime.models)]
    decisions = sweep(models, runtime.settings.names, runtime.ports)
    deleted = [d.endpoint for d in decisions if d.decision == "deleted"]
    logger.info("idle endpoints swept", extra={"decisions": len(decisions), "deleted": deleted})
    return {"decisions": [d.model_dump(mode="json") for d in decisions]}


@per_environment(IdleSettings, logger=logger, metrics=metrics, domain=SERVING_DOMAIN)
def _runtime(settings: IdleSettings) -> Runtime[IdleSettings, IdlePorts]:
    return idle_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
