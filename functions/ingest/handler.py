"""Ingest Lambda: an S3 "Object Created" event (via EventBridge) in, an `IngestResult` out.

Thin on purpose: parse the event, call `headrace.ingest.ingest`, return the result. Settings, models and
AWS clients are built on the first invocation of each environment (not at import), so tests and the
local plane can set the environment whenever they like.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.config import ModelConfig, load_models, parse_models_document
from headrace.ingest import ingest, parse_object_created
from headrace.ingest.aws import Connection, connect
from headrace.ingest.settings import IngestSettings

# Written into the deployed asset by headrace.config.models_document; HEADRACE_MODELS_DIR overrides it.
MODELS_DOCUMENT = Path(__file__).parent / "models.json"

# What the cached runtime depends on: the settings, and where and how boto3 connects.
RUNTIME_VARIABLES = (*IngestSettings.variables(), "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")

logger = Logger()
metrics = Metrics()

# The domain logs through stdlib loggers under "headrace.ingest"; route them through this Logger's JSON
# handler so every line carries the same appended keys (model, key, sha256).
_domain_log = logging.getLogger("headrace.ingest")
_domain_log.addHandler(logger.registered_handler)
_domain_log.setLevel(logger.log_level)
_domain_log.propagate = False


@dataclass(frozen=True)
class Runtime:
    settings: IngestSettings
    models: dict[str, ModelConfig]
    connection: Connection


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime(tuple(os.environ.get(name) for name in RUNTIME_VARIABLES))
    logger.remove_keys(["key", "model", "sha256"])  # a warm container must not log the last file's ids
    notice = parse_object_created(event, bucket=runtime.settings.data_bucket)
    logger.append_keys(key=notice.key)
    runtime.connection.register(context)
    result = ingest(notice, runtime.models, runtime.connection.ports)
    logger.append_keys(model=result.model, sha256=result.sha256)
    logger.info("ingest finished", extra={"outcome": result.outcome.value})
    return result.model_dump(mode="json")


@cache
def _runtime(environment: tuple[str | None, ...]) -> Runtime:
    """Built once per distinct environment: in Lambda that is once per container (the cold start)."""
    settings = IngestSettings.from_environ(os.environ)
    models = _load_models(settings)
    settings.check_models(models)
    # Env may be set after import (tests, the local plane): take the names from the parsed settings.
    metrics.namespace = settings.metrics_namespace
    metrics.service = settings.service_name
    logger.append_keys(service=settings.service_name)
    return Runtime(settings, models, connect(settings, metrics))


def _load_models(settings: IngestSettings) -> dict[str, ModelConfig]:
    if settings.models_dir is not None:
        return {m.name: m for m in load_models(settings.models_dir)}
    return parse_models_document(MODELS_DOCUMENT.read_text(encoding="utf-8"))
