"""`trainer.tuning`: what a valid section gives the rest of the pipeline, and each SageMaker rule a bad one
breaks, named by its field (trainer.tuning.<field>)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from headrace.config import (
    ConfigError,
    ModelConfig,
    load_model_file,
    models_document,
    parse_model,
    parse_models_document,
)
from headrace.early_stopping import EarlyStopping
from headrace.metric_direction import DIRECTIONS, Direction, UnknownMetric, objective_type
from headrace.training.gate import direction as gate_direction
from headrace.training_job import hyperparameters_for, static_hyperparameters_for
from headrace.tuning_limits import MAX_CATEGORICAL_VALUES, MAX_TUNED_HYPERPARAMETERS

REPO = Path(__file__).resolve().parents[2]

RANGES: dict[str, Any] = {
    "eta": {"min": 0.01, "max": 0.5, "scaling": "logarithmic"},
    "max_depth": {"min": 2, "max": 10},
    "grow_policy": {"values": ["depthwise", "lossguide"]},
}


def _churn(tuning: dict[str, Any] | None = None, **trainer: Any) -> dict[str, Any]:
    """The shipped churn model, its fixed hyperparameters moved aside so that any of them may be tuned."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "models" / "churn.yaml").read_text())
    raw["trainer"]["hyperparameters"] = {}
    raw["trainer"].update(trainer)
    if tuning is not None:
        raw["trainer"]["tuning"] = tuning
    return raw


def _load(tmp_path: Path, raw: dict[str, Any]) -> ModelConfig:
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_model_file(path)


def _problems(tmp_path: Path, raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, raw)
    assert "churn.yaml" in str(caught.value)
    return "\n".join(caught.value.problems)


def test_a_model_without_tuning_has_none_and_its_static_hyperparameters_are_all_of_them(
    tmp_path: Path,
) -> None:
    model = _load(tmp_path, _churn())
    assert model.trainer.tuning is None
    assert static_hyperparameters_for(model) == hyperparameters_for(model)


def test_range_types_are_inferred_from_their_bounds_and_values(tmp_path: Path) -> None:
    tuning = _load(tmp_path, _churn({"ranges": RANGES})).trainer.tuning
    assert tuning is not None
    assert (tuning.strategy, tuning.max_jobs, tuning.max_parallel_jobs, tuning.early_stopping) == (
        "Bayesian",
        20,
        2,
        False,
    )
    assert [n for n, _ in tuning.continuous()] == ["eta"]
    assert [n for n, _ in tuning.integer()] == ["max_depth"]
    assert [n for n, _ in tuning.categorical()] == ["grow_policy"]
    assert tuning.ranges["max_depth"].size == 9
    assert tuning.ranges["eta"].size is None
    assert tuning.ranges["max_depth"].edge_texts() == ["2", "10"]
    assert tuning.ranges["eta"].edge_texts() == ["0.01", "0.010000000000000002", "0.5"]


def test_a_float_bound_makes_a_range_continuous_and_an_explicit_type_wins(tmp_path: Path) -> None:
    ranges = {"gamma": {"min": 0, "max": 2.0}, "alpha": {"type": "continuous", "min": 0, "max": 4}}
    tuning = _load(tmp_path, _churn({"ranges": ranges})).trainer.tuning
    assert tuning is not None
    assert sorted(n for n, _ in tuning.continuous()) == ["alpha", "gamma"]


def test_categorical_values_reach_the_trainer_as_sagemaker_passes_them(tmp_path: Path) -> None:
    tuning = _load(
        tmp_path, _churn({"max_jobs": 2, "ranges": {"max_bin": {"values": [64, 256]}}})
    ).trainer.tuning
    assert tuning is not None
    assert tuning.ranges["max_bin"].value_texts() == ["64", "256"]


def test_the_objective_follows_the_gate_metric_direction() -> None:
    from headrace.config import TuningConfig

    assert TuningConfig.objective_type("auc") == "Maximize"
    assert TuningConfig.objective_type("logloss") == "Minimize"
    assert objective_type("ndcg@5") == "Maximize"


