"""The quality gate, rule by rule: thresholds, regression against the champion, slice gaps."""

from __future__ import annotations

from typing import Any

import pytest

from headrace.config import GateConfig
from headrace.training.evaluation import Evaluation
from headrace.training.gate import Direction, UnknownMetric, direction, judge
from headrace.training.payloads import ChampionInfo


def gate(**overrides: Any) -> GateConfig:
    settings: dict[str, Any] = {
        "metric": "auc",
        "thresholds": {"auc": 0.7},
        "max_regression": 0.01,
        "max_slice_gap": 0.15,
        "slice_by": [],
    }
    return GateConfig.model_validate(settings | overrides)


def candidate(
    metric: str = "auc", slices: dict[str, Any] | None = None, **metrics: float | None
) -> Evaluation:
    return Evaluation(metric=metric, metrics=metrics, slices=slices or {})


def champion(**metrics: float) -> ChampionInfo:
    return ChampionInfo(
        version=3, arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3", metrics=metrics
    )


def test_a_first_model_above_its_thresholds_passes_with_a_note_that_there_is_no_champion() -> None:
    decision = judge(gate(), candidate(auc=0.81), None)
    assert decision.passed
    assert decision.reasons == []
    assert any("no approved champion" in note for note in decision.notes)


def test_a_first_model_below_a_threshold_is_rejected_naming_the_metric_value_and_threshold() -> None:
    decision = judge(gate(), candidate(auc=0.65), None)
    assert not decision.passed
    assert decision.reasons == ["auc 0.65 is below the threshold 0.7 (gate.thresholds.auc)"]


def test_a_threshold_on_a_lower_is_better_metric_is_a_ceiling() -> None:
    rules = gate(metric="rmse", thresholds={"rmse": 3.0})
    assert judge(rules, candidate("rmse", rmse=2.5), None).passed
    decision = judge(rules, candidate("rmse", rmse=3.4), None)
    assert decision.reasons == ["rmse 3.4 is above the ceiling 3 (gate.thresholds.rmse)"]


def test_every_threshold_is_checked_not_only_the_gate_metric() -> None:
    decision = judge(
        gate(thresholds={"auc": 0.7, "accuracy": 0.8, "logloss": 0.5}),
        candidate(auc=0.9, accuracy=0.75, logloss=0.6),
        None,
    )
    assert len(decision.reasons) == 2
    assert any(r.startswith("accuracy 0.75 is below") for r in decision.reasons)
    assert any(r.startswith("logloss 0.6 is above") for r in decision.reasons)


def test_a_value_exactly_at_the_threshold_passes() -> None:
    assert judge(gate(), candidate(auc=0.7), None).passed


def test_a_candidate_worse_than_the_champion_by_more_than_max_regression_is_rejected_with_both_values() -> (
    None
):
    decision = judge(gate(), candidate(auc=0.75), champion(auc=0.9))
    assert not decision.passed
    [reason] = decision.reasons
    assert reason.startswith("auc 0.75 is 0.15 worse than the champion's 0.9 (version 3)")
    assert "gate.max_regression allows 0.01" in reason


def test_a_regression_within_max_regression_passes_even_at_float_rounding_edges() -> None:
    # 0.81 - 0.80 is 0.010000000000000009 in floating point: still "at most 0.01".
    assert judge(gate(), candidate(auc=0.80), champion(auc=0.81)).passed


def test_a_candidate_better_than_the_champion_passes() -> None:
    assert judge(gate(), candidate(auc=0.92), champion(auc=0.9)).passed


def test_regression_respects_a_lower_is_better_metric() -> None:
    rules = gate(metric="logloss", thresholds={}, max_regression=0.02)
    assert judge(rules, candidate("logloss", logloss=0.30), champion(logloss=0.35)).passed
    decision = judge(rules, candidate("logloss", logloss=0.40), champion(logloss=0.35))
    [reason] = decision.reasons
    assert reason.startswith("logloss 0.4 is 0.05 worse than the champion's 0.35")


def test_a_champion_without_the_gate_metric_skips_the_regression_check_with_a_note() -> None:
    decision = judge(gate(), candidate(auc=0.75), champion(logloss=0.3))
    assert decision.passed
    assert any("no recorded auc" in note for note in decision.notes)


