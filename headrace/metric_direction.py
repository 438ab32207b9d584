"""Which way is better for a metric: the one table the gate, early stopping (the trainers' rounds and epochs)
and a tuning job's objective (Maximize or Minimize) all read.

Pure and standard-library only: the training image imports it (headrace/early_stopping.py), and so does the
config (headrace/config.py, a tuned model's objective).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

# The slack every comparison with a bound allows (float noise in a metric): the gate's and the live-quality
# check's.
EPSILON: Final = 1e-9


class Direction(StrEnum):
    HIGHER = "higher"
    LOWER = "lower"


# XGBoost's evaluation metrics (https://xgboost.readthedocs.io/en/stable/parameter.html, eval_metric) and
# the trainer's own (accuracy and the like), by which way is better.
DIRECTIONS: Final[dict[str, Direction]] = {
    **dict.fromkeys(
        ("auc", "aucpr", "pre", "map", "ndcg", "accuracy", "f1", "precision", "recall", "r2"),
        Direction.HIGHER,
    ),
    **dict.fromkeys(
        (
            "logloss",
            "mlogloss",
            "error",
            "merror",
            "rmse",
            "rmsle",
            "mae",
            "mape",
            "mphe",
            "poisson-nloglik",
            "gamma-nloglik",
            "gamma-deviance",
            "cox-nloglik",
            "tweedie-nloglik",
        ),
        Direction.LOWER,
    ),
}

# HyperParameterTuningJobObjective.Type's values
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTuningJobObjective.html).
ObjectiveType = Literal["Maximize", "Minimize"]


class UnknownMetric(ValueError):
    """A metric whose direction (is higher better?) Headrace does not know."""


def direction(metric: str) -> Direction:
    """Which way is better for `metric`; `error@0.7`, `ndcg@5` and the like go by their base name."""
    found = DIRECTIONS.get(metric.split("@", 1)[0])
    if found is None:
        known = ", ".join(sorted(DIRECTIONS))
        raise UnknownMetric(f"it is not known whether higher or lower '{metric}' is better ({known})")
    return found


def maximized(metric: str) -> bool:
    """True where a higher `metric` is better; raises UnknownMetric for a metric not in the table."""
    return direction(metric) is Direction.HIGHER


def objective_type(metric: str) -> ObjectiveType:
    """A tuning job's objective Type for `metric`: Maximize where higher is better, else Minimize."""
    return "Maximize" if maximized(metric) else "Minimize"
