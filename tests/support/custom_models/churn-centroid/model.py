"""Nearest centroid on the numeric features: P(churn) from the distances to each class's mean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _numeric(features: pd.DataFrame, means: dict[str, float]) -> np.ndarray:
    columns = [features[name].astype("float64").fillna(mean) for name, mean in means.items()]
    return np.column_stack(columns)


def fit(train: Any, validation: Any, hyperparameters: dict[str, Any], context: Any) -> dict[str, Any]:
    numeric = train.features.select_dtypes("number")
    means = {name: float(numeric[name].mean()) for name in numeric.columns}
    matrix = _numeric(train.features, means)
    scale = matrix.std(axis=0) + 1e-9
    labels = np.asarray(train.labels)
    return {
        "means": means,
        "scale": scale.tolist(),
        "positive": (matrix[labels == 1].mean(axis=0) / scale).tolist(),
        "negative": (matrix[labels == 0].mean(axis=0) / scale).tolist(),
        "temperature": float(hyperparameters.get("temperature", 1.0)),
    }


def predict(model: dict[str, Any], features: pd.DataFrame) -> np.ndarray:
    matrix = _numeric(features, model["means"]) / np.asarray(model["scale"])
    to_positive = np.linalg.norm(matrix - np.asarray(model["positive"]), axis=1)
    to_negative = np.linalg.norm(matrix - np.asarray(model["negative"]), axis=1)
    return 1.0 / (1.0 + np.exp((to_positive - to_negative) / model["temperature"]))


def save(model: dict[str, Any], directory: Path) -> None:
    (directory / "centroids.json").write_text(json.dumps(model))


def load(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "centroids.json").read_text())
    return loaded
