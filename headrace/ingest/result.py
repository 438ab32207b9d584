"""What one ingest did, returned by the domain entry point and (as JSON) by the Lambda handler."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from headrace.ingest.problems import Problem


class Outcome(StrEnum):
    STARTED = "started"  # a new dataset version: recorded, training started
    ACCEPTED = "accepted"  # recorded, no run started: a production dataset, or a ground-truth label file
    DUPLICATE = "duplicate"  # this content already started a run; nothing new happened
    QUARANTINED = "quarantined"  # rejected: copied to quarantine with reason.json
    IGNORED = "ignored"  # not a drop (our own quarantine/dataset output, a folder marker)
    MISPLACED = "misplaced"  # dropped where no model looks: recorded (not read), shown by status


class IngestResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    model: str
    key: str
    sha256: str | None = None
    execution_arn: str | None = None
    quarantine_key: str | None = None
    # A ground-truth label file's canonical copy (under <model>/ground-truth/accepted/).
    accepted_key: str | None = None
    problems: list[Problem] | None = None
    note: str | None = None
