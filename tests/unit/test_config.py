"""The model config: what a valid file gives, and how a bad one is reported (file, field, problem)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from headrace.config import (
    ConfigError,
    ModelConfig,
    load_model_file,
    load_models,
    models_document,
    parse_models_document,
)
from headrace.training_job import HyperparameterError, ReservedHyperparameter, hyperparameters_for

REPO = Path(__file__).resolve().parents[2]


def _example() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "models" / "churn.yaml").read_text()))


def _write(directory: Path, raw: Any, name: str = "churn") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw)
    return path


def _error(directory: Path, raw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_model_file(_write(directory, raw))
    return caught.value


def test_the_shipped_example_model_is_valid() -> None:
    models = load_models(REPO / "models")
    (churn,) = [m for m in models if m.name == "churn"]
    assert churn.data.target == "churned"
    assert churn.incoming_prefix == "churn/incoming/"
    assert next(c.name for c in churn.data.features) == "tenure_months"


def test_several_models_load_from_one_directory(tmp_path: Path) -> None:
    _write(tmp_path, _example())
    second = _example() | {"name": "upsell"}
    _write(tmp_path, second, "upsell")
    assert [m.name for m in load_models(tmp_path)] == ["churn", "upsell"]


def test_an_unknown_field_is_named_with_its_path(tmp_path: Path) -> None:
    raw = _example()
    raw["trainer"]["instance_typo"] = "ml.m5.xlarge"
    error = _error(tmp_path, raw)
    assert "churn.yaml" in str(error)
    assert "trainer.instance_typo: unknown field" in str(error)


def test_a_wrong_column_type_names_the_column_index_and_the_allowed_types(tmp_path: Path) -> None:
    raw = _example()
    raw["schema"]["columns"][2]["type"] = "strng"
    message = str(_error(tmp_path, raw))
    assert "schema.columns.2.type" in message
    assert "'integer'" in message


def test_a_target_that_is_not_a_column_is_rejected(tmp_path: Path) -> None:
    raw = _example()
    raw["schema"]["target"] = "cancelled"
    assert "target 'cancelled' is not one of the columns" in str(_error(tmp_path, raw))


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    raw = _example()
    raw["trainer"]["max_runtime_s"] = 5
    raw["rollout"]["canary_percent"] = 90
    error = _error(tmp_path, raw)
    fields = [p.split(":")[0] for p in error.problems]
    assert "trainer.max_runtime_s" in fields and "rollout.canary_percent" in fields


def test_a_category_column_needs_categories(tmp_path: Path) -> None:
    raw = _example()
    del raw["schema"]["columns"][3]["categories"]
    assert "needs a non-empty 'categories' list" in str(_error(tmp_path, raw))


def test_spot_training_needs_a_wait_at_least_as_long_as_the_runtime(tmp_path: Path) -> None:
    raw = _example()
    raw["trainer"]["max_wait_s"] = 600
    assert "max_wait_s (600) must be >= max_runtime_s (3600)" in str(_error(tmp_path, raw))


def test_a_slice_column_must_exist(tmp_path: Path) -> None:
    raw = _example()
    raw["gate"]["slice_by"] = ["country"]
    assert "gate.slice_by names unknown columns: country" in str(_error(tmp_path, raw))


def test_a_schedule_must_be_an_eventbridge_expression(tmp_path: Path) -> None:
    raw = _example()
    raw["monitoring"]["schedule"] = "every hour"
    assert "monitoring.schedule" in str(_error(tmp_path, raw))


def test_the_model_name_must_match_the_file_name(tmp_path: Path) -> None:
    raw = _example() | {"name": "churn-v2"}
    assert "must match the file name 'churn'" in str(_error(tmp_path, raw))


def test_invalid_yaml_is_reported_as_such(tmp_path: Path) -> None:
    assert "not valid YAML" in str(_error(tmp_path, "name: churn\nschema: [unclosed\n"))


def test_a_file_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    assert "expected a mapping" in str(_error(tmp_path, "- just\n- a list\n"))


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no <model>\.yaml files"):
        load_models(tmp_path)


def test_the_json_document_shipped_to_lambda_round_trips() -> None:
    models = load_models(REPO / "models")
    parsed = parse_models_document(models_document(models))
    assert parsed["churn"] == next(m for m in models if m.name == "churn")


def test_the_schema_fingerprint_changes_when_a_column_type_changes() -> None:
    raw = _example()
    before = ModelConfig.model_validate(raw).data.fingerprint()
    raw["schema"]["columns"][0]["type"] = "float"
    assert ModelConfig.model_validate(raw).data.fingerprint() != before


def test_gpu_instance_types_are_recognized() -> None:
    raw = _example()
    raw["trainer"]["instance_type"] = "ml.g5.xlarge"
    assert ModelConfig.model_validate(raw).trainer.uses_gpu


def test_a_hyperparameter_the_trainer_refuses_is_named_at_load_time(tmp_path: Path) -> None:
    raw = _example()
    raw["trainer"]["hyperparameters"]["max_depth"] = "banana"
    assert "trainer.hyperparameters.max_depth" in str(_error(tmp_path, raw))


def test_a_hyperparameter_owned_by_another_section_is_refused(tmp_path: Path) -> None:
    raw = _example()
    raw["trainer"]["hyperparameters"]["target"] = "churned"
    assert "trainer.hyperparameters.target" in str(_error(tmp_path, raw))


def test_the_trainer_contract_raises_typed_errors_the_config_names_as_fields() -> None:
    # headrace.training_job knows nothing of the config's field paths: config.py maps its typed errors.
    model = ModelConfig.model_validate(_example())
    raw = _example()
    raw["trainer"]["hyperparameters"]["seed"] = 7
    with pytest.raises(ReservedHyperparameter) as reserved:
        hyperparameters_for(ModelConfig.model_validate(raw))
    assert reserved.value.name == "seed"
    raw = _example()
    raw["trainer"]["hyperparameters"]["subsample"] = 2
    with pytest.raises(HyperparameterError) as bad:
        hyperparameters_for(ModelConfig.model_validate(raw))
    assert (bad.value.name, type(bad.value)) == ("subsample", HyperparameterError)
    assert hyperparameters_for(model)["target"] == model.data.target


def test_a_reserved_hyperparameter_is_named_with_the_sections_that_set_it(tmp_path: Path) -> None:
    raw = _example()
    raw["trainer"]["hyperparameters"]["objective"] = "reg:squarederror"
    assert _error(tmp_path, raw).problems == [
        "trainer.hyperparameters.objective is set from the rest of the config "
        "(schema.target, trainer.objective, gate.metric, gate.slice_by, trainer.seed); remove it"
    ]
