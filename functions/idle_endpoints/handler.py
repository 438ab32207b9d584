"""Idle endpoints Lambda: an hourly EventBridge Scheduler tick in, one `IdleDecision` per model that sets
`rollout.idle_hours` out: its endpoint deleted after that many hours without an invocation, or kept with
the reason. A repeated tick is harmless: a deleted endpoint is "no endpoint" the next time.

Thin on purpose: build the runtime, call `headrace.serving.idle.sweep` once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import per_environment
from headrace.serving.idle import sweep
from headrace.serving.idle_aws import IdleSettings, IdleStep
from headrace.serving.runtime import SERVING_DOMAIN
from headrace.training import aws

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    decisions = sweep(
        [runtime.models[name] for name in sorted(runtime.models)],
        runtime.settings.names,
        endpoints=runtime.endpoints,
        metrics=runtime.metrics,
        ledger=runtime.ledger,
        events=runtime.events,
        clock=aws.now,
    )
    deleted = [d.endpoint for d in decisions if d.decision == "deleted"]
    logger.info("idle endpoints swept", extra={"decisions": len(decisions), "deleted": deleted})
    return {"decisions": [d.model_dump(mode="json") for d in decisions]}


@per_environment(IdleSettings, logger=logger, metrics=metrics, domain=SERVING_DOMAIN)
def _runtime(settings: IdleSettings) -> IdleStep:
    return IdleStep.connect(settings, MODELS_DOCUMENT)