def test_static_hyperparameters_leave_out_each_tuned_name_defaults_included(tmp_path: Path) -> None:
    ranges = {"num_round": {"min": 50, "max": 400}, "lambda": {"min": 0.0, "max": 5.0}, **RANGES}
    model = _load(tmp_path, _churn({"ranges": ranges}, hyperparameters={"subsample": 0.8}))
    static = static_hyperparameters_for(model)
    everything = hyperparameters_for(model)
    assert "num_round" in everything  # the trainer's default, unless tuned
    assert set(everything) - set(static) == {"num_round"}
    assert not {"num_round", "lambda", *RANGES} & set(static)
    assert static["subsample"] == "0.8" and static["target"] == "churned"


def test_reg_lambda_and_its_alias_are_one_hyperparameter(tmp_path: Path) -> None:
    raw = _churn({"ranges": {"reg_lambda": {"min": 0.0, "max": 5.0}}}, hyperparameters={"lambda": 1.0})
    assert "trainer.tuning.ranges.reg_lambda: is also fixed" in _problems(tmp_path, raw)


@pytest.mark.parametrize(
    ("tuning", "expected"),
    [
        ({"ranges": {}}, "trainer.tuning.ranges: name at least one hyperparameter"),
        ({}, "trainer.tuning.ranges: Field required"),
        ({"ranges": {"eta": {"min": 0.5, "max": 0.1}}}, "trainer.tuning.ranges.eta: min (0.5) must be less"),
        ({"ranges": {"eta": {"min": 0.1, "max": 0.1}}}, "trainer.tuning.ranges.eta: min (0.1) must be less"),
        (
            {"ranges": {"eta": {"min": 0.0, "max": 0.5, "scaling": "logarithmic"}}},
            "trainer.tuning.ranges.eta: logarithmic scaling needs a range above 0",
        ),
        (
            {"ranges": {"subsample": {"min": 0.5, "max": 1.0, "scaling": "reverse_logarithmic"}}},
            "trainer.tuning.ranges.subsample: reverse_logarithmic scaling needs a range within [0, 1)",
        ),
        (
            {"ranges": {"max_depth": {"min": 2, "max": 9, "scaling": "reverse_logarithmic"}}},
            "trainer.tuning.ranges.max_depth: reverse_logarithmic scaling applies to continuous ranges only",
        ),
        (
            {"ranges": {"max_depth": {"type": "integer", "min": 2, "max": 9.5}}},
            "trainer.tuning.ranges.max_depth: an integer range needs whole-number min and max",
        ),
        (
            {"ranges": {"grow_policy": {"values": ["depthwise"], "min": 1}}},
            "trainer.tuning.ranges.grow_policy: a categorical range takes values, not min/max",
        ),
        (
            {"ranges": {"grow_policy": {"values": ["depthwise", "depthwise"]}}},
            "trainer.tuning.ranges.grow_policy: values repeat: depthwise",
        ),
        (
            {"ranges": {"eta": {"min": 0.1}}},
            "trainer.tuning.ranges.eta: a continuous range needs both min and max",
        ),
        (
            {"ranges": {"eta": {"min": True, "max": 0.5}}},
            "trainer.tuning.ranges.eta.min: True is not a number",
        ),
        (
            {"max_jobs": 3, "max_parallel_jobs": 4, "ranges": {"eta": {"min": 0.1, "max": 0.5}}},
            "trainer.tuning.max_parallel_jobs: 4 is greater than max_jobs (3)",
        ),
        (
            {"max_parallel_jobs": 101, "max_jobs": 200, "ranges": {"eta": {"min": 0.1, "max": 0.5}}},
            "trainer.tuning.max_parallel_jobs: Input should be less than or equal to 100",
        ),
        (
            {"max_jobs": 751, "ranges": {"eta": {"min": 0.1, "max": 0.5}}},
            "trainer.tuning.max_jobs: 751 is over SageMaker's 750 for Bayesian",
        ),
        (
            {"strategy": "Grid", "ranges": {"eta": {"min": 0.1, "max": 0.5}}},
            "trainer.tuning.ranges.eta: Grid searches categorical ranges only",
        ),
        (
            {
                "strategy": "Grid",
                "max_jobs": 3,
                "ranges": {"grow_policy": {"values": ["depthwise", "lossguide"]}},
            },
            "trainer.tuning.max_jobs: Grid runs every combination of the values, 2, and max_jobs is 3",
        ),
        (
            {"strategy": "Hyperband", "early_stopping": True, "ranges": {"eta": {"min": 0.1, "max": 0.5}}},
            "trainer.tuning.early_stopping: Hyperband stops poor trials itself",
        ),
        (
            {
                "ranges": {
                    "max_depth": {"min": 2, "max": 4},
                    "grow_policy": {"values": ["depthwise", "lossguide"]},
                }
            },
            "trainer.tuning.max_jobs: 20 trials, but the ranges hold only 6 combinations",
        ),
        ({"strategy": "Annealing", "ranges": RANGES}, "trainer.tuning.strategy: Input should be 'Bayesian'"),
    ],
)
def test_a_tuning_section_sagemaker_would_refuse_is_named_by_its_field(
    tmp_path: Path, tuning: dict[str, Any], expected: str
) -> None:
    assert expected in _problems(tmp_path, _churn(tuning))


