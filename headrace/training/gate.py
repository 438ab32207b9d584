"""The quality gate: may this candidate become a new model version? Pure: the evaluation, the gate's config
and the current champion (if any) in, a decision with human-readable reasons out.

Rules (GateConfig):
- `thresholds`: an absolute bound per metric, in the metric's direction: a floor for metrics where higher
  is better (auc >= 0.7), a ceiling for those where lower is better (rmse <= 3.0).
- `max_regression`: how much worse than the champion's `metric` a candidate may be. The first model of a
  group has no champion and passes on its thresholds alone.
- `min_improvement`: in a run with labelled production data whose trainer also scored the champion on the
  same recent holdout (the test split, drawn from production rows only), the candidate must beat the
  champion there by more than this; `max_regression` against the registry's figure does not apply then.
  A retraining that does not help is rejected with both figures and the holdout's size.
- `max_slice_gap`: for each `slice_by` column, the largest spread of `metric` between its best and worst
  slice; slices whose value is null (an AUC of a one-class slice) are left out.
A check the gate cannot make because the evaluation lacks what it needs fails the candidate: the gate fails
closed. Comparisons allow a 1e-9 slack so that 0.81 - 0.80 is not "more than 0.01".
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from headrace.config import GateConfig

# One table for every judge of "better" (the gate, early stopping, a tuning job's objective), re-exported
# for the gate's callers.
from headrace.metric_direction import EPSILON as EPSILON
from headrace.metric_direction import Direction as Direction
from headrace.metric_direction import UnknownMetric as UnknownMetric
from headrace.metric_direction import direction as direction
from headrace.training.evaluation import Evaluation
from headrace.training.payloads import ChampionInfo, HoldoutMetrics


class GateDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    passed: bool
    reasons: list[str]
    notes: list[str]


def judge(
    gate: GateConfig, candidate: Evaluation, champion: ChampionInfo | None, *, recent_holdout: bool = False
) -> GateDecision:
    """`recent_holdout`: the test split is the run's newest production rows (RunInfo.holdout); with the
    champion scored on it (`champion.holdout`), the champion comparison is made there."""
    direction(gate.metric)  # an unknown gate metric is a config error, not a rejection
    reasons: list[str] = []
    notes: list[str] = []
    metrics = candidate.metrics
    if metrics.get(gate.metric) is None:
        reasons.append(f"the candidate's evaluation has no value for {gate.metric} (gate.metric)")
    if candidate.metric != gate.metric:
        notes.append(
            f"the trainer reported '{candidate.metric}' as its metric; the gate judges {gate.metric}"
        )
    reasons += _threshold_reasons(gate, metrics)
    if recent_holdout and champion is not None and champion.holdout is not None:
        reasons += _improvement_reasons(gate, metrics, champion, champion.holdout, notes)
    else:
        if recent_holdout and champion is not None:
            notes.append(
                f"the champion (version {champion.version}) was not scored on the recent holdout; compared "
                "with its registered metrics instead"
            )
        reasons += _regression_reasons(gate, metrics, champion, notes)
    reasons += _slice_gap_reasons(gate, candidate, notes)
    return GateDecision(passed=not reasons, reasons=reasons, notes=notes)


def _threshold_reasons(gate: GateConfig, metrics: Mapping[str, float | None]) -> list[str]:
    reasons = []
    for name, bound in sorted(gate.thresholds.items()):
        value = metrics.get(name)
        higher = direction(name) is Direction.HIGHER
        if value is None:
            if name != gate.metric:  # already reported above
                reasons.append(f"the candidate's evaluation has no value for {name} (gate.thresholds.{name})")
        elif higher and value < bound - EPSILON:
            reasons.append(
                f"{name} {_fmt(value)} is below the threshold {_fmt(bound)} (gate.thresholds.{name})"
            )
        elif not higher and value > bound + EPSILON:
            reasons.append(
                f"{name} {_fmt(value)} is above the ceiling {_fmt(bound)} (gate.thresholds.{name})"
            )
    return reasons


def _regression_reasons(
    gate: GateConfig, metrics: Mapping[str, float | None], champion: ChampionInfo | None, notes: list[str]
) -> list[str]:
    if champion is None:
        notes.append("no approved champion yet: the first model passes on its thresholds alone")
        return []
    previous = champion.metrics.get(gate.metric)
    if previous is None:
        notes.append(
            f"the champion (version {champion.version}) has no recorded {gate.metric}; no regression check"
        )
        return []
    value = metrics.get(gate.metric)
    if value is None:
        return []  # reported as missing already
    worse_by = previous - value if direction(gate.metric) is Direction.HIGHER else value - previous
    if worse_by <= gate.max_regression + EPSILON:
        return []
    return [
        f"{gate.metric} {_fmt(value)} is {_fmt(worse_by)} worse than the champion's {_fmt(previous)} "
        f"(version {champion.version}); gate.max_regression allows {_fmt(gate.max_regression)}"
    ]


def _improvement_reasons(
    gate: GateConfig,
    metrics: Mapping[str, float | None],
    champion: ChampionInfo,
    holdout: HoldoutMetrics,
    notes: list[str],
) -> list[str]:
    value, previous = metrics.get(gate.metric), holdout.metrics.get(gate.metric)
    if value is None:
        return []  # reported as missing already
    where = f"on the {holdout.rows}-row recent holdout"
    if previous is None:
        return [
            f"the champion (v{champion.version}) has no {gate.metric} {where}: the candidate cannot be "
            "shown to beat it"
        ]
    better_by = value - previous if direction(gate.metric) is Direction.HIGHER else previous - value
    if better_by > gate.min_improvement + EPSILON:
        notes.append(
            f"{gate.metric} {_fmt(value)} {where} beats the champion's {_fmt(previous)} (v{champion.version})"
        )
        return []
    required = (
        f" by more than {_fmt(gate.min_improvement)} (gate.min_improvement)" if gate.min_improvement else ""
    )
    return [
        f"{gate.metric} {_fmt(value)} {where} does not beat the champion's {_fmt(previous)} "
        f"(v{champion.version}){required}"
    ]


def _slice_gap_reasons(gate: GateConfig, candidate: Evaluation, notes: list[str]) -> list[str]:
    reasons = []
    higher = direction(gate.metric) is Direction.HIGHER
    for column in gate.slice_by:
        slices = candidate.slices.get(column)
        if slices is None:
            reasons.append(f"the candidate's evaluation has no slices for '{column}' (gate.slice_by)")
            continue
        values = {name: value for name, m in slices.items() if (value := m.get(gate.metric)) is not None}
        if len(values) < 2:
            notes.append(f"fewer than two slices of '{column}' have a {gate.metric}; no slice gap to check")
            continue
        ranked = sorted(values.items(), key=lambda item: item[1], reverse=higher)
        (best, best_value), (worst, worst_value) = ranked[0], ranked[-1]
        gap = abs(best_value - worst_value)
        if gap > gate.max_slice_gap + EPSILON:
            reasons.append(
                f"{gate.metric} differs by {_fmt(gap)} across '{column}' slices (best {best} "
                f"{_fmt(best_value)}, worst {worst} {_fmt(worst_value)}); gate.max_slice_gap allows "
                f"{_fmt(gate.max_slice_gap)}"
            )
    return reasons


def _fmt(value: float) -> str:
    return f"{value:.4g}"
