"""The three channels read, checked and encoded: what both runs (XGBoost and a model's own code) train on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.training_job import PipelineHyperparameters
from trainer import data
from trainer.contract import CHANNELS, Paths
from trainer.log import say


@dataclass(frozen=True)
class Splits:
    # The channels as read (the profile, slices and champion use the raw columns).
    frames: dict[str, pd.DataFrame]
    encoding: data.Encoding
    # The model's input per channel (`headrace.encoding.model_input`) and its labels as float64.
    inputs: dict[str, pd.DataFrame]
    labels: dict[str, npt.NDArray[Any]]

    def num_class(self, hp: PipelineHyperparameters) -> int | None:
        """Classes of a multi-class objective: the hyperparameter, else the declared classes, else the
        largest class number in train plus one; None for the other objectives."""
        if hp.objective != "multi:softprob":
            return None
        if hp.num_class is not None:
            return hp.num_class
        classes = self.encoding.classes
        return len(classes) if classes else int(np.max(self.labels["train"])) + 1


def read_splits(paths: Paths, hp: PipelineHyperparameters) -> Splits:
    frames = {name: data.read_channel(paths, name, [*hp.categorical]) for name in CHANNELS}
    say("rows: " + ", ".join(f"{name}={len(frame)}" for name, frame in frames.items()))
    encoding = data.plan_encoding(frames["train"], hp)
    for name in CHANNELS[1:]:
        data.check_columns(frames[name], name, encoding)
    if encoding.ignored:
        say(f"not features (neither numeric nor in 'categorical'): {', '.join(encoding.ignored)}")
    for column, count in data.unknown_categories(frames["train"], encoding).items():
        say(f"warning: {count} value(s) of '{column}' in channel train are outside its categories (missing)")
    return Splits(
        frames=frames,
        encoding=encoding,
        inputs={name: data.features(frame, encoding) for name, frame in frames.items()},
        labels={name: data.labels(frame, name, encoding, hp) for name, frame in frames.items()},
    )