def test_more_ranges_than_sagemaker_searches_are_refused(tmp_path: Path) -> None:
    ranges = {f"p{i}": {"min": 0.0, "max": 1.0} for i in range(MAX_TUNED_HYPERPARAMETERS + 1)}
    assert "trainer.tuning.ranges: 31 ranges: SageMaker tunes at most 30" in _problems(
        tmp_path, _churn({"ranges": ranges}, framework="custom")
    )


def test_more_categorical_values_than_sagemaker_takes_are_refused(tmp_path: Path) -> None:
    values = list(range(MAX_CATEGORICAL_VALUES + 1))
    assert "trainer.tuning.ranges.max_bin: 31 values: SageMaker takes at most 30" in _problems(
        tmp_path, _churn({"ranges": {"max_bin": {"values": values}}})
    )


def test_random_search_may_run_more_trials_than_the_others(tmp_path: Path) -> None:
    tuning = _load(
        tmp_path,
        _churn({"strategy": "Random", "max_jobs": 5000, "ranges": {"eta": {"min": 0.1, "max": 0.5}}}),
    ).trainer.tuning
    assert tuning is not None and tuning.max_jobs == 5000


def test_grid_runs_every_combination_when_max_jobs_is_left_out(tmp_path: Path) -> None:
    ranges = {"grow_policy": {"values": ["depthwise", "lossguide"]}, "max_depth": {"values": [3, 5, 7]}}
    tuning = _load(tmp_path, _churn({"strategy": "Grid", "ranges": ranges})).trainer.tuning
    assert tuning is not None
    assert tuning.max_jobs == math.prod(len(spec.values or []) for spec in tuning.ranges.values()) == 6


@pytest.mark.parametrize("name", ["target", "objective", "eval_metric", "seed", "_tuning_objective_metric"])
def test_a_hyperparameter_the_pipeline_or_sagemaker_sets_cannot_be_tuned(tmp_path: Path, name: str) -> None:
    problems = _problems(tmp_path, _churn({"ranges": {name: {"min": 0.0, "max": 1.0}}}))
    assert f"trainer.tuning.ranges.{name}: is set by the pipeline" in problems


def test_the_built_in_trainer_tunes_only_hyperparameters_it_checks(tmp_path: Path) -> None:
    problems = _problems(tmp_path, _churn({"ranges": {"max_deph": {"min": 2.0, "max": 10.0}}}))
    assert (
        "trainer.tuning.ranges.max_deph: is not a hyperparameter the built-in XGBoost trainer checks"
        in problems
    )
    assert "max_depth" in problems and "lambda" in problems


def test_a_custom_model_may_tune_its_own_hyperparameters(tmp_path: Path) -> None:
    raw = _churn({"ranges": {"hidden_units": {"min": 8, "max": 64}}}, framework="custom")
    model = parse_model(raw, "churn.yaml")  # the module's file is load_model_file's business
    static = static_hyperparameters_for(model)
    assert "hidden_units" not in static and "num_round" not in static


