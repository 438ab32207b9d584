"""A run of a model's own training code (the image's `usercode/`, containers/train/CONTRACT.md).

Headrace does what it does for XGBoost around four user functions: the channels, the encoding, the device,
then `fit` → `predict` on the test rows (checked by `check_scores`) → the same evaluation and champion
scoring → `save` into `model/user/` → `load` it back, whose predictions must equal the trained model's, so
what serving loads is what the gate judged. Any problem of the user's code is a `UserCodeError` naming the
model, the function and the problem; main.py turns it into `output/failure` and clears `model/`.
"""

from __future__ import annotations

import random
import time
from functools import partial
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.training_job import PipelineHyperparameters, best_metric_line
from headrace.usercode import Context, Dataset, UserCode, UserCodeError, check_scores, user_hyperparameters
from trainer import artifacts, evaluate
from trainer import champion as champion_model
from trainer.contract import Paths
from trainer.device import choose_user_device
from trainer.log import say
from trainer.splits import Splits, read_splits

USER_DIR: Final = "user"
# save() then load() must give back the same model: predictions on the test rows equal to this.
ROUND_TRIP_ATOL: Final = 1e-9
_SHOWN_ROWS: Final = 3


def _predict(
    user: UserCode, model: Any, frame: pd.DataFrame, hp: PipelineHyperparameters, num_class: int | None
) -> npt.NDArray[np.float64]:
    # A copy: a predict() that changes its input in place must not change what later calls see.
    scores = user.call("predict", model, frame.copy())
    return check_scores(user.model, scores, len(frame), hp.objective, num_class)


def _check_round_trip(
    user: UserCode, trained: npt.NDArray[np.float64], loaded: npt.NDArray[np.float64]
) -> None:
    differs = ~np.isclose(loaded, trained, rtol=0.0, atol=ROUND_TRIP_ATOL)
    if not differs.any():
        return
    rows = np.unique(np.argwhere(differs)[:, 0])
    shown = ", ".join(
        f"row {r}: {trained[r]} trained, {loaded[r]} loaded" for r in rows[:_SHOWN_ROWS].tolist()
    )
    raise UserCodeError(
        f"model '{user.model}': save() and load() do not give back the trained model: its predictions differ "
        f"on {len(rows)} of {len(trained)} test rows ({shown}); save() must write everything load() needs."
    )


def _context(
    user: UserCode, hp: PipelineHyperparameters, splits: Splits, paths: Paths, device: str
) -> Context:
    num_class = splits.num_class(hp)
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    return Context(
        model=user.model,
        objective=hp.objective,
        metric=hp.metric,
        classes=splits.encoding.classes,
        num_class=num_class,
        device="cuda" if device == "cuda" else "cpu",
        seed=hp.seed,
        checkpoints=paths.checkpoints,
        patience=hp.early_stopping_rounds,
        scorer=partial(evaluate.score, hp.objective, hp.metric),
    )


def run_custom(paths: Paths, hp: PipelineHyperparameters, raw: dict[str, Any], user: UserCode) -> None:
    splits = read_splits(paths, hp)
    device = choose_user_device(hp.device)
    say(f"device: {device.name} ({device.why}); model '{user.model}' ({user.manifest.entry_point})")
    context = _context(user, hp, splits, paths, device.name)
    num_class = context.num_class
    # Seeded for code that draws from the global generators without a seed of its own.
    random.seed(hp.seed)
    np.random.seed(hp.seed % 2**32)

    started = time.monotonic()
    model = user.call(
        "fit",
        Dataset(splits.inputs["train"], splits.labels["train"]),
        Dataset(splits.inputs["validation"], splits.labels["validation"]),
        user_hyperparameters(raw),
        context,
    )
    seconds = time.monotonic() - started
    if context.best_epoch is not None and context.best_score is not None:
        # The last objective line is the best reported epoch's, the one the model keeps (CONTRACT.md).
        say(best_metric_line(context.best_epoch, hp.metric, context.best_score))
    if model is None:
        raise UserCodeError(
            f"model '{user.model}': fit() returned None; it must return the trained model (what predict(), "
            "save() and load() pass around)."
        )
    test = splits.inputs["test"]
    predictions = _predict(user, model, test, hp, num_class)
    report = evaluate.evaluation(
        hp.objective,
        hp.metric,
        splits.labels["test"],
        predictions,
        {column: splits.frames["test"][column] for column in hp.slice_by},
        hp.categorical,
    )
    report |= champion_model.assess(paths, splits.frames["test"], splits.labels["test"], hp, user, num_class)

    saved = paths.model / USER_DIR
    saved.mkdir(parents=True, exist_ok=True)
    user.call("save", model, saved)
    if not any(saved.iterdir()):
        raise UserCodeError(f"model '{user.model}': save() wrote nothing under the directory it was given.")
    loaded = user.call("load", saved)
    _check_round_trip(user, predictions, _predict(user, loaded, test, hp, num_class))
    rows = artifacts.smoke_rows(splits.frames["test"], splits.encoding)
    smoke = _predict(user, loaded, artifacts.smoke_input(rows, splits.encoding), hp, num_class)

    artifacts.write_json(
        paths.model / "features.json",
        {
            **splits.encoding.describe(),
            "objective": hp.objective,
            "num_class": num_class,
            "framework": "custom",
            "model": user.model,
            "entry_point": user.manifest.entry_point,
            "code_sha256": user.manifest.sha256,
        },
    )
    artifacts.write_json(
        paths.model / "evaluation.json",
        {
            **report,
            "framework": "custom",
            "best_epoch": context.best_epoch,
            "device": device.name,
            "train_seconds": round(seconds, 3),
        },
    )
    artifacts.write_profile(paths.model, splits.encoding, splits.frames["train"], hp.seed)
    artifacts.write_smoke(paths.model, rows, smoke)
    say(f"model: fit() took {seconds:.2f}s on {device.name}; saved under model/{USER_DIR}/")
    value = report["metrics"][hp.metric]
    say(f"test-{hp.metric}={value:.6g};" if value is not None else f"test-{hp.metric}=null;")
