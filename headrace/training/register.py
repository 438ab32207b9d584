"""Register: a candidate that passed the gate becomes a new version of the model's package group in the
SageMaker Model Registry, Approved under `gate.approval: auto`, PendingManualApproval otherwise.

Idempotent: a replayed Register finds the version it created (by its training job, among the versions
created since the run started) instead of adding a second one; CreateModelPackage's ClientToken covers
the window between creating the version and recording it.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from headrace.config import ModelConfig
from headrace.ledger import RunItem
from headrace.naming import Names
from headrace.training.layout import RunLayout
from headrace.training.lineage import lineage_document, package_request
from headrace.training.payloads import Registered, RegisterRequest
from headrace.training.ports import TrainingPorts
from headrace.training.tuning import trial_hyperparameters
from headrace.training_job import hyperparameters_for

log = logging.getLogger("headrace.training")

REGISTERED_METRIC = "ModelVersionsRegistered"
# Versions created this long before the run's recorded start are not looked at for a replay (clock skew).
CLOCK_SKEW = timedelta(minutes=5)


class GateNotPassed(ValueError):
    """Register was asked to register a candidate the gate rejected."""


def register(
    request: RegisterRequest,
    model: ModelConfig,
    ports: TrainingPorts,
    *,
    names: Names,
    bucket: str,
) -> Registered:
    job = request.run.job_name
    if not request.gate.passed:
        raise GateNotPassed(f"run {job} did not pass the gate: {'; '.join(request.gate.reasons)}")
    group = names.model_package_group(model.name)
    ports.registry.ensure_group(
        group,
        model.description or f"Headrace model {model.name}",
        {"headrace:stage": names.stage, "headrace:model": model.name},
    )
    arn = ports.registry.find_version(group, job, request.run.started_at - CLOCK_SKEW)
    created = arn is None
    if arn is None:
        # A tuned run's version is its best trial: the static hyperparameters and that trial's tuned values.
        hyperparameters = (
            trial_hyperparameters(model, request.tuning["best"]["hyperparameters"])
            if request.tuning
            else hyperparameters_for(model)
        )
        layout = RunLayout(bucket, model.name, job)
        lineage_uri = layout.uri(layout.lineage_key)
        document = lineage_document(request, model, hyperparameters, lineage_uri)
        ports.store.put(
            bucket, layout.lineage_key, json.dumps(document, indent=1).encode(), "application/json"
        )
        arn = ports.registry.create_version(
            package_request(request, model, names, hyperparameters, lineage_uri)
        )
    version = ports.registry.describe_version(arn)
    registered = Registered(
        model_package_group=group,
        model_package_arn=version.arn,
        version=version.version,
        approval_status=version.approval_status,
        created=created,
    )
    ports.ledger.update(
        RunItem.registered(
            model.name,
            job,
            model_package_arn=registered.model_package_arn,
            version=registered.version,
            approval_status=registered.approval_status,
            at=ports.clock(),
        )
    )
    if created:
        ports.metrics.count(REGISTERED_METRIC, model.name)
    log.info(
        "run %s is version %d of %s (%s)",
        job,
        version.version,
        group,
        version.approval_status,
        extra={"job_name": job, "model_package_arn": version.arn, "version_created": created},
    )
    return registered