def test_a_candidate_without_the_gate_metric_fails_closed() -> None:
    decision = judge(gate(thresholds={}), candidate(logloss=0.3), champion(auc=0.8))
    assert decision.reasons == ["the candidate's evaluation has no value for auc (gate.metric)"]


def test_a_null_gate_metric_is_reported_once_even_with_a_threshold_on_it() -> None:
    decision = judge(gate(), candidate(auc=None), None)
    assert decision.reasons == ["the candidate's evaluation has no value for auc (gate.metric)"]


REGIONS = {
    "north": {"auc": 0.91, "rows": 100},
    "south": {"auc": 0.84, "rows": 90},
    "east": {"auc": 0.70, "rows": 80},
    "west": {"auc": None, "rows": 3},
}


def test_a_slice_gap_beyond_max_slice_gap_is_rejected_naming_the_best_and_worst_slice() -> None:
    decision = judge(gate(slice_by=["region"]), candidate(auc=0.85, slices={"region": REGIONS}), None)
    [reason] = decision.reasons
    assert reason == (
        "auc differs by 0.21 across 'region' slices (best north 0.91, worst east 0.7); "
        "gate.max_slice_gap allows 0.15"
    )


def test_null_slices_are_left_out_of_the_gap() -> None:
    slices = {"region": {"north": {"auc": 0.80}, "south": {"auc": 0.75}, "west": {"auc": None}}}
    assert judge(gate(slice_by=["region"]), candidate(auc=0.78, slices=slices), None).passed


def test_fewer_than_two_non_null_slices_cannot_have_a_gap() -> None:
    slices = {"region": {"north": {"auc": 0.80}, "west": {"auc": None}}}
    decision = judge(gate(slice_by=["region"]), candidate(auc=0.78, slices=slices), None)
    assert decision.passed
    assert any("fewer than two slices of 'region'" in note for note in decision.notes)


def test_slice_gap_ranks_best_and_worst_by_the_metrics_direction() -> None:
    slices = {"region": {"north": {"rmse": 1.0}, "south": {"rmse": 1.5}}}
    rules = gate(metric="rmse", thresholds={}, max_slice_gap=0.2, slice_by=["region"])
    [reason] = judge(rules, candidate("rmse", rmse=1.2, slices=slices), None).reasons
    assert "best north 1, worst south 1.5" in reason


def test_a_configured_slice_column_missing_from_the_evaluation_fails_closed() -> None:
    decision = judge(gate(slice_by=["region"]), candidate(auc=0.85), None)
    assert decision.reasons == ["the candidate's evaluation has no slices for 'region' (gate.slice_by)"]


def test_slices_are_checked_only_for_the_configured_columns() -> None:
    assert judge(gate(), candidate(auc=0.85, slices={"region": REGIONS}), None).passed


def test_every_failed_rule_is_reported_together() -> None:
    decision = judge(
        gate(slice_by=["region"]), candidate(auc=0.65, slices={"region": REGIONS}), champion(auc=0.9)
    )
    assert len(decision.reasons) == 3


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("auc", Direction.HIGHER),
        ("accuracy", Direction.HIGHER),
        ("ndcg@5", Direction.HIGHER),
        ("logloss", Direction.LOWER),
        ("rmse", Direction.LOWER),
        ("mae", Direction.LOWER),
        ("error@0.7", Direction.LOWER),
    ],
)
def test_metric_directions(metric: str, expected: Direction) -> None:
    assert direction(metric) is expected


def test_an_unknown_gate_metric_is_an_error_not_a_rejection() -> None:
    with pytest.raises(UnknownMetric, match="'weirdness'"):
        judge(gate(metric="weirdness", thresholds={}), candidate("weirdness", weirdness=1.0), None)


def test_nan_metrics_in_an_evaluation_read_as_null() -> None:
    evaluation = Evaluation.model_validate(
        {"metric": "auc", "metrics": {"auc": float("nan")}, "slices": {"r": {"a": {"auc": float("inf")}}}}
    )
    assert evaluation.metrics == {"auc": None}
    assert evaluation.slices["r"]["a"] == {"auc": None}
