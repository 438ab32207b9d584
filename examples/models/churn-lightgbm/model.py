"""Churn with LightGBM: Headrace's training-code contract (containers/train/CONTRACT.md).

Headrace hands `fit` a Dataset whose declared categoricals are pandas Categoricals with the declared
categories (missing as NaN) and every other column float64: LightGBM takes that frame as it is and splits
on the categoricals natively. Each boosting round goes through `context.report`, which prints the metric
line SageMaker scrapes and says when validation stopped improving for `early_stopping_rounds` rounds;
the booster then keeps its best round, which is what `save` writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the types Headrace passes in; never needed at run time
    from headrace.usercode import Context, Dataset

MODEL_FILE = "model.txt"
# The gate's metric names (context.metric, XGBoost's spelling) as LightGBM names them.
METRICS = {"auc": "auc", "logloss": "binary_logloss", "error": "binary_error"}
# Hyperparameters read here; every other one is a LightGBM parameter, passed on as given.
OWN = ("num_round", "early_stopping_rounds")


def _reporter(context: Context) -> Any:
    """A LightGBM callback: each round's metrics through context.report, which also keeps the best round
    and says when to stop; LightGBM's own EarlyStopException then ends training at that best round."""
    best_results: list[Any] = []

    def callback(env: lgb.callback.CallbackEnv) -> None:
        scores = {data: value for data, _, value, _ in env.evaluation_result_list}
        stop = context.report(env.iteration, train=scores["train"], validation=scores["validation"])
        if context.best_epoch == env.iteration:
            best_results[:] = env.evaluation_result_list
        if stop or env.iteration == env.end_iteration - 1:
            # Also at the last round, so the booster keeps the best round (best_iteration) either way.
            best = env.iteration if context.best_epoch is None else context.best_epoch
            raise lgb.callback.EarlyStopException(best, best_results or env.evaluation_result_list)

    callback.order = 30  # type: ignore[attr-defined]  # after LightGBM's own evaluation
    return callback


def fit(
    train: Dataset, validation: Dataset, hyperparameters: dict[str, Any], context: Context
) -> lgb.Booster:
    params = {
        "objective": "binary",
        "metric": METRICS[context.metric],
        "seed": context.seed,
        "deterministic": True,
        "verbosity": -1,
        **{k: v for k, v in hyperparameters.items() if k not in OWN},
    }
    train_set = lgb.Dataset(train.features, label=train.labels, free_raw_data=False)
    validation_set = lgb.Dataset(validation.features, label=validation.labels, reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=int(hyperparameters.get("num_round", 300)),
        valid_sets=[train_set, validation_set],
        valid_names=["train", "validation"],
        callbacks=[_reporter(context)],
    )
    context.log(f"kept {booster.best_iteration} rounds, the best on validation")
    return booster


def predict(model: lgb.Booster, features: pd.DataFrame) -> np.ndarray:
    """P(churned = 1), one per row, from the best round (LightGBM's default once early stopping chose it)."""
    return np.asarray(model.predict(features), dtype=np.float64)


def save(model: lgb.Booster, directory: Path) -> None:
    # The text format carries the categoricals' categories, so `load` needs nothing else.
    model.save_model(directory / MODEL_FILE)


def load(directory: Path) -> lgb.Booster:
    return lgb.Booster(model_file=directory / MODEL_FILE)
