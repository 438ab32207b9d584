"""A model folder with its own training code: how it loads, how a bad one is reported, and how its code is
staged for its images (stacks/assets.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from headrace.cli import project
from headrace.cli.main import app
from headrace.config import ConfigError, load_model_file, load_models, models_document, parse_models_document
from headrace.usercode import MANIFEST, USERCODE_DIR, find_usercode
from stacks.assets import TRAIN_IMAGE_FILES, TRAIN_IMAGE_SOURCE, stage_image_context, stage_usercode

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "support" / "custom_models" / "churn-centroid"


def _folder(models: Path, name: str = "churn-centroid") -> Path:
    """A copy of the fixture model folder under `models/<name>/`."""
    folder = models / name
    shutil.copytree(FIXTURE, folder)
    return folder


def _config(folder: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((folder / "model.yaml").read_text()))


def _rewrite(folder: Path, raw: dict[str, Any]) -> Path:
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_model_file(path)
    return str(caught.value)


def test_a_model_folder_loads_with_its_folder_as_code_dir(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    model = load_model_file(folder / "model.yaml")
    assert model.trainer.framework == "custom"
    assert model.code_dir == folder.resolve()
    assert model.entry_point_file == folder.resolve() / "model.py"


def test_files_and_folders_load_side_by_side(tmp_path: Path) -> None:
    shutil.copy(REPO / "models" / "churn.yaml", tmp_path / "churn.yaml")
    _folder(tmp_path)
    models = load_models(tmp_path)
    assert [(m.name, m.code_dir is not None) for m in models] == [("churn", False), ("churn-centroid", True)]


def test_the_code_dir_stays_out_of_the_document_shipped_to_lambda(tmp_path: Path) -> None:
    _folder(tmp_path)
    document = models_document(load_models(tmp_path))
    assert str(tmp_path) not in document
    parsed = parse_models_document(document)["churn-centroid"]
    assert parsed.trainer.framework == "custom" and parsed.trainer.entry_point == "model.py"
    assert parsed.code_dir is None


def test_the_folder_name_must_match_the_model_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "churn-other")
    message = _error(folder / "model.yaml")
    assert "name: 'churn-centroid' must match the folder name 'churn-other'" in message
    assert str(folder / "model.yaml") in message


def test_custom_code_in_a_single_file_config_asks_for_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "churn-centroid.yaml"
    shutil.copy(FIXTURE / "model.yaml", path)
    message = _error(path)
    assert "trainer.framework: custom needs a model folder" in message
    assert str(tmp_path / "churn-centroid" / "model.yaml") in message


def test_a_missing_entry_point_names_the_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "model.py").unlink()
    message = _error(folder / "model.yaml")
    assert f"trainer.entry_point: {folder.resolve() / 'model.py'} does not exist" in message


def test_another_entry_point_is_read_from_the_folder(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "model.py").rename(folder / "centroid.py")
    raw = _config(folder)
    raw["trainer"]["entry_point"] = "centroid.py"
    model = load_model_file(_rewrite(folder, raw))
    assert model.entry_point_file == folder.resolve() / "centroid.py"


@pytest.mark.parametrize(
    "entry_point", ["sub/model.py", "../model.py", "model.txt", "model", "/abs/model.py"]
)
def test_the_entry_point_must_be_a_plain_python_file_name(tmp_path: Path, entry_point: str) -> None:
    folder = _folder(tmp_path)
    raw = _config(folder)
    raw["trainer"]["entry_point"] = entry_point
    message = _error(_rewrite(folder, raw))
    assert f"trainer.entry_point: '{entry_point}' is not a plain Python file name" in message


def test_an_entry_point_for_the_built_in_trainer_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    raw = _config(folder)
    raw["trainer"]["framework"] = "xgboost"
    raw["trainer"]["hyperparameters"] = {}
    message = _error(_rewrite(folder, raw))
    assert "trainer.entry_point: applies to framework custom" in message


def test_a_custom_models_reserved_hyperparameters_are_still_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    raw = _config(folder)
    raw["trainer"]["hyperparameters"]["objective"] = "reg:squarederror"
    assert "trainer.hyperparameters.objective is set from the rest of the config" in _error(
        _rewrite(folder, raw)
    )


def test_a_model_given_as_both_file_and_folder_is_refused(tmp_path: Path) -> None:
    _folder(tmp_path)
    shutil.copy(FIXTURE / "model.yaml", tmp_path / "churn-centroid.yaml")
    with pytest.raises(ConfigError, match=r"is both churn-centroid\.yaml and churn-centroid/model\.yaml"):
        load_models(tmp_path)


def test_a_folder_with_code_but_no_model_yaml_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "model.yaml").rename(folder / "config.yaml")
    with pytest.raises(ConfigError, match=r"a model folder needs its config as model\.yaml") as caught:
        load_models(tmp_path)
    assert caught.value.path == str(folder)


def test_other_folders_are_not_models(tmp_path: Path) -> None:
    _folder(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("not a model")
    (tmp_path / "__pycache__").mkdir()
    assert [m.name for m in load_models(tmp_path)] == ["churn-centroid"]


# --- staging the code for the model's images ------------------------------------------------------------


def test_stage_usercode_lays_out_modules_requirements_and_the_manifest(tmp_path: Path) -> None:
    model = load_model_file(_folder(tmp_path / "models") / "model.yaml")
    assert model.code_dir is not None
    (model.code_dir / "helpers.py").write_text("SCALE = 2\n")
    staged = stage_usercode(model, tmp_path / "context" / USERCODE_DIR)
    assert sorted(p.name for p in staged.iterdir()) == sorted(
        ["helpers.py", MANIFEST, "model.py", "requirements.txt"]
    )
    assert (staged / "requirements.txt").read_text() == (FIXTURE / "requirements.txt").read_text()
    assert json.loads((staged / MANIFEST).read_text()) == {
        "model": "churn-centroid",
        "entry_point": "model.py",
        "sha256": hashlib.sha256((FIXTURE / "model.py").read_bytes()).hexdigest(),
    }
    assert find_usercode(tmp_path / "context") == staged


def test_a_model_without_requirements_gets_an_empty_requirements_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "models")
    (folder / "requirements.txt").unlink()
    staged = stage_usercode(load_model_file(folder / "model.yaml"), tmp_path / USERCODE_DIR)
    assert (staged / "requirements.txt").read_text() == ""


def test_staging_again_replaces_what_was_there(tmp_path: Path) -> None:
    model = load_model_file(_folder(tmp_path / "models") / "model.yaml")
    destination = tmp_path / USERCODE_DIR
    destination.mkdir()
    (destination / "stale.py").write_text("")
    stage_usercode(model, destination)
    assert not (destination / "stale.py").exists()


def test_a_built_in_model_has_no_code_to_stage(tmp_path: Path) -> None:
    churn = load_model_file(REPO / "models" / "churn.yaml")
    with pytest.raises(ValueError, match="model 'churn': only a framework custom model"):
        stage_usercode(churn, tmp_path / USERCODE_DIR)


def test_a_shared_image_context_has_an_empty_usercode_folder(tmp_path: Path) -> None:
    context = stage_image_context(TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, tmp_path / "train")
    assert (context / USERCODE_DIR).is_dir()
    assert list((context / USERCODE_DIR).iterdir()) == []
    assert find_usercode(context) is None


def test_a_custom_models_image_context_carries_its_code(tmp_path: Path) -> None:
    model = load_model_file(_folder(tmp_path / "models") / "model.yaml")
    context = stage_image_context(TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, tmp_path / "train", model)
    assert (context / "trainer" / "main.py").is_file()
    assert find_usercode(context) == context / USERCODE_DIR
    assert (context / USERCODE_DIR / "model.py").read_bytes() == (FIXTURE / "model.py").read_bytes()


# --- the CLI says which code trains each model ----------------------------------------------------------


def test_config_check_shows_the_framework_and_where_the_code_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(REPO / "models" / "churn.yaml", models / "churn.yaml")
    folder = _folder(models)
    monkeypatch.delenv("HEADRACE_MODELS_DIR", raising=False)
    done = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["config", "check", "--models-dir", str(models)])
    assert done.exit_code == 0, done.output
    assert "ok churn: 9 columns, target churned, trainer xgboost (built in)" in done.stdout
    assert f"ok churn-centroid: 9 columns, target churned, trainer custom ({folder.resolve()}/model.py)" in (
        done.stdout
    )


def test_a_models_directory_of_folders_only_is_found_from_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEADRACE_MODELS_DIR", raising=False)
    _folder(tmp_path / "proj" / "models")
    deeper = tmp_path / "proj" / "src"
    deeper.mkdir()
    assert project.models_dir(start=deeper).path == tmp_path / "proj" / "models"


@pytest.mark.parametrize("name", ["json.py", "inference.py", "headrace.py"])
def test_a_file_that_would_hide_a_module_in_the_images_is_refused(tmp_path: Path, name: str) -> None:
    folder = _folder(tmp_path)
    (folder / name).write_text("X = 1\n")
    message = _error(folder / "model.yaml")
    assert name in message and "rename it" in message


def test_a_custom_models_own_hyperparameters_are_not_judged_by_xgboosts_rules(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    raw = _config(folder)
    # LightGBM's "no limit": XGBoost's max_depth must be >= 0, and the built-in trainer refuses it.
    raw["trainer"]["hyperparameters"] = {"max_depth": -1, "num_leaves": 31}
    model = load_model_file(_rewrite(folder, raw))
    from headrace.training_job import hyperparameters_for

    job = hyperparameters_for(model)
    assert job["max_depth"] == "-1" and job["num_leaves"] == "31"
    assert "num_round" not in job
    raw["trainer"]["framework"] = "xgboost"
    raw["trainer"].pop("entry_point", None)
    assert "max_depth" in _error(_rewrite(folder, raw))
