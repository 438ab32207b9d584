"""The training state machine's execution input, `{"model", "dataset", "extra"}`: ingest builds it for a new
dataset version (no extra), retraining for the newest upload plus the other datasets its config asks for
(`monitoring.retrain_data`), and Prepare reads it."""

from __future__ import annotations

import json
from collections.abc import Sequence

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
    # More dataset versions to train on beside `dataset`, newest first (uploads and production data).
    extra: list[DatasetVersion] = []

    @classmethod
    def of(cls, version: DatasetVersion, extra: Sequence[DatasetVersion] = ()) -> TrainingInput:
        return cls(model=version.model, dataset=version, extra=list(extra))

    def to_json(self) -> str:
        """The execution input. Statistics are dropped if they would push it over the limit (the ledger
        keeps them either way); what is still too large is refused here, not by StartExecution."""
        payload = json.dumps(self.model_dump(mode="json"))
        if len(payload.encode()) <= EXECUTION_INPUT_MAX:
            return payload
        slim = self.model_copy(
            update={
                "dataset": self.dataset.model_copy(update={"statistics": {}}),
                "extra": [version.model_copy(update={"statistics": {}}) for version in self.extra],
            }
        )
        payload = json.dumps(slim.model_dump(mode="json"))
        if len(payload.encode()) > EXECUTION_INPUT_MAX:
            raise TrainingInputTooLarge(
                f"the training input for {self.dataset.key} is {len(payload.encode())} bytes without "
                f"statistics, over Step Functions' {EXECUTION_INPUT_MAX}-byte limit "
                f"({len(self.dataset.columns)} columns, {1 + len(self.extra)} dataset version(s))"
            )
        return payload
