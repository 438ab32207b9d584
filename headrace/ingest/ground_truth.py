"""Ground-truth label files arriving under `<model>/ground-truth/incoming/`: validated against the model's
label rules (headrace.quality.labels), copied in canonical form to `<model>/ground-truth/accepted/` and
recorded in the ledger, or quarantined exactly as a bad dataset is (the service's quarantine flow).

The accepted copy is named by its arrival time and content, and recorded once per canonical content: the
same labels dropped twice (under any key, as JSON lines or CSV) make one accepted copy. Powertools
idempotency (the `Once` port) keeps concurrent twins of one event from writing two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from headrace.config import ModelConfig
from headrace.ingest.dataset import content_sha256
from headrace.ingest.ports import IngestPorts, ObjectRef
from headrace.ingest.problems import Problem
from headrace.ingest.reading import file_name
from headrace.ingest.result import IngestResult, Outcome
from headrace.ledger import LabelFileItem, sort_time

LABEL_FILES_ACCEPTED = "LabelFilesAccepted"
LABEL_FILES_DUPLICATE = "LabelFilesDuplicate"
CANONICAL_TYPE = "text/csv"

# The service's quarantine flow: (the object, its size, its SHA-256, the problems) -> the result.
Reject = Callable[[ObjectRef, int, str, list[Problem]], IngestResult]
# The same, for a file not worth reading (too large, not a label file): hashed as a stream.
RejectUnread = Callable[[ObjectRef, int, list[Problem]], IngestResult]

log = logging.getLogger(__name__)


def ingest_ground_truth(
    model: ModelConfig,
    ref: ObjectRef,
    size: int,
    arrived: datetime,
    ports: IngestPorts,
    reject: Reject,
    reject_unread: RejectUnread,
) -> IngestResult:
    # Imported here: numpy is needed for label files only, not on every dataset's cold start.
    from headrace.quality.labels import LabelSpec, accepted_key, check_label_upload, check_labels

    name = file_name(ref.key)
    problems = check_label_upload(name, size)
    if problems:
        return reject_unread(ref, size, problems)
    stored = ports.store.read(ref)
    ref = ObjectRef(ref.bucket, ref.key, ref.version_id or stored.version_id)
    source_sha256 = content_sha256(stored.body)
    checked = check_labels(name, stored.body, LabelSpec.of(model))
    if not checked.accepted:
        return reject(ref, len(stored.body), source_sha256, checked.problems)
    canonical = checked.canonical()
    sha256 = content_sha256(canonical)
    item = LabelFileItem(
        model=model.name,
        sha256=sha256,
        bucket=ref.bucket,
        accepted_key=accepted_key(model.name, arrived, sha256),
        source_key=ref.key,
        source_version_id=ref.version_id,
        source_sha256=source_sha256,
        records=checked.records,
        labels=checked.labels,
        inferences=checked.inferences,
        arrived_at=sort_time(arrived),
        recorded_at=sort_time(ports.clock()),
    )
    seen = ports.ledger.label_file(model.name, sha256)
    if seen is not None:
        return _duplicate(seen, ref.key, ports)

    def work() -> IngestResult:
        # Checked again inside the guard: a twin holding it a moment ago may have recorded the content since.
        again = ports.ledger.label_file(model.name, sha256)
        if again is not None:
            return _duplicate(again, ref.key, ports)
        # The copy first, then the record: a crash in between leaves an unrecorded copy that the retry
        # (same event, same key) overwrites, never a record without its file.
        ports.store.put(ref.bucket, item.accepted_key, canonical, CANONICAL_TYPE)
        if not ports.ledger.record_label_file(item):
            winner = ports.ledger.label_file(model.name, sha256)
            return _duplicate(winner or item, ref.key, ports)
        ports.metrics.count(LABEL_FILES_ACCEPTED, model.name)
        log.info(
            "ground truth accepted",
            extra={"model": model.name, "key": ref.key, "sha256": sha256, "accepted_key": item.accepted_key},
        )
        return IngestResult(
            outcome=Outcome.ACCEPTED,
            model=model.name,
            key=ref.key,
            sha256=sha256,
            accepted_key=item.accepted_key,
            note=f"{item.labels} labels of {item.inferences} inferences",
        )

    return ports.once({"step": "labels", "model": model.name, "sha256": sha256}, work)


def _duplicate(seen: LabelFileItem, key: str, ports: IngestPorts) -> IngestResult:
    ports.metrics.count(LABEL_FILES_DUPLICATE, seen.model)
    log.info("duplicate ground truth", extra={"model": seen.model, "key": key, "sha256": seen.sha256})
    return IngestResult(
        outcome=Outcome.DUPLICATE,
        model=seen.model,
        key=key,
        sha256=seen.sha256,
        accepted_key=seen.accepted_key,
        note=f"the same labels were accepted from {seen.source_key}",
    )
