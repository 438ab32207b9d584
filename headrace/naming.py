"""Names shared by the CDK app, the local plane, the CLI and the tests, so that none of them guesses.

Physical names of buckets and tables are left to CloudFormation (global uniqueness, safe replacement);
callers find them through the stack outputs named here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_STAGE = "dev"
STAGE_PATTERN = r"^[a-z][a-z0-9]{1,9}$"

# Step Functions execution names: 1-80 characters of letters, digits, '-' and '_'.
EXECUTION_NAME_MAX = 80


@dataclass(frozen=True)
class Names:
    stage: str = DEFAULT_STAGE

    def __post_init__(self) -> None:
        if not re.fullmatch(STAGE_PATTERN, self.stage):
            raise ValueError(f"stage '{self.stage}' must match {STAGE_PATTERN} (like dev, prod)")

    @property
    def prefix(self) -> str:
        return f"headrace-{self.stage}"

    # Stateful resources (bucket, table, key) apart from the stateless pipeline.
    @property
    def data_stack(self) -> str:
        return f"{self.prefix}-data"

    @property
    def pipeline_stack(self) -> str:
        return f"{self.prefix}-pipeline"

    @property
    def stacks(self) -> list[str]:
        """In deployment order."""
        return [self.data_stack, self.pipeline_stack]

    @property
    def ingest_function(self) -> str:
        return f"{self.prefix}-ingest"

    def training_state_machine(self, model: str) -> str:
        return f"{self.prefix}-{model}-training"

    def endpoint(self, model: str) -> str:
        """The model's SageMaker endpoint; versions roll out behind this one name."""
        return f"{self.prefix}-{model}"

    @property
    def event_source(self) -> str:
        """`source` of the events Headrace itself puts on the default bus."""
        return "headrace"

    @property
    def metric_namespace(self) -> str:
        return "Headrace"


class Outputs:
    """CloudFormation output keys: what a caller (CLI, local plane, tests) reads instead of guessing names."""

    DATA_BUCKET = "DataBucketName"
    LEDGER_TABLE = "LedgerTableName"
    DATA_KEY_ARN = "DataKeyArn"
    INGEST_FUNCTION = "IngestFunctionName"

    @staticmethod
    def training_state_machine(model: str) -> str:
        return "TrainingStateMachine" + "".join(part.capitalize() for part in model.split("-"))


def execution_name(model: str, content_sha256: str, attempt: str = "") -> str:
    """Deterministic execution name for one dataset version: a replayed start is ExecutionAlreadyExists."""
    name = f"{model}-{content_sha256[:40]}" + (f"-{attempt}" if attempt else "")
    return name[:EXECUTION_NAME_MAX]
