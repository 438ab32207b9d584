"""Ingest Lambda: an S3 "Object Created" event (via EventBridge) in, an `IngestResult` out.

Thin on purpose: parse the event, call `headrace.ingest.ingest`, return the result. Settings, models and
AWS clients are built on the first invocation of each environment (not at import), so tests and the
local plane can set the environment whenever they like.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.config import ModelConfig
from headrace.ingest import ingest, parse_object_created
from headrace.ingest.aws import Connection, connect
from headrace.ingest.settings import IngestSettings
from headrace.lambda_env import models_for, per_environment

# Written into the deployed asset by headrace.config.models_document; HEADRACE_MODELS_DIR overrides it.
MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class Runtime:
    settings: IngestSettings
    models: dict[str, ModelConfig]
    connection: Connection


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["key", "model", "sha256"])  # a warm container must not log the last file's ids
    notice = parse_object_created(event, bucket=runtime.settings.data_bucket)
    logger.append_keys(key=notice.key)
    runtime.connection.register(context)
    result = ingest(notice, runtime.models, runtime.connection.ports)
    logger.append_keys(model=result.model, sha256=result.sha256)
    logger.info("ingest finished", extra={"outcome": result.outcome.value})
    return result.model_dump(mode="json")


# The domain logs through stdlib loggers under "headrace.ingest": routed through this Logger's JSON handler,
# every line carries the same appended keys (model, key, sha256).
@per_environment(IngestSettings, logger=logger, metrics=metrics, domain="headrace.ingest")
def _runtime(settings: IngestSettings) -> Runtime:
    models = models_for(settings, MODELS_DOCUMENT)
    settings.check_models(models)
    return Runtime(settings, models, connect(settings, metrics))


cold_start.imported()
