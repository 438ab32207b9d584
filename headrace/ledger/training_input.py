"""The training state machine's execution input, `{"model", "dataset"}`: ingest builds it for a new dataset
version, retraining for the newest one the ledger holds, and Prepare reads it."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict

from headrace.ledger.datasets import DatasetVersion

# Step Functions' "Maximum input or output size for a task, state, or execution": 256 KiB
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
EXECUTION_INPUT_MAX = 256 * 1024


class TrainingInputTooLarge(ValueError):
    """The input exceeds Step Functions' limit even without the dataset's statistics."""


class TrainingInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    dataset: DatasetVersion

    @classmethod
    def of(cls, version: DatasetVersion) -> TrainingInput:
        return cls(model=version.model, dataset=version)

    def to_json(self) -> str:
        """The execution input. Statistics are dropped if they would push it over the limit (the ledger
        keeps them either way); what is still too large is refused here, not by StartExecution."""
        payload = json.dumps(self.model_dump(mode="json"))
        if len(payload.encode()) <= EXECUTION_INPUT_MAX:
            return payload
        slim = self.dataset.model_copy(update={"statistics": {}})
        payload = json.dumps(self.model_copy(update={"dataset": slim}).model_dump(mode="json"))
        if len(payload.encode()) > EXECUTION_INPUT_MAX:
            raise TrainingInputTooLarge(
                f"the training input for {self.dataset.key} is {len(payload.encode())} bytes without "
                f"statistics, over Step Functions' {EXECUTION_INPUT_MAX}-byte limit "
                f"({len(self.dataset.columns)} columns)"
            )
        return payload
