"""The champion on the candidate's test split: the `champion` channel holds the current Approved version's
model.tar.gz (or `none.json`: nothing to compare). The champion is scored with its own features.json (its
features and categories), so a candidate trained on other columns is still compared on the same rows.

Either kind of artifact: XGBoost's (`model.json`) or a model's own code's (features.json says
`"framework": "custom"`, the saved model under `user/`), which is loaded with the CURRENT image's module
(`load`, then `predict`). A champion that cannot be loaded or scored never fails the run: evaluation.json
says why in `champion_skipped` and the gate decides without it.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from headrace.encoding import model_input
from headrace.training_job import PipelineHyperparameters
from headrace.usercode import UserCode, check_scores
from trainer import evaluate
from trainer.contract import CHAMPION_ARTIFACT, CHAMPION_CHANNEL, Paths
from trainer.failure import TrainingFailure, one_paragraph, reason_for
from trainer.log import say

FEATURES: Final = "features.json"
BOOSTER: Final = "model.json"
USER_DIR: Final = "user"

Predict = Callable[[pd.DataFrame], npt.NDArray[np.float64]]


@dataclass(frozen=True)
class Champion:
    features: list[str]
    categorical: dict[str, list[str]]
    # The model's input frame (model_input) -> its scores, checked against this run's objective.
    predict: Predict


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    return {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise TrainingFailure(f"the champion's {member.name} cannot be read from its {CHAMPION_ARTIFACT}")
    return handle.read()


def _xgboost(files: dict[str, tarfile.TarInfo], tar: tarfile.TarFile) -> Predict:
    if BOOSTER not in files:
        raise TrainingFailure(f"the champion's {CHAMPION_ARTIFACT} lacks {BOOSTER} at its root")
    # Read into memory: nothing of an XGBoost champion touches the disk.
    booster = xgb.Booster()
    booster.load_model(bytearray(_read(tar, files[BOOSTER])))
    return lambda frame: np.asarray(booster.predict(xgb.DMatrix(frame, enable_categorical=True)))


def _custom(
    described: dict[str, Any],
    tar: tarfile.TarFile,
    scratch: Path,
    user: UserCode | None,
    objective: str,
    num_class: int | None,
) -> Predict:
    name = described.get("model", "?")
    if user is None:
        raise TrainingFailure(
            f"the champion is custom code (model '{name}', framework custom), which this image does not have"
        )
    saved = [m for m in tar.getmembers() if m.name.removeprefix("./").startswith(f"{USER_DIR}/")]
    if not saved:
        raise TrainingFailure(f"the champion's {CHAMPION_ARTIFACT} has nothing under {USER_DIR}/")
    # The "data" filter refuses links out of the folder, absolute paths and special files.
    tar.extractall(scratch, members=saved, filter="data")
    model = user.call("load", scratch / USER_DIR)

    def predict(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        scores = user.call("predict", model, frame)
        return check_scores(user.model, scores, len(frame), objective, num_class)

    return predict


def _load(
    archive: Path, scratch: Path, user: UserCode | None, objective: str, num_class: int | None
) -> Champion:
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            files = _members(tar)
            if FEATURES not in files:
                raise TrainingFailure(f"the champion's {CHAMPION_ARTIFACT} lacks {FEATURES} at its root")
            described = json.loads(_read(tar, files[FEATURES]))
            theirs = described.get("objective")
            if theirs is not None and theirs != objective:
                raise TrainingFailure(f"the champion's objective is {theirs}, this run's is {objective}")
            if described.get("framework") == "custom":
                predict = _custom(described, tar, scratch, user, objective, num_class)
            else:
                predict = _xgboost(files, tar)
    except tarfile.TarError as exc:
        raise TrainingFailure(
            f"the champion's {CHAMPION_ARTIFACT} is not a usable tar.gz archive: {exc}"
        ) from None
    return Champion(list(described["features"]), dict(described.get("categorical", {})), predict)


def score(
    champion: Champion, test: pd.DataFrame, labels: npt.NDArray[Any], objective: str, metric: str
) -> dict[str, Any] | str:
    """evaluation.json's `champion` block, `{"metrics": {...}, "rows": n}`, on the test rows; or, when the
    test split lacks a column the champion needs, why it could not be scored."""
    absent = [name for name in champion.features if name not in test.columns]
    if absent:
        return f"the test split lacks the champion's feature(s) {', '.join(absent)}"
    predictions = champion.predict(model_input(test, champion.features, champion.categorical))
    report = evaluate.evaluation(objective, metric, labels, predictions, {}, {})
    metrics = {name: value for name, value in report["metrics"].items() if name != "rows"}
    return {"metrics": metrics, "rows": len(labels)}


def assess(
    paths: Paths,
    test: pd.DataFrame,
    labels: npt.NDArray[Any],
    hp: PipelineHyperparameters,
    user: UserCode | None = None,
    num_class: int | None = None,
) -> dict[str, Any]:
    """What evaluation.json says of the champion: nothing when the channel holds no model.tar.gz, else
    `{"champion": {...}}` or `{"champion_skipped": why}`."""
    archive = paths.channel(CHAMPION_CHANNEL) / CHAMPION_ARTIFACT
    if not archive.is_file():
        return {}
    with tempfile.TemporaryDirectory(prefix="champion-") as scratch:
        try:
            champion = _load(archive, Path(scratch), user, hp.objective, num_class)
            scored = score(champion, test, labels, hp.objective, hp.metric)
        except Exception as exc:  # a champion that does not score is reported, never a failed run
            scored = one_paragraph(reason_for(exc))
    if isinstance(scored, str):
        say(f"warning: the champion is not scored: {scored}")
        return {"champion_skipped": scored}
    # Not `test-<metric>=`: the job's metric definitions scrape that for the candidate.
    say(f"champion on the test split: {hp.metric} {scored['metrics'].get(hp.metric)}")
    return {"champion": scored}
