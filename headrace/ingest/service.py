"""The ingest flow, through ports: route the key, check size and name, read and hash the bytes, validate,
then either record a dataset version and start training exactly once, or quarantine the file. Production
datasets (`<model>/incoming/production/`) are recorded without starting a run; ground-truth label files
(`<model>/ground-truth/incoming/`) go to ground_truth.py, which quarantines through this module's flow.

"Exactly once per content and attempt" holds three ways, each covering the others' gaps: the ledger says
whether this content already started a run; the `Once` port (Powertools idempotency) stops concurrent twins
of one event; and the execution name is derived from the content hash and attempt, so Step Functions itself
refuses a second start of the same attempt. Only a failed run lets the same bytes start another attempt
(attempts.py): while a run is in progress or after it ended at the gate or in the registry, they are a
duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from headrace.config import ModelConfig
from headrace.ingest.attempts import Attempt, next_attempt, previous_run, start_attempt
from headrace.ingest.dataset import content_sha256, dataset_key, summarize
from headrace.ingest.events import ObjectCreated
from headrace.ingest.ground_truth import ingest_ground_truth
from headrace.ingest.ports import IngestPorts, ObjectRef
from headrace.ingest.problems import Problem, Rule, rules
from headrace.ingest.quarantine import (
    EVENT_PROBLEMS,
    Placement,
    Reason,
    SourceObject,
    event_detail,
    placement,
)
from headrace.ingest.reading import file_name
from headrace.ingest.result import IngestResult, Outcome
from headrace.ingest.routing import INCOMING, RouteKind, lineage_uri, route
from headrace.ingest.validation import check_upload, inspect
from headrace.ledger import DatasetItem, DatasetVersion, MisplacedItem, RejectionItem, sort_time
from headrace.ledger.datasets import PRODUCTION

DATASET_REJECTED = "Dataset Rejected"
DATASETS_ACCEPTED = "DatasetsAccepted"
DATASETS_REJECTED = "DatasetsRejected"
# Replays and re-uploads: visible, so a noisy producer is noticed, but not an error.
DATASETS_DUPLICATE = "DatasetsDuplicate"
# Files dropped where no model looks (the bucket's root, a misspelt folder): recorded, shown by status.
FILES_MISPLACED = "FilesMisplaced"

log = logging.getLogger(__name__)


def ingest(notice: ObjectCreated, models: Mapping[str, ModelConfig], ports: IngestPorts) -> IngestResult:
    """Ingest the object a notification names. Raises only for infrastructure failures (retry those)."""
    where = route(notice.key, models)
    ref = ObjectRef(notice.bucket, notice.key, notice.version_id)
    if where.kind is RouteKind.IGNORE:
        log.info("ignored", extra={"key": notice.key, "why": where.reason})
        return IngestResult(outcome=Outcome.IGNORED, model=where.model, key=notice.key, note=where.reason)
    if where.kind is RouteKind.MISPLACED:
        return _misplaced(where.model, where.reason, notice, ports)
    size = notice.size if notice.size is not None else ports.store.size(ref)
    if where.kind is RouteKind.UNKNOWN_MODEL:
        return _reject_unread(
            where.model, ref, size, [_key_prefix_problem(notice.key, models)], notice, ports
        )
    model = models[where.model]
    if where.kind is RouteKind.GROUND_TRUTH:
        return ingest_ground_truth(
            model,
            ref,
            size,
            notice.time,
            ports,
            reject=lambda at, n, sha256, found: _reject(model.name, at, n, sha256, found, notice, ports),
            reject_unread=lambda at, n, found: _reject_unread(model.name, at, n, found, notice, ports),
        )
    if where.kind is RouteKind.BATCH:
        # Imported here: the batch payloads and layout (about 10 ms of cold start) are batch files' only.
        from headrace.ingest.batch import ingest_batch

        return ingest_batch(
            model,
            ref,
            size,
            ports,
            reject=lambda at, n, sha256, found: _reject(model.name, at, n, sha256, found, notice, ports),
            reject_unread=lambda at, n, found: _reject_unread(model.name, at, n, found, notice, ports),
        )
    name = file_name(notice.key)
    upload_problems = check_upload(name, size, model.data)
    if upload_problems:
        return _reject_unread(model.name, ref, size, upload_problems, notice, ports)

    stored = ports.store.read(ref)
    # Pin the version actually read, so every later copy refers to exactly these bytes.
    ref = ObjectRef(ref.bucket, ref.key, ref.version_id or stored.version_id)
    sha256 = content_sha256(stored.body)
    production = where.kind is RouteKind.PRODUCTION
    attempt = _recorded(model.name, sha256, ports) if production else _attempt(model.name, sha256, ports)
    if isinstance(attempt, DatasetItem):
        return _duplicate(model.name, notice.key, sha256, attempt.execution_arn or "", "ledger", ports)
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
        **({"source": PRODUCTION, "lineage_uri": lineage_uri(ref.bucket, ref.key)} if production else {}),
    )
    if attempt is None:
        return _accept_production(version, ref, ports)
    return _accept(version, attempt, ref, ports)


def _recorded(model: str, sha256: str, ports: IngestPorts) -> DatasetItem | None:
    """A production dataset's content recorded already (a duplicate), else None: it starts no attempt."""
    return ports.ledger.dataset(model, sha256)


