"""Retrain Lambda: a drift or quality alarm entering ALARM (EventBridge) in, a `RetrainDecision` out:
started, or skipped with the reason (cooldown, daily cap, no data). One decision per alarm episode: a
redelivered event replays it (Powertools idempotency keyed on the episode).

Thin on purpose: parse the event, find the model, call `headrace.monitoring.retrain.decide` once.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from pydantic import ValidationError

from headrace.lambda_env import per_environment
from headrace.monitoring.retrain import AlarmStateChange, decide, model_for_alarm
from headrace.monitoring.retrain_aws import RetrainRuntime, RetrainSettings, retrain_runtime
from headrace.monitoring.runtime import MONITORING_DOMAIN
from headrace.steps import InvalidRequest

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "alarm"])
    try:
        change = AlarmStateChange.model_validate(event)
    except ValidationError as exc:
        raise InvalidRequest(f"not a CloudWatch Alarm State Change event: {exc.errors()[:3]}") from None
    model = model_for_alarm(change.detail.alarmName, list(runtime.models.values()), runtime.settings.names)
    logger.append_keys(model=model.name, alarm=change.detail.alarmName)
    runtime.register(context)
    decision = decide(change, model, runtime.ports)
    logger.info("retraining decided", extra={"decision": decision.decision, "reason": decision.reason})
    return decision.model_dump(mode="json")


@per_environment(RetrainSettings, logger=logger, metrics=metrics, domain=MONITORING_DOMAIN)
def _runtime(settings: RetrainSettings) -> RetrainRuntime:
    return retrain_runtime(settings, MODELS_DOCUMENT)


cold_start.imported()
