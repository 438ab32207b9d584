"""SageMaker's training-container paths and hyperparameters, as containers/train/CONTRACT.md states them.

The root is `/opt/ml` in the image (SageMaker's contract:
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html);
the local plane points `HEADRACE_OPT_ML` at a private copy of that tree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from headrace.training_job import Hyperparameters
from trainer.failure import TrainingFailure

OPT_ML_ENV: Final = "HEADRACE_OPT_ML"
DEFAULT_ROOT: Final = Path("/opt/ml")
CHANNELS: Final = ("train", "validation", "test")
# Optional: the current champion's model.tar.gz (or none.json), scored on the test channel (trainer.champion).
CHAMPION_CHANNEL: Final = "champion"
CHAMPION_ARTIFACT: Final = "model.tar.gz"


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Paths:
        return cls(Path(environ.get(OPT_ML_ENV) or DEFAULT_ROOT))

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    # CheckpointConfig.LocalPath's default: SageMaker syncs it with CheckpointConfig.S3Uri.
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"


def read_hyperparameters(paths: Paths) -> Hyperparameters:
    """The job's hyperparameters; a bad one raises HyperparameterError naming it."""
    return Hyperparameters.from_strings(read_raw_hyperparameters(paths))


def read_raw_hyperparameters(paths: Paths) -> dict[str, Any]:
    """hyperparameters.json as given: a JSON object (of strings, as SageMaker writes it)."""
    path = paths.hyperparameters
    if not path.is_file():
        raise TrainingFailure(f"No hyperparameters: {path} does not exist, so the target column is unknown.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainingFailure(f"The hyperparameters file {path} is not valid JSON: {exc}.") from None
    if not isinstance(raw, dict):
        raise TrainingFailure(
            f"The hyperparameters file {path} holds a {type(raw).__name__}, not a JSON object of strings."
        )
    return raw
