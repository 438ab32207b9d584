"""Evaluate Lambda: the trained candidate's evaluation against the gate and the champion; `$.gate` out.

Thin on purpose: parse the payload, call `headrace.training.evaluate.evaluate`, return the gate's result.
Settings, models and AWS clients are built on the first invocation of each environment.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import Runtime, per_environment
from headrace.steps import model_named, parse_request
from headrace.training.evaluate import evaluate
from headrace.training.payloads import EvaluateRequest
from headrace.training.ports import TrainingPorts
from headrace.training.runtime import TRAINING_DOMAIN, training_runtime
from headrace.training.settings import BucketStepSettings

# Written into the deployed asset by headrace.config.models_document; HEADRACE_MODELS_DIR overrides it.
MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "execution", "job_name"])  # a warm container must not log the last run's ids
    request = parse_request(EvaluateRequest, event)
    logger.append_keys(model=request.model, job_name=request.run.job_name)
    gate = evaluate(
        request,
        model_named(runtime.models, request.model),
        runtime.ports,
        names=runtime.settings.names,
        bucket=runtime.settings.data_bucket,
    )
    logger.info("candidate evaluated", extra={"passed": gate.passed, "reasons": gate.reasons})
    return gate.model_dump(mode="json")


@per_environment(BucketStepSettings, logger=logger, metrics=metrics, domain=TRAINING_DOMAIN)
def _runtime(settings: BucketStepSettings) -> Runtime[BucketStepSettings, TrainingPorts]:
    return training_runtime(settings, metrics, MODELS_DOCUMENT)


cold_start.imported()
