"""One training run, start to finish: hyperparameters, channels, boosting, evaluation, the model directory.

Any error ends the run with `output/failure` and exit status 1 (trainer.failure); nothing is written to
`model/` until every step before it has succeeded.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from headrace.profile import FeatureInfo, build_profile
from headrace.training_job import Hyperparameters
from trainer import champion as champion_model
from trainer import data, evaluate
from trainer.contract import CHANNELS, Paths, read_hyperparameters
from trainer.device import choose_device
from trainer.failure import write_failure
from trainer.fit import FitResult, fit

USAGE = "usage: train  (SageMaker runs `docker run <image> train`; paths follow HEADRACE_OPT_ML or /opt/ml)"


def _say(message: str) -> None:
    print(message, flush=True)


def _params(
    hp: Hyperparameters, device: str, labels: npt.NDArray[Any], classes: list[str] | None
) -> dict[str, Any]:
    params = hp.xgboost_params()
    params["device"] = device
    params["tree_method"] = hp.tree_method or "hist"
    if hp.objective == "multi:softprob" and hp.num_class is None:
        params["num_class"] = len(classes) if classes else int(np.max(labels)) + 1
    return params


def _write_json(path: Path, document: Any) -> None:
    # allow_nan=False: a NaN would make the file invalid JSON for every reader downstream.
    path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def run(paths: Paths) -> None:
    hp = read_hyperparameters(paths)
    text_columns = [*hp.categorical]
    frames = {name: data.read_channel(paths, name, text_columns) for name in CHANNELS}
    _say("rows: " + ", ".join(f"{name}={len(frame)}" for name, frame in frames.items()))
    encoding = data.plan_encoding(frames["train"], hp)
    for name in CHANNELS[1:]:
        data.check_columns(frames[name], name, encoding)
    if encoding.ignored:
        _say(f"not features (neither numeric nor in 'categorical'): {', '.join(encoding.ignored)}")
    for column, count in data.unknown_categories(frames["train"], encoding).items():
        _say(f"warning: {count} value(s) of '{column}' in channel train are outside its categories (missing)")
    inputs = {name: data.features(frame, encoding) for name, frame in frames.items()}
    labels = {name: data.labels(frame, name, encoding, hp) for name, frame in frames.items()}

    device = choose_device(hp.device)
    _say(f"device: {device.name} ({device.why}); xgboost {xgb.__version__}")
    params = _params(hp, device.name, labels["train"], encoding.classes)
    max_bin = {"max_bin": hp.max_bin} if hp.max_bin else {}
    train = xgb.QuantileDMatrix(inputs["train"], label=labels["train"], enable_categorical=True, **max_bin)
    validation = xgb.QuantileDMatrix(
        inputs["validation"], label=labels["validation"], enable_categorical=True, ref=train
    )
    result = fit(params, train, validation, hp, paths.checkpoints)

    test = xgb.DMatrix(inputs["test"], label=labels["test"], enable_categorical=True)
    predictions = result.booster.predict(test)
    report = evaluate.evaluation(
        hp.objective,
        hp.metric,
        labels["test"],
        predictions,
        {column: frames["test"][column] for column in hp.slice_by},
        hp.categorical,
    )
    champion = champion_model.load(paths)
    if champion is not None:
        scored = champion_model.score(champion, frames["test"], labels["test"], hp.objective, hp.metric)
        if isinstance(scored, str):
            _say(f"warning: the champion is not scored: {scored}")
            report["champion_skipped"] = scored
        else:
            report["champion"] = scored
            # Not `test-<metric>=`: the job's metric definitions scrape that for the candidate.
            _say(f"champion on the test split: {hp.metric} {scored['metrics'].get(hp.metric)}")
    _write_model(paths, hp, encoding, result, report, device.name, frames["train"])
    value = report["metrics"][hp.metric]
    _say(f"test-{hp.metric}={value:.6g};" if value is not None else f"test-{hp.metric}=null;")


def _write_model(
    paths: Paths,
    hp: Hyperparameters,
    encoding: data.Encoding,
    result: FitResult,
    report: dict[str, Any],
    device: str,
    train: pd.DataFrame,
) -> None:
    paths.model.mkdir(parents=True, exist_ok=True)
    result.booster.save_model(paths.model / "model.json")
    _write_json(paths.model / "features.json", {**encoding.describe(), "objective": hp.objective})
    _write_json(
        paths.model / "evaluation.json",
        {
            **report,
            "best_iteration": result.best_iteration,
            "rounds": result.rounds_trained,
            "resumed_from_round": result.resumed_from,
            "device": device,
            "train_seconds": round(result.seconds, 3),
        },
    )
    info = FeatureInfo(features=encoding.features, categorical=encoding.categorical)
    profile = build_profile(train, info, seed=hp.seed)
    (paths.model / "profile.json").write_text(profile.model_dump_json(), encoding="utf-8")
    _say(
        f"model: {result.best_iteration + 1} of {result.rounds_trained} rounds kept (best validation "
        f"{hp.metric} at round {result.best_iteration}); trained in {result.seconds:.2f}s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["train"]:
        args = args[1:]
    if args:
        print(USAGE, file=sys.stderr)
        return 2
    paths = Paths.from_env()
    try:
        run(paths)
    except Exception as exc:
        return write_failure(paths.failure, exc)
    return 0
