"""Resolve: which SageMaker Model scores a batch, the transform job's name and S3 locations, and the ledger's
InProgress item. The serving endpoint's current Model by default; a named version must be Approved and have
a Model (the deploy workflow creates one per version it rolls out)."""

from __future__ import annotations

import logging

from headrace.batch.layout import output_prefix
from headrace.batch.payloads import Resolved, ResolveRequest
from headrace.batch.ports import BatchPorts
from headrace.config import ModelConfig
from headrace.ledger.batches import BatchItem
from headrace.ledger.keys import sort_time
from headrace.naming import Names, transform_job_name
from headrace.serving.rollout import version_of

log = logging.getLogger(__name__)


class NothingToScoreWith(LookupError):
    """No Model can score the batch: nothing is serving, or the named version is not usable."""


def resolve(
    request: ResolveRequest, model: ModelConfig, ports: BatchPorts, *, names: Names, bucket: str
) -> Resolved:
    batch = request.batch
    version, model_name = _scoring_model(batch.version, model, ports, names)
    job_name = transform_job_name(model.name, batch.sha256, request.started)
    resolved = Resolved(
        model=model.name,
        version=version,
        model_name=model_name,
        job_name=job_name,
        input_uri=f"s3://{bucket}/{batch.input_prefix}",
        output_uri=f"s3://{bucket}/{output_prefix(model.name, job_name)}",
    )
    # An update, not a put: a retried Resolve (or a Record that got there first) keeps what is recorded.
    ports.ledger.update(
        BatchItem(
            model=model.name,
            job_name=job_name,
            input_key=batch.source_key,
            sha256=batch.sha256,
            rows=batch.rows,
            version=version,
            model_name=model_name,
            execution_arn=request.execution.id,
            status="InProgress",
            started_at=sort_time(request.started),
        ),
        keep_existing={"status"},
    )
    log.info("batch resolved", extra=resolved.model_dump())
    return resolved


def _scoring_model(asked: int | None, model: ModelConfig, ports: BatchPorts, names: Names) -> tuple[int, str]:
    if asked is None:
        endpoint = names.endpoint(model.name)
        served = ports.hosting.served(endpoint)
        version = version_of(served.endpoint_config) if served else None
        if served is None or version is None:
            raise NothingToScoreWith(
                f"model '{model.name}' has no serving endpoint ({endpoint}) to score the batch with; "
                f"approve a version, or drop the file under {model.name}/batch/incoming/v<N>/ to name one"
            )
        return version, served.model_name
    group = names.model_package_group(model.name)
    status = ports.hosting.approval(group, asked)
    if status != "Approved":
        what = "does not exist" if status is None else f"is {status}"
        raise NothingToScoreWith(
            f"version {asked} of model '{model.name}' {what}: only Approved versions score batches"
        )
    # hosted_model(..., digest="") is the `<endpoint>-v<N>-` every Model of that version starts with.
    found = ports.hosting.newest_model(names.hosted_model(model.name, asked, ""))
    if found is None:
        raise NothingToScoreWith(
            f"version {asked} of model '{model.name}' has no SageMaker Model yet (it was never deployed); "
            f"deploy it once (headrace rollback {model.name} {asked}) or score with the serving version"
        )
    return asked, found
