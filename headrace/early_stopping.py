"""Early stopping on the validation metric: one rule for the XGBoost trainer's rounds and the epochs a
model's own code reports (`headrace.usercode.Context.report`).

Training stops once `patience` rounds have passed without a better validation score than the best so far
(0: never). A NaN score is never better than a real one, so a run's first finite score always counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from headrace.metric_direction import maximized


@dataclass
class EarlyStopping:
    metric: str
    patience: int
    best_epoch: int | None = None
    best_score: float | None = None
    # Which way is better, from the one table the gate reads too; an unknown metric fails here, before any
    # training, rather than being minimized by default.
    maximize: bool = field(init=False)

    def __post_init__(self) -> None:
        self.maximize = maximized(self.metric)

    def better(self, score: float) -> bool:
        if math.isnan(score):
            return self.best_epoch is None
        if self.best_score is None or math.isnan(self.best_score):
            return True
        return score > self.best_score if self.maximize else score < self.best_score

    def record(self, epoch: int, score: float) -> bool:
        """Note the epoch's validation score; True when it is the best so far."""
        if not self.better(score):
            return False
        self.best_epoch, self.best_score = epoch, score
        return True

    def should_stop(self, epoch: int) -> bool:
        """True once `patience` epochs have passed since the best one."""
        return self.patience > 0 and self.best_epoch is not None and epoch - self.best_epoch >= self.patience
