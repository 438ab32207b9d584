"""Register Lambda: a candidate that passed the gate becomes a Model Registry version; `$.registered` out.

Thin on purpose: parse the payload, call `headrace.training.register.register`, return the version.
Settings, models and AWS clients are built on the first invocation of each environment. The models are the
stage's (models.json): a stage's approval policy has already replaced their gate.approval.
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
from headrace.training.payloads import RegisterRequest
from headrace.training.ports import TrainingPorts
from headrace.training.register import register
from headrace.training.runtime import TRAINING_DOMAIN, training_runtime
from headrace.training.settings import RegisterSettings

# Written into the deployed asset by headrace.config.models_document; HEADRACE_MODELS_DIR overrides it.
MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "execution", "job_name"])  # a warm container must not log the last run's ids
    request = parse_request(RegisterRequest, event)
    logger.append_keys(model=request.model, job_name=request.run.job_name)
    registered = register(
        request,
        model_named(runtime.models, request.model),
        runtime.ports,
        names=runtime.settings.names,
        bucket=runtime.settings.data_bucket,
    )
    logger.info(
        "model version registered",
        extra={"model_package_arn": registered.model_package_arn, "approval": registered.approval_status},
    )
    return registered.model_dump(mode="json")


@per_environment(RegisterSettings, logger=logger, metrics=metrics, domain=TRAINING_DOMAIN)
def _runtime(settings: RegisterSettings) -> Runtime[RegisterSettings, TrainingPorts]:
    return training_runtime(settings, metrics, MODELS_DOCUMENT)


cold_start.imported()
