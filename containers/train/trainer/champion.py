"""The champion on the candidate's test split: the `champion` channel holds the current Approved version's
model.tar.gz (or `none.json`: nothing to compare). The champion is scored with its own features.json (its
features and categories), so a candidate trained on other columns is still compared on the same rows.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from headrace.encoding import model_input
from trainer import evaluate
from trainer.contract import CHAMPION_ARTIFACT, CHAMPION_CHANNEL, Paths
from trainer.failure import TrainingFailure

_MEMBERS = ("model.json", "features.json")


@dataclass(frozen=True)
class Champion:
    booster: xgb.Booster
    features: list[str]
    categorical: dict[str, list[str]]


def load(paths: Paths) -> Champion | None:
    """The champion in the channel, None when the channel is absent or holds no model.tar.gz."""
    archive = paths.channel(CHAMPION_CHANNEL) / CHAMPION_ARTIFACT
    if not archive.is_file():
        return None
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            # Only the two files are read, into memory: nothing from the archive touches the disk.
            found = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
            missing = [name for name in _MEMBERS if name not in found]
            if missing:
                raise TrainingFailure(
                    f"The champion channel's {CHAMPION_ARTIFACT} lacks {', '.join(missing)} at its root."
                )
            files = {name: tar.extractfile(found[name]).read() for name in _MEMBERS}  # type: ignore[union-attr]
    except tarfile.TarError as exc:
        raise TrainingFailure(
            f"The champion channel's {CHAMPION_ARTIFACT} is not a tar.gz archive: {exc}."
        ) from None
    booster = xgb.Booster()
    booster.load_model(bytearray(files["model.json"]))
    described = json.loads(files["features.json"])
    return Champion(booster, list(described["features"]), dict(described.get("categorical", {})))


def score(
    champion: Champion, test: pd.DataFrame, labels: npt.NDArray[Any], objective: str, metric: str
) -> dict[str, Any] | str:
    """evaluation.json's `champion` block, `{"metrics": {...}, "rows": n}`, on the test rows; or, when the
    test split lacks a column the champion needs, why it could not be scored."""
    absent = [name for name in champion.features if name not in test.columns]
    if absent:
        return f"the test split lacks the champion's feature(s) {', '.join(absent)}"
    inputs = model_input(test, champion.features, champion.categorical)
    predictions = champion.booster.predict(xgb.DMatrix(inputs, enable_categorical=True))
    report = evaluate.evaluation(objective, metric, labels, predictions, {}, {})
    metrics = {name: value for name, value in report["metrics"].items() if name != "rows"}
    return {"metrics": metrics, "rows": len(labels)}
