"""How the local plane's tuning jobs choose each trial's hyperparameters: an optuna study built from the
request's HyperParameterTuningJobConfig.

- Bayesian: optuna's TPESampler, a model-based Bayesian optimization method (a tree-structured Parzen
  estimator, with a constant liar for trials that run in parallel). SageMaker's own is its GP-based
  implementation; the two differ in the model, not in the contract (each next trial is chosen from what the
  earlier ones scored: https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html).
- Random: RandomSampler. Grid: GridSampler over the categorical values (grid search supports only categorical
  parameters, same page). Hyperband: RandomSampler with optuna's HyperbandPruner, which stops the
  under-performing trials of each bracket at its rungs (the resource is the epoch: one objective line).
- TrainingJobEarlyStoppingType Auto: `MedianStoppingRule`, SageMaker's documented rule.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import BasePruner, HyperbandPruner, NopPruner
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

Kind = Literal["Continuous", "Integer", "Categorical"]
optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Range:
    """One entry of ParameterRanges. ReverseLogarithmic is searched as log(1 - x), which is what makes values
    near 1 dense (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContinuousParameterRange.html)."""

    name: str
    kind: Kind
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()

    @property
    def reverse(self) -> bool:
        return self.kind == "Continuous" and self.scaling == "ReverseLogarithmic"

    def distribution(self) -> BaseDistribution:
        if self.kind == "Categorical":
            return CategoricalDistribution(self.values)
        log = self.scaling == "Logarithmic"
        if self.kind == "Integer":
            return IntDistribution(int(self.low), int(self.high), log=log)
        if self.reverse:
            return FloatDistribution(1 - self.high, 1 - self.low, log=True)
        return FloatDistribution(self.low, self.high, log=log)

    def suggest(self, trial: optuna.Trial) -> Any:
        distribution = self.distribution()
        if isinstance(distribution, CategoricalDistribution):
            return trial.suggest_categorical(self.name, list(self.values))
        if isinstance(distribution, IntDistribution):
            return trial.suggest_int(self.name, distribution.low, distribution.high, log=distribution.log)
        assert isinstance(distribution, FloatDistribution)
        return trial.suggest_float(self.name, distribution.low, distribution.high, log=distribution.log)

    def text(self, searched: Any) -> str:
        """The hyperparameter's value as the training job receives it (SageMaker passes strings)."""
        if self.kind == "Categorical":
            return str(searched)
        if self.kind == "Integer":
            return str(int(searched))
        return repr(1 - float(searched) if self.reverse else float(searched))

    def searched(self, text: str) -> Any | None:
        """The study's value for a trial's hyperparameter text; None when it is outside this range (a warm
        start's parent may have searched other ranges)."""
        try:
            if self.kind == "Categorical":
                return text if text in self.values else None
            value: float = int(text) if self.kind == "Integer" else float(text)
        except ValueError:
            return None
        if not self.low <= value <= self.high:
            return None
        return 1 - value if self.reverse else value


def ranges_of(parameter_ranges: dict[str, Any]) -> list[Range]:
    found = [
        Range(
            r["Name"], "Continuous", float(r["MinValue"]), float(r["MaxValue"]), r.get("ScalingType", "Auto")
        )
        for r in parameter_ranges.get("ContinuousParameterRanges") or []
    ]
    found += [
        Range(r["Name"], "Integer", int(r["MinValue"]), int(r["MaxValue"]), r.get("ScalingType", "Auto"))
        for r in parameter_ranges.get("IntegerParameterRanges") or []
    ]
    found += [
        Range(r["Name"], "Categorical", values=tuple(r["Values"]))
        for r in parameter_ranges.get("CategoricalParameterRanges") or []
    ]
    return found


class MedianStoppingRule(BasePruner):
    """SageMaker's early stopping: after each epoch, compute the running average of the objective of every
    previous training job up to the same epoch and their median; stop the current job when its objective is
    worse than that median (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-early-stopping.html).
    """

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        current = trial.intermediate_values[step]
        averages = []
        for earlier in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            values = [v for s, v in earlier.intermediate_values.items() if s <= step and not math.isnan(v)]
            if earlier.number != trial.number and values:
                averages.append(sum(values) / len(values))
        if not averages or math.isnan(current):
            return False
        median = statistics.median(averages)
        maximize = study.direction == StudyDirection.MAXIMIZE
        return current < median if maximize else current > median


class _Grid(GridSampler):
    """GridSampler without its stop at the grid's end: that stop is for `study.optimize`, and raises under the
    ask-and-tell loop a tuning job runs; the job stops at MaxNumberOfTrainingJobs, the grid's size."""

    def after_trial(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Search:
    study: optuna.Study
    ranges: list[Range]

    def suggest(self, trial: optuna.Trial) -> dict[str, str]:
        """The next trial's tuned hyperparameters, as strings."""
        return {r.name: r.text(r.suggest(trial)) for r in self.ranges}

    def add_finished(self, tuned: dict[str, str], objective: float) -> bool:
        """Add a parent job's finished trial (warm start); False when its values fall outside these ranges."""
        params = {r.name: r.searched(tuned.get(r.name, "")) for r in self.ranges}
        if any(v is None for v in params.values()) or math.isnan(objective):
            return False
        self.study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions={r.name: r.distribution() for r in self.ranges}, value=objective
            )
        )
        return True


def search_for(config: dict[str, Any], max_jobs: int) -> Search:
    """The study for a tuning job's HyperParameterTuningJobConfig (validated by sagemaker_rules.py)."""
    ranges = ranges_of(config.get("ParameterRanges") or {})
    objective = config.get("HyperParameterTuningJobObjective") or {}
    maximize = objective.get("Type") == "Maximize"
    direction = StudyDirection.MAXIMIZE if maximize else StudyDirection.MINIMIZE
    seed = config.get("RandomSeed")
    strategy = config.get("Strategy")
    sampler: BaseSampler
    pruner: BasePruner = NopPruner()
    if strategy == "Bayesian":
        # The first trials explore at random, as any Bayesian search must before it has a model to fit.
        startup = max(2, min(10, max_jobs // 3))
        sampler = TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True, multivariate=True)
    elif strategy == "Grid":
        sampler = _Grid({r.name: list(r.values) for r in ranges}, seed=seed)
    else:
        sampler = RandomSampler(seed=seed)
    if strategy == "Hyperband":
        # HyperbandStrategyConfig: MinResource/MaxResource in epochs (API_HyperbandStrategyConfig.html).
        hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
        pruner = HyperbandPruner(
            min_resource=int(hyperband.get("MinResource") or 1),
            max_resource=int(hyperband["MaxResource"]) if hyperband.get("MaxResource") else "auto",
        )
    elif config.get("TrainingJobEarlyStoppingType") == "Auto":
        pruner = MedianStoppingRule()
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    return Search(study, ranges)


def grid_size(ranges: list[Range]) -> float:
    """How many distinct combinations the ranges hold (inf with a continuous one)."""
    size = 1.0
    for r in ranges:
        if r.kind == "Continuous":
            return math.inf
        size *= len(r.values) if r.kind == "Categorical" else int(r.high) - int(r.low) + 1
    return size
