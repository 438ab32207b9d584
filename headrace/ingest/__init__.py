"""Ingest: a file dropped under `<model>/incoming/` becomes a validated, content-hashed dataset version that
starts training exactly once, or a quarantined copy with a machine-readable reason.

Modules, one per noun: `events` (the S3 notification), `routing` (key -> model), `reading` (bytes ->
cells: the format, and CSV's header and structure) with `csv_tokens` (CSV records), `csv_columns` (their
typed cells), `parquet` and `cells` (what they give), `validation` and `problems` (the rules), `table` (the
validated columns), `dataset` (the version's statistics; the version itself is headrace.ledger's),
`quarantine`, `ports` (what the flow needs) with `aws` (boto3/Powertools adapters), `settings` (the
function's environment) and `service` (the flow itself, which records in headrace.ledger).
"""

from typing import TYPE_CHECKING

from headrace.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from headrace.ingest.events import InvalidEvent, ObjectCreated, parse_object_created
    from headrace.ingest.problems import Problem, Rule
    from headrace.ingest.result import IngestResult, Outcome
    from headrace.ingest.service import ingest

# Each name's module loads when the name is first asked for: the flow (numpy, via dataset reading) and the
# S3 event (Powertools' parser models) are the ingest function's; the quality check reads label files with
# the problem rules and the ground-truth routing here and pays for neither.
_LAZY = {
    "InvalidEvent": "events",
    "ObjectCreated": "events",
    "parse_object_created": "events",
    "Problem": "problems",
    "Rule": "problems",
    "IngestResult": "result",
    "Outcome": "result",
    "ingest": "service",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "IngestResult",
    "InvalidEvent",
    "ObjectCreated",
    "Outcome",
    "Problem",
    "Rule",
    "ingest",
    "parse_object_created",
]
