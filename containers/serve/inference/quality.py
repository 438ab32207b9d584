"""Prediction health, reported as CloudWatch Embedded Metric Format lines on stdout.

SageMaker sends a container's output to CloudWatch Logs, which turns EMF lines into metrics: the deploy
workflow's quality alarm watches `InvalidPredictions` (a score that is not finite, or a probability outside
[0, 1]), so a model that answers 200 with nonsense still rolls back. Counting costs a vector compare per
request; a line is written at most every `interval_s`, and only when there were predictions.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, Final, TextIO

import numpy as np
import numpy.typing as npt

METRIC: Final = "InvalidPredictions"
# Dimensions of both metrics: the model and its stage (headrace.naming.STAGE_DIMENSION), so that one stage's
# quality alarm never sees another stage's predictions in a shared account.
DIMENSIONS: Final = ("Model", "Stage")
PROBABILITY_OBJECTIVES: Final = ("binary:logistic", "multi:softprob")


class PredictionHealth:
    def __init__(
        self,
        objective: str,
        namespace: str | None,
        model: str,
        stage: str = "",
        interval_s: float = 10.0,
        out: TextIO = sys.stdout,
    ) -> None:
        self._probabilities = objective in PROBABILITY_OBJECTIVES
        self._namespace = namespace
        self._model = model
        self._stage = stage
        self._interval_s = interval_s
        self._out = out
        self._predictions = 0
        self._invalid = 0
        self._last = time.monotonic()

    @classmethod
    def from_environ(cls, objective: str, environ: Mapping[str, str] = os.environ) -> PredictionHealth:
        # The Model's Environment names them (headrace.serving.rollout.model_request); unset: no metrics.
        # Without a stage too: a datum without it would match no stage's alarm.
        namespace = environ.get("HEADRACE_METRIC_NAMESPACE") if environ.get("HEADRACE_STAGE") else None
        return cls(objective, namespace, environ.get("HEADRACE_MODEL", ""), environ.get("HEADRACE_STAGE", ""))

    def observe(self, scores: npt.NDArray[Any]) -> None:
        if self._namespace is None:
            return
        invalid = ~np.isfinite(scores)
        if self._probabilities:
            invalid |= (scores < 0) | (scores > 1)
        self._predictions += int(scores.size)
        self._invalid += int(np.count_nonzero(invalid))
        if time.monotonic() - self._last >= self._interval_s:
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        if self._namespace is None or not self._predictions:
            return
        record = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [list(DIMENSIONS)],
                        "Metrics": [
                            {"Name": METRIC, "Unit": "Count"},
                            {"Name": "Predictions", "Unit": "Count"},
                        ],
                    }
                ],
            },
            "Model": self._model,
            "Stage": self._stage,
            METRIC: self._invalid,
            "Predictions": self._predictions,
        }
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()
        self._predictions = self._invalid = 0
