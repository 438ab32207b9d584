"""The ingest flow, through ports: route the key, check size and name, read and hash the bytes, validate,
then either record a dataset version and start training exactly once, or quarantine the file.

"Exactly once per content" holds three ways, each covering the others' gaps: the ledger says whether this
content already started a run; the `Once` port (Powertools idempotency) stops concurrent twins of one
event; and the execution name is derived from the content hash, so Step Functions itself refuses a second
start of the same dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from headrace.config import ModelConfig
from headrace.ingest.dataset import content_sha256, dataset_key, summarize
from headrace.ingest.events import ObjectCreated
from headrace.ingest.ports import IngestPorts, ObjectRef
from headrace.ingest.problems import Problem, Rule, rules
from headrace.ingest.quarantine import Placement, Reason, SourceObject, event_detail, placement
from headrace.ingest.reading import file_name
from headrace.ingest.result import IngestResult, Outcome
from headrace.ingest.routing import INCOMING, RouteKind, route
from headrace.ingest.validation import check_upload, inspect
from headrace.ledger import DatasetItem, DatasetVersion, RejectionItem, TrainingInput, sort_time
from headrace.naming import execution_name

DATASET_REJECTED = "Dataset Rejected"
DATASETS_ACCEPTED = "DatasetsAccepted"
DATASETS_REJECTED = "DatasetsRejected"
# Replays and re-uploads: visible, so a noisy producer is noticed, but not an error.
DATASETS_DUPLICATE = "DatasetsDuplicate"

log = logging.getLogger(__name__)


def ingest(notice: ObjectCreated, models: Mapping[str, ModelConfig], ports: IngestPorts) -> IngestResult:
    """Ingest the object a notification names. Raises only for infrastructure failures (retry those)."""
    where = route(notice.key, models)
    ref = ObjectRef(notice.bucket, notice.key, notice.version_id)
    if where.kind is RouteKind.IGNORE:
        log.info("ignored", extra={"key": notice.key, "why": where.reason})
        return IngestResult(outcome=Outcome.IGNORED, model=where.model, key=notice.key, note=where.reason)
    size = notice.size if notice.size is not None else ports.store.size(ref)
    if where.kind is RouteKind.UNKNOWN_MODEL:
        return _reject_unread(
            where.model, ref, size, [_key_prefix_problem(notice.key, models)], notice, ports
        )
    model = models[where.model]
    name = file_name(notice.key)
    upload_problems = check_upload(name, size, model.data)
    if upload_problems:
        return _reject_unread(model.name, ref, size, upload_problems, notice, ports)

    stored = ports.store.read(ref)
    # Pin the version actually read, so every later copy refers to exactly these bytes.
    ref = ObjectRef(ref.bucket, ref.key, ref.version_id or stored.version_id)
    sha256 = content_sha256(stored.body)
    seen = ports.ledger.dataset(model.name, sha256)
    if seen is not None and seen.execution_arn:
        return _duplicate(model.name, notice.key, sha256, seen.execution_arn, "ledger", ports)
    inspection = inspect(name, stored.body, model.data)
    if not inspection.accepted or inspection.format is None or inspection.frame is None:
        return _reject(model.name, ref, len(stored.body), sha256, inspection.problems, notice, ports)
    version = DatasetVersion(
        model=model.name,
        sha256=sha256,
        bucket=ref.bucket,
        key=ref.key,
        version_id=ref.version_id,
        size_bytes=len(stored.body),
        format=inspection.format,
        rows=inspection.rows,
        columns=inspection.columns,
        schema_fingerprint=model.data.fingerprint(),
        statistics=summarize(inspection.frame, model.data),
        received_at=notice.time,
        dataset_key=dataset_key(model.datasets_prefix, sha256, inspection.format),
    )
    return _accept(version, ref, ports)


def _accept(version: DatasetVersion, ref: ObjectRef, ports: IngestPorts) -> IngestResult:
    def work() -> IngestResult:
        # Checked again inside the guard: a twin holding the guard a moment ago may have finished since.
        seen = ports.ledger.dataset(version.model, version.sha256)
        if seen is not None and seen.execution_arn:
            return _duplicate(version.model, version.key, version.sha256, seen.execution_arn, "ledger", ports)
        ports.store.copy(ref, version.dataset_key, version.size_bytes)
        name = execution_name(version.model, version.sha256)
        run = ports.runs.start(version.model, name, TrainingInput.of(version).to_json())
        recorded = ports.ledger.record_dataset(DatasetItem.started(version, run.execution_arn, ports.clock()))
        if not (run.created and recorded):
            seen_by = "execution name" if not run.created else "ledger"
            return _duplicate(version.model, version.key, version.sha256, run.execution_arn, seen_by, ports)
        ports.metrics.count(DATASETS_ACCEPTED, version.model)
        log.info(
            "dataset accepted, training started",
            extra={**_ids(version.model, version.key, version.sha256), "execution_arn": run.execution_arn},
        )
        return IngestResult(
            outcome=Outcome.STARTED,
            model=version.model,
            key=version.key,
            sha256=version.sha256,
            execution_arn=run.execution_arn,
        )

    return ports.once({"step": "accept", "model": version.model, "sha256": version.sha256}, work)


def _reject_unread(
    prefix: str, ref: ObjectRef, size: int, problems: list[Problem], notice: ObjectCreated, ports: IngestPorts
) -> IngestResult:
    """Reject a file that is not worth loading (too large, not a data file, no model): hash it as a stream."""
    digest = ports.store.digest(ref)
    pinned = ObjectRef(ref.bucket, ref.key, ref.version_id or digest.version_id)
    return _reject(prefix, pinned, size, digest.sha256, problems, notice, ports)


def _reject(
    prefix: str,
    ref: ObjectRef,
    size: int,
    sha256: str,
    problems: list[Problem],
    notice: ObjectCreated,
    ports: IngestPorts,
) -> IngestResult:
    reason = Reason(
        model=prefix,
        source=SourceObject(bucket=ref.bucket, key=ref.key, version_id=ref.version_id, size=size),
        sha256=sha256,
        received_at=notice.time,
        problems=problems,
    )
    where = placement(prefix, notice.time, sha256, ref.key)

    def work() -> IngestResult:
        _quarantine(ref, size, reason, where, ports)
        return IngestResult(
            outcome=Outcome.QUARANTINED,
            model=prefix,
            key=ref.key,
            sha256=sha256,
            quarantine_key=where.key,
            problems=problems,
        )

    # Keyed on the upload, not the content: the same bad bytes dropped under another key are that
    # uploader's problem to hear about too, while a replayed event is not news.
    upload = {"step": "quarantine", "bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id or ""}
    return ports.once({**upload, "sha256": sha256}, work)


def rejection_item(reason: Reason, where: Placement, recorded_at: datetime) -> RejectionItem:
    source = reason.source
    return RejectionItem(
        model=reason.model,
        sha256=reason.sha256,
        bucket=source.bucket,
        key=source.key,
        version_id=source.version_id,
        size_bytes=source.size,
        quarantine_key=where.key,
        reason_key=where.reason_key,
        rules=rules(reason.problems),
        received_at=sort_time(reason.received_at),
        recorded_at=sort_time(recorded_at),
    )


def _quarantine(ref: ObjectRef, size: int, reason: Reason, where: Placement, ports: IngestPorts) -> None:
    # Copy first, then write the reason: a reason.json always has its file beside it. The original stays.
    ports.store.copy(ref, where.key, size)
    ports.store.put(
        ref.bucket, where.reason_key, reason.model_dump_json(indent=1).encode(), "application/json"
    )
    ports.ledger.record(rejection_item(reason, where, ports.clock()))
    ports.events.publish(DATASET_REJECTED, event_detail(reason, where))
    ports.metrics.count(DATASETS_REJECTED, reason.model)
    log.warning(
        "dataset rejected",
        extra={
            **_ids(reason.model, ref.key, reason.sha256),
            "quarantine_key": where.key,
            "rules": sorted({p.rule.value for p in reason.problems}),
        },
    )


def _duplicate(
    model: str, key: str, sha256: str, execution_arn: str, seen_by: str, ports: IngestPorts
) -> IngestResult:
    ports.metrics.count(DATASETS_DUPLICATE, model)
    log.info("duplicate content, no new run", extra={**_ids(model, key, sha256), "seen_by": seen_by})
    return IngestResult(
        outcome=Outcome.DUPLICATE, model=model, key=key, sha256=sha256, execution_arn=execution_arn
    )


def _key_prefix_problem(key: str, models: Mapping[str, ModelConfig]) -> Problem:
    first = key.split("/")[0] if "/" in key else ""
    what = f"'{first}' is not a model" if first else "it is not under any model's folder"
    known = ", ".join(sorted(models)) or "none"
    return Problem(
        rule=Rule.KEY_PREFIX,
        message=f"'{key}' cannot be ingested: {what} (known models: {known}); "
        f"expected a key like <model>/{INCOMING}/<file name>",
        values=[first or key],
    )


def _ids(model: str, key: str, sha256: str) -> dict[str, str]:
    return {"model": model, "key": key, "sha256": sha256}