def _accept_production(version: DatasetVersion, ref: ObjectRef, ports: IngestPorts) -> IngestResult:
    """Record labelled production rows as a dataset version without starting a run: retraining picks them
    up (monitoring.retrain_data), so a quality check never trains by itself."""

    def work() -> IngestResult:
        ports.store.copy(ref, version.dataset_key, version.size_bytes)
        if not ports.ledger.record_dataset(DatasetItem.accepted(version, ports.clock())):
            return _duplicate(version.model, version.key, version.sha256, "", "ledger", ports)
        ports.metrics.count(DATASETS_ACCEPTED, version.model)
        log.info("production dataset accepted", extra=_ids(version.model, version.key, version.sha256))
        return IngestResult(
            outcome=Outcome.ACCEPTED, model=version.model, key=version.key, sha256=version.sha256
        )

    return ports.once({"step": "production", "model": version.model, "sha256": version.sha256}, work)


def _attempt(model: str, sha256: str, ports: IngestPorts) -> Attempt | DatasetItem:
    """The attempt this content may start, or the dataset item whose run makes it a duplicate."""
    seen = ports.ledger.dataset(model, sha256)
    number = next_attempt(seen, previous_run(seen, ports.ledger))
    if number is None:
        assert seen is not None  # a first attempt is always allowed
        return seen
    return Attempt(number, seen)


def _accept(version: DatasetVersion, attempt: Attempt, ref: ObjectRef, ports: IngestPorts) -> IngestResult:
    def work() -> IngestResult:
        # Checked again inside the guard: a twin holding the guard a moment ago may have finished since.
        now = _attempt(version.model, version.sha256, ports)
        if now != attempt:
            arn = now.execution_arn if isinstance(now, DatasetItem) else None
            arn = arn or (attempt.previous.execution_arn if attempt.previous else None) or ""
            return _duplicate(version.model, version.key, version.sha256, arn, "ledger", ports)
        ports.store.copy(ref, version.dataset_key, version.size_bytes)
        run = start_attempt(version, attempt, ports.ledger, ports.runs, ports.clock)
        if not run.created:
            return _duplicate(version.model, version.key, version.sha256, run.execution_arn, "attempt", ports)
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

    # Keyed on the attempt as well: a retry after a failed run is new work, not a replay of the first.
    key = {"step": "accept", "model": version.model, "sha256": version.sha256}
    return ports.once(key | ({"attempt": str(attempt.number)} if attempt.number > 1 else {}), work)


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
            # The idempotency record stores this result: a summary, as in the event; reason.json has all.
            problems=problems[:EVENT_PROBLEMS],
            note=None if len(problems) <= EVENT_PROBLEMS else f"{len(problems)} problems: see reason.json",
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


def _misplaced(prefix: str, hint: str, notice: ObjectCreated, ports: IngestPorts) -> IngestResult:
    """Record a file no model reads, without reading it (the function may only read `*/incoming/*`).

    Keyed on the upload, so a replayed event rewrites its own item and counts nothing new."""
    item = MisplacedItem(
        model=prefix,
        bucket=notice.bucket,
        key=notice.key,
        version_id=notice.version_id,
        size_bytes=notice.size,
        hint=hint,
        received_at=sort_time(notice.time),
        recorded_at=sort_time(ports.clock()),
    )

    def work() -> IngestResult:
        ports.ledger.record(item)
        ports.metrics.count(FILES_MISPLACED, prefix)
        log.warning("file misplaced", extra={"model": prefix, "key": notice.key, "hint": hint})
        return IngestResult(outcome=Outcome.MISPLACED, model=prefix, key=notice.key, note=hint)

    upload = {"step": "misplaced", "bucket": notice.bucket, "key": notice.key}
    return ports.once(upload | {"version_id": notice.version_id or ""}, work)


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
