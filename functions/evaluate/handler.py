"""Evaluate Lambda: the trained candidate's evaluation against the gate and the champion; `$.gate` out.

Thin on purpose: parse the payload, call `headrace.training.evaluate.evaluate`, return the gate's result.
Settings, models and AWS clients are built on the first invocation of each environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.config import ModelConfig
from headrace.training import aws
from headrace.training.evaluate import evaluate
from headrace.training.payloads import EvaluateRequest, parse_request
from headrace.training.runtime import CONNECTION_VARIABLES, model_named, models_for, observe
from headrace.training.settings import BucketStepSettings

# Written into the deployed asset by headrace.config.models_document; HEADRACE_MODELS_DIR overrides it.
MODELS_DOCUMENT = Path(__file__).parent / "models.json"
RUNTIME_VARIABLES = (*BucketStepSettings.variables(), *CONNECTION_VARIABLES)

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class Runtime:
    settings: BucketStepSettings
    models: dict[str, ModelConfig]
    store: aws.S3Store
    ledger: aws.DynamoRunLedger
    registry: aws.SageMakerRegistry


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime(tuple(os.environ.get(name) for name in RUNTIME_VARIABLES))
    logger.remove_keys(["model", "execution", "job_name"])  # a warm container must not log the last run's ids
    request = parse_request(EvaluateRequest, event)
    logger.append_keys(model=request.model, job_name=request.run.job_name)
    gate = evaluate(
        request,
        model_named(runtime.models, request.model),
        names=runtime.settings.names,
        bucket=runtime.settings.data_bucket,
        store=runtime.store,
        ledger=runtime.ledger,
        registry=runtime.registry,
        metrics=aws.PowertoolsMetrics(metrics),
        clock=aws.now,
    )
    logger.info("candidate evaluated", extra={"passed": gate.passed, "reasons": gate.reasons})
    return gate.model_dump(mode="json")


@cache
def _runtime(environment: tuple[str | None, ...]) -> Runtime:
    """Built once per distinct environment: in Lambda that is once per container (the cold start)."""
    settings = BucketStepSettings.from_environ(os.environ)
    observe(settings, logger, metrics)
    return Runtime(
        settings=settings,
        models=models_for(settings, MODELS_DOCUMENT),
        store=aws.S3Store(aws.client("s3")),
        ledger=aws.DynamoRunLedger(aws.client("dynamodb"), settings.ledger_table),
        registry=aws.SageMakerRegistry(aws.client("sagemaker")),
    )
