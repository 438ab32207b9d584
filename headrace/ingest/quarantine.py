"""Where a rejected file goes and what is written beside it. Nothing is ever deleted: the original stays
where it was dropped, a byte-identical server-side copy and a `reason.json` go under the quarantine prefix."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from headrace.ingest.problems import Problem, rules
from headrace.ingest.reading import file_name
from headrace.ingest.routing import QUARANTINE

REASON_NAME = "reason.json"
# An EventBridge entry is at most 256 KB; the event carries a summary, reason.json the whole list.
EVENT_PROBLEMS = 20


class SourceObject(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    version_id: str | None
    size: int


class Reason(BaseModel):
    """The content of reason.json: enough to find the original and to know every rule it broke."""

    model_config = ConfigDict(frozen=True)

    model: str
    source: SourceObject
    sha256: str
    received_at: datetime
    problems: list[Problem]


class Placement(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    reason_key: str


def placement(prefix: str, received_at: datetime, sha256: str, original_key: str) -> Placement:
    """`<prefix>/quarantine/<YYYY-MM-DD>/<HHMMSS.ffffff>-<sha256[:12]>-<key digest>/<file name>`, and
    reason.json beside it.

    Derived from the event (time, key) and the content only, so a replayed event lands on the same keys,
    while the same bad bytes dropped again, or under another key, get a folder and a reason of their own."""
    moment = received_at.astimezone(UTC)
    key_digest = hashlib.sha256(original_key.encode()).hexdigest()[:8]
    folder = f"{prefix}/{QUARANTINE}/{moment:%Y-%m-%d}/{moment:%H%M%S.%f}-{sha256[:12]}-{key_digest}/"
    name = file_name(original_key) or "object"
    if name == REASON_NAME:  # never let the upload and our reason document share a key
        name = f"upload-{name}"
    return Placement(key=folder + name, reason_key=folder + REASON_NAME)


def event_detail(reason: Reason, where: Placement) -> dict[str, Any]:
    """The "Dataset Rejected" event's detail: the reason document, summarized to fit an event."""
    return {
        "model": reason.model,
        "source": reason.source.model_dump(mode="json"),
        "sha256": reason.sha256,
        "received_at": reason.received_at.isoformat(),
        "quarantine_key": where.key,
        "reason_key": where.reason_key,
        "rules": rules(reason.problems),
        "problem_count": len(reason.problems),
        "problems": [
            p.model_dump(mode="json", include={"rule", "column", "message", "count"})
            for p in reason.problems[:EVENT_PROBLEMS]
        ],
    }