def test_a_tuned_name_also_fixed_is_refused(tmp_path: Path) -> None:
    raw = _churn({"ranges": RANGES}, hyperparameters={"eta": 0.2})
    assert "trainer.tuning.ranges.eta: is also fixed in the model's hyperparameters" in _problems(
        tmp_path, raw
    )


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        (
            {"subsample": {"min": 0.5, "max": 1.5}},
            "trainer.tuning.ranges.subsample: this range gives the trainer '1.5'",
        ),
        (
            {"max_depth": {"min": 2.0, "max": 8.0}},
            "trainer.tuning.ranges.max_depth: this range gives the trainer '2.0000000000000004'",
        ),
        (
            {"grow_policy": {"values": ["depthwise", "leafwise"]}},
            "trainer.tuning.ranges.grow_policy: this range gives the trainer 'leafwise'",
        ),
    ],
)
def test_a_range_whose_edge_the_trainer_would_refuse_is_named(
    tmp_path: Path, ranges: dict[str, Any], expected: str
) -> None:
    assert expected in _problems(tmp_path, _churn({"max_jobs": 2, "ranges": ranges}))


def test_too_many_hyperparameters_in_all_are_refused(tmp_path: Path) -> None:
    fixed = {f"own_{i}": i for i in range(85)}
    ranges = {f"tuned_{i}": {"min": 0.0, "max": 1.0} for i in range(10)}
    model = parse_model(_churn({"ranges": ranges}, framework="custom", hyperparameters=fixed), "churn.yaml")
    with pytest.raises(ValueError, match=r"make 10\d: a tuning job takes at most 100"):
        static_hyperparameters_for(model)


def test_a_tuned_model_needs_a_gate_metric_of_known_direction(tmp_path: Path) -> None:
    raw = _churn({"ranges": RANGES}, framework="custom")
    raw["gate"] = {**raw.get("gate", {}), "metric": "weirdness", "thresholds": {}}
    with pytest.raises(ConfigError) as caught:
        parse_model(raw, "churn.yaml")
    assert "gate.metric: trainer.tuning needs to know which way is better" in str(caught.value)


def test_the_tuning_section_survives_the_functions_models_document(tmp_path: Path) -> None:
    ranges = {**RANGES, "gamma": {"min": 0, "max": 2.0}}
    model = _load(tmp_path, _churn({"strategy": "Random", "ranges": ranges}))
    again = parse_models_document(models_document([model]))["churn"]
    assert again.trainer.tuning == model.trainer.tuning
    assert again.trainer.tuning is not None and [n for n, _ in again.trainer.tuning.continuous()] == [
        "eta",
        "gamma",
    ]


def test_an_untuned_model_document_has_no_tuning_key_so_function_assets_stay_the_same(tmp_path: Path) -> None:
    document = json.loads(models_document([_load(tmp_path, _churn())]))
    assert "tuning" not in document["models"][0]["trainer"]
    assert parse_models_document(json.dumps(document))["churn"].trainer.tuning is None


@pytest.mark.parametrize("metric", sorted(DIRECTIONS))
def test_the_gate_early_stopping_and_tuning_read_one_direction_table(metric: str) -> None:
    higher = DIRECTIONS[metric] is Direction.HIGHER
    assert gate_direction(metric) is DIRECTIONS[metric]
    assert EarlyStopping(metric, patience=3).maximize is higher
    assert objective_type(metric) == ("Maximize" if higher else "Minimize")


def test_early_stopping_keeps_the_best_accuracy_not_the_worst() -> None:
    stopping = EarlyStopping("accuracy", patience=2)
    assert stopping.record(0, 0.7) and stopping.record(1, 0.8)
    assert not stopping.record(2, 0.75)
    assert stopping.best_epoch == 1


def test_early_stopping_on_a_metric_of_unknown_direction_fails_before_training() -> None:
    with pytest.raises(UnknownMetric, match="'weirdness'"):
        EarlyStopping("weirdness", patience=2)
