"""Ingest: a file dropped under `<model>/incoming/` becomes a validated, content-hashed dataset version that
starts training exactly once, or a quarantined copy with a machine-readable reason.

Modules, one per noun: `events` (the S3 notification), `routing` (key -> model), `reading` (bytes ->
frame), `validation` and `problems` (the rules), `dataset` (the version's statistics; the version itself is
headrace.ledger's), `quarantine`, `ports` (what the flow needs) with `aws` (boto3/Powertools adapters),
`settings` (the function's environment) and `service` (the flow itself, which records in headrace.ledger).
"""

from typing import TYPE_CHECKING, Any

from headrace.ingest.events import InvalidEvent, ObjectCreated, parse_object_created
from headrace.ingest.problems import Problem, Rule
from headrace.ingest.result import IngestResult, Outcome

if TYPE_CHECKING:
    from headrace.ingest.service import ingest


def __getattr__(name: str) -> Any:
    # The flow (pandas, via dataset reading) loads when asked for: the quality check reads label files with
    # the problem rules here and must not pay for pandas.
    if name == "ingest":
        from headrace.ingest.service import ingest

        return ingest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
