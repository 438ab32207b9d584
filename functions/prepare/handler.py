"""Prepare Lambda, the training state machine's first step: a dataset version in, `$.run` out.

Thin on purpose: parse the payload, call `headrace.training.prepare.prepare`, return the run. Settings,
models and AWS clients are built on the first invocation of each environment (not at import), so tests and
the local plane can set the environment whenever they like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.config import ModelConfig
from headrace.lambda_env import models_for, per_environment
from headrace.metrics import PowertoolsMetrics
from headrace.training import aws
from headrace.training.payloads import parse_request
from headrace.training.prepare import PrepareRequest, prepare
from headrace.training.runtime import TRAINING_DOMAIN, model_named
from headrace.training.settings import BucketStepSettings

# Written into the deployed asset by headrace.config.models_document; HEADRACE_MODELS_DIR overrides it.
MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class Runtime:
    settings: BucketStepSettings
    models: dict[str, ModelConfig]
    store: aws.S3Store
    ledger: aws.DynamoRunLedger


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "execution", "job_name"])  # a warm container must not log the last run's ids
    request = parse_request(PrepareRequest, event)
    logger.append_keys(model=request.model, execution=request.execution.name)
    run = prepare(
        request,
        model_named(runtime.models, request.model),
        bucket=runtime.settings.data_bucket,
        store=runtime.store,
        ledger=runtime.ledger,
        metrics=PowertoolsMetrics(metrics),
        clock=aws.now,
    )
    logger.append_keys(job_name=run.job_name)
    logger.info("run prepared", extra={"rows": run.rows.model_dump()})
    return run.model_dump(mode="json")


@per_environment(BucketStepSettings, logger=logger, metrics=metrics, domain=TRAINING_DOMAIN)
def _runtime(settings: BucketStepSettings) -> Runtime:
    return Runtime(
        settings=settings,
        models=models_for(settings, MODELS_DOCUMENT),
        store=aws.S3Store(aws.client("s3")),
        ledger=aws.DynamoRunLedger(aws.client("dynamodb"), settings.ledger_table),
    )
