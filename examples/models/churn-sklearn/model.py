"""Churn with a scikit-learn pipeline: Headrace's training-code contract (containers/train/CONTRACT.md).

Headrace reads the channels, validates and encodes the data as model.yaml declares, and hands `fit` a
Dataset: `features` is a DataFrame whose declared categoricals are pandas Categoricals (missing as NaN)
and every other column float64 (missing as NaN); `labels` is the target. This module only models.

One pipeline does the preprocessing the serving side needs too, so `predict` takes the same frame:
one-hot categoricals (a missing value is a category of its own), numbers imputed with the training
median (plus a was-missing flag) and standardized, then a logistic regression.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

if TYPE_CHECKING:  # the types Headrace passes in; never needed at run time
    from headrace.usercode import Context, Dataset

MODEL_FILE = "pipeline.joblib"


def _pipeline(features: pd.DataFrame, hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    categorical = [c for c in features.columns if isinstance(features[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in features.columns if c not in categorical]
    columns = ColumnTransformer(
        [
            # The declared categories, not those seen: a category absent from training still encodes.
            (
                "categories",
                OneHotEncoder(
                    categories=[[*features[c].cat.categories, np.nan] for c in categorical],
                    handle_unknown="ignore",
                ),
                categorical,
            ),
            (
                "numbers",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                numeric,
            ),
        ]
    )
    classifier = LogisticRegression(
        C=float(hyperparameters.get("C", 1.0)),
        max_iter=int(hyperparameters.get("max_iter", 1000)),
        random_state=seed,
    )
    return Pipeline([("columns", columns), ("classifier", classifier)])


def _objects(features: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as object columns: OneHotEncoder compares values, and NaN must stay NaN."""
    categorical = [c for c in features.columns if isinstance(features[c].dtype, pd.CategoricalDtype)]
    return features.astype(dict.fromkeys(categorical, object))


def fit(train: Dataset, validation: Dataset, hyperparameters: dict[str, Any], context: Context) -> Pipeline:
    model = _pipeline(train.features, hyperparameters, context.seed)
    model.fit(_objects(train.features), train.labels)
    # One "epoch": the metric line SageMaker scrapes, the gate's metric as Headrace's evaluation computes it.
    context.report(
        0,
        train=context.score(train.labels, predict(model, train.features)),
        validation=context.score(validation.labels, predict(model, validation.features)),
    )
    return model


def predict(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """P(churned = 1), one per row."""
    return np.asarray(model.predict_proba(_objects(features))[:, 1], dtype=np.float64)


def save(model: Pipeline, directory: Path) -> None:
    joblib.dump(model, directory / MODEL_FILE)


def load(directory: Path) -> Pipeline:
    loaded: Pipeline = joblib.load(directory / MODEL_FILE)
    return loaded
