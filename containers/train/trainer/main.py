"""One training run, start to finish: hyperparameters, channels, training, evaluation, the model directory.

The image decides which run: with a model's own code staged beside the program (`usercode/` and its
manifest, `headrace.usercode.find_usercode`) the custom run (trainer.custom), else the built-in XGBoost run.
Any error ends the run with `output/failure` and exit status 1 (trainer.failure), and `model/` is left
empty: nothing there unless every step succeeded.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from headrace.training_job import Hyperparameters, PipelineHyperparameters, best_metric_line
from headrace.usercode import find_usercode, load_usercode
from trainer import artifacts, evaluate
from trainer import champion as champion_model
from trainer.contract import Paths, read_raw_hyperparameters
from trainer.custom import run_custom
from trainer.device import choose_device
from trainer.failure import write_failure
from trainer.fit import FitResult, fit
from trainer.log import say
from trainer.splits import Splits, read_splits

# Where `train` lives: /opt/program in the image (containers/train/Dockerfile), containers/train here.
PROGRAM_DIR: Final = Path(__file__).resolve().parents[1]


USAGE = "usage: train  (SageMaker runs `docker run <image> train`; paths follow HEADRACE_OPT_ML or /opt/ml)"


def _params(hp: Hyperparameters, device: str, num_class: int | None) -> dict[str, Any]:
    params = hp.xgboost_params()
    params["device"] = device
    params["tree_method"] = hp.tree_method or "hist"
    if num_class is not None:
        params["num_class"] = num_class
    return params


def run(paths: Paths, program_dir: Path = PROGRAM_DIR) -> None:
    raw = read_raw_hyperparameters(paths)
    usercode = find_usercode(program_dir)
    if usercode is not None:
        # The pipeline's keys only: the model's own are its code's to judge, not XGBoost's rules.
        hp = PipelineHyperparameters.from_strings(raw)
        # Loaded before any data is read: broken code fails the job at once.
        run_custom(paths, hp, raw, load_usercode(usercode))
    else:
        run_xgboost(paths, Hyperparameters.from_strings(raw))


def run_xgboost(paths: Paths, hp: Hyperparameters) -> None:
    splits = read_splits(paths, hp)
    inputs, labels = splits.inputs, splits.labels
    device = choose_device(hp.device)
    say(f"device: {device.name} ({device.why}); xgboost {xgb.__version__}")
    params = _params(hp, device.name, splits.num_class(hp))
    max_bin = {"max_bin": hp.max_bin} if hp.max_bin else {}
    train = xgb.QuantileDMatrix(inputs["train"], label=labels["train"], enable_categorical=True, **max_bin)
    validation = xgb.QuantileDMatrix(
        inputs["validation"], label=labels["validation"], enable_categorical=True, ref=train
    )
    result = fit(params, train, validation, hp, paths.checkpoints)
    if result.best_score is not None:  # the objective a tuning job reads is the kept model's
        say(best_metric_line(result.best_iteration, hp.metric, result.best_score))

    test = xgb.DMatrix(inputs["test"], label=labels["test"], enable_categorical=True)
    predictions = result.booster.predict(test)
    report = evaluate.evaluation(
        hp.objective,
        hp.metric,
        labels["test"],
        predictions,
        {column: splits.frames["test"][column] for column in hp.slice_by},
        hp.categorical,
    )
    report |= champion_model.assess(paths, splits.frames["test"], labels["test"], hp)
    _write_model(paths, hp, splits, result, report, device.name)
    value = report["metrics"][hp.metric]
    say(f"test-{hp.metric}={value:.6g};" if value is not None else f"test-{hp.metric}=null;")


def _booster_scores(booster: xgb.Booster, frame: Any) -> npt.NDArray[Any]:
    return np.asarray(booster.predict(xgb.DMatrix(frame, enable_categorical=True)))


def _write_model(
    paths: Paths, hp: Hyperparameters, splits: Splits, result: FitResult, report: dict[str, Any], device: str
) -> None:
    encoding = splits.encoding
    rows = artifacts.smoke_rows(splits.frames["test"], encoding)
    smoke = _booster_scores(result.booster, artifacts.smoke_input(rows, encoding))
    paths.model.mkdir(parents=True, exist_ok=True)
    result.booster.save_model(paths.model / "model.json")
    artifacts.write_json(paths.model / "features.json", {**encoding.describe(), "objective": hp.objective})
    artifacts.write_json(
        paths.model / "evaluation.json",
        {
            **report,
            "framework": "xgboost",
            "best_iteration": result.best_iteration,
            "rounds": result.rounds_trained,
            "resumed_from_round": result.resumed_from,
            "device": device,
            "train_seconds": round(result.seconds, 3),
        },
    )
    artifacts.write_profile(paths.model, encoding, splits.frames["train"], hp.seed)
    artifacts.write_smoke(paths.model, rows, smoke)
    say(
        f"model: {result.best_iteration + 1} of {result.rounds_trained} rounds kept (best validation "
        f"{hp.metric} at round {result.best_iteration}); trained in {result.seconds:.2f}s"
    )


def _clear(directory: Path) -> None:
    """Empty `directory` (a failed run's partial model): SageMaker uploads whatever it holds."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


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
        _clear(paths.model)
        return write_failure(paths.failure, exc)
    return 0
