"""The CLI finds the user's project as git does: models/ and the local plane from the current directory
upward, a running plane from anywhere, and says which it uses; `model init` drafts a config from a sample."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner, Result

from headrace.cli import project
from headrace.cli.main import app
from headrace.cli.modelinit import draft_config
from headrace.config import DEFAULT_MODELS_DIR, load_model_file
from headrace.local.aws import PlaneCredentials
from headrace.local.plane_info import RUNTIME_FILE, PlaneInfo
from headrace.status import readable_reasons

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HEADRACE_MODELS_DIR", "HEADRACE_WORK_DIR", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the list of started planes
    monkeypatch.chdir(tmp_path)


def headrace(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


def a_project(root: Path, name: str = "churn") -> Path:
    models = root / "models"
    models.mkdir(parents=True)
    (models / f"{name}.yaml").write_text(
        (REPO / "models" / "churn.yaml").read_text().replace("name: churn\n", f"name: {name}\n")
    )
    return models


def a_running_plane(work: Path, models: Path, port: int = 4567) -> PlaneInfo:
    """A plane.json as a running plane writes it; this test's own pid makes it look alive."""
    info = PlaneInfo(
        pid=os.getpid(),
        port=port,
        endpoint=f"http://127.0.0.1:{port}",
        credentials=PlaneCredentials(access_key_id="AKIAEXAMPLE", secret_access_key="secret"),
        models_dir=str(models),
        started_at=float(port),
    )
    work.mkdir(parents=True, exist_ok=True)
    (work / RUNTIME_FILE).write_text(info.model_dump_json())
    return info


def test_models_are_found_from_a_subdirectory_upward(tmp_path: Path) -> None:
    models = a_project(tmp_path / "proj", "cancer")
    deeper = tmp_path / "proj" / "src" / "deep"
    deeper.mkdir(parents=True)
    found = project.models_dir(start=deeper)
    assert found.path == models
    assert found.how == "found from the current directory"


def test_without_a_models_directory_the_shipped_example_is_used_and_said() -> None:
    found = project.models_dir()
    assert found.path == DEFAULT_MODELS_DIR and "example" in found.how


def test_config_check_names_a_new_model_and_the_directory_it_read(tmp_path: Path) -> None:
    a_project(tmp_path, "cancer")
    done = headrace("config", "check")
    assert done.exit_code == 0, done.output
    assert "ok cancer" in done.stdout and "ok churn" not in done.stdout
    assert str(tmp_path / "models") in done.stderr


def test_local_env_finds_a_plane_started_elsewhere(tmp_path: Path) -> None:
    models = a_project(tmp_path / "proj")
    info = a_running_plane(tmp_path / "proj" / ".headrace", models)
    project.record(tmp_path / "proj" / ".headrace")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    done = headrace("local", "env")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert f"export AWS_ENDPOINT_URL={info.endpoint}" in lines
    assert "export AWS_DEFAULT_REGION=us-east-1" in lines
    assert str(tmp_path / "proj" / ".headrace") in done.stderr


def test_local_env_without_any_plane_exits_3_with_a_hint() -> None:
    done = headrace("local", "env")
    assert done.exit_code == 3
    assert "no local plane is running" in done.stderr


def test_the_nearest_plane_upward_wins_over_the_last_one_started(tmp_path: Path) -> None:
    near = a_running_plane(tmp_path / "a" / ".headrace", a_project(tmp_path / "a"), port=1111)
    far = a_running_plane(tmp_path / "b" / ".headrace", a_project(tmp_path / "b"), port=2222)
    project.record(tmp_path / "b" / ".headrace")
    plane = project.find_plane(start=tmp_path / "a")
    assert plane is not None and plane.info.endpoint == near.endpoint
    plane = project.find_plane(start=tmp_path)
    assert plane is not None and plane.info.endpoint == far.endpoint


def test_state_commands_read_the_running_planes_models_not_the_ones_nearby(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.cli import target

    plane_models = a_project(tmp_path / "proj", "cancer")
    a_running_plane(tmp_path / "proj" / ".headrace", plane_models)
    project.record(tmp_path / "proj" / ".headrace")
    a_project(tmp_path / "other")  # churn only
    os.chdir(tmp_path / "other")
    resolved = target.resolve()
    assert [m.name for m in resolved.models] == ["cancer"]
    assert resolved.endpoint == "http://127.0.0.1:4567"


def test_a_dead_planes_entry_is_forgotten(tmp_path: Path) -> None:
    work = tmp_path / "gone" / ".headrace"
    a_running_plane(work, a_project(tmp_path / "gone"))
    info = PlaneInfo.model_validate_json((work / RUNTIME_FILE).read_text())
    (work / RUNTIME_FILE).write_text(info.model_copy(update={"pid": 2**22 + 7}).model_dump_json())
    project.record(work)
    assert project.recorded_planes() == []
    assert not any(project.registry_dir().iterdir())


def _sample(rows: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mean radius": [10.5 + i % 7 for i in range(rows)],
            "visits": [i % 9 for i in range(rows)],
            "smoker": ["yes" if i % 3 else "no" for i in range(rows)],
            "site": [["north", "south", None][i % 3] for i in range(rows)],
            "notes": [f"free text {i}" for i in range(rows)],
            "diagnosis": ["M" if i % 2 else "B" for i in range(rows)],
        }
    )


def test_model_init_drafts_types_ranges_categories_and_target() -> None:
    config = draft_config(_sample(), "cancer", "diagnosis", "sample.csv")
    columns = {c["name"]: c for c in config["schema"]["columns"]}
    assert columns["mean radius"] == {"name": "mean radius", "type": "float", "min": 9.9, "max": 17.1}
    assert columns["visits"] == {"name": "visits", "type": "integer", "min": 0, "max": 9}
    assert columns["smoker"]["type"] == "boolean"
    assert columns["site"] == {
        "name": "site",
        "type": "category",
        "categories": ["north", "south"],
        "nullable": True,
    }
    assert columns["notes"]["type"] == "string"
    assert columns["diagnosis"]["categories"] == ["B", "M"]
    assert (config["schema"]["target"], config["trainer"]["objective"]) == ("diagnosis", "binary:logistic")


def test_model_init_writes_a_config_that_validates(tmp_path: Path) -> None:
    _sample().to_csv(tmp_path / "sample.csv", index=False)
    done = headrace("model", "init", "cancer", "--from", "sample.csv", "--target", "diagnosis")
    assert done.exit_code == 0, done.output
    model = load_model_file(tmp_path / "models" / "cancer.yaml")
    assert model.data.target == "diagnosis" and len(model.data.columns) == 6
    again = headrace("model", "init", "cancer", "--from", "sample.csv")
    assert again.exit_code == 2 and "--force" in again.stderr


def test_a_regression_target_drafts_rmse() -> None:
    frame = pd.DataFrame({"x": [float(i) for i in range(50)], "price": [i * 1.5 for i in range(50)]})
    config = draft_config(frame, "prices", None, "s.csv")
    assert config["schema"]["target"] == "price"
    assert (config["trainer"]["objective"], config["gate"]["metric"]) == ("reg:squarederror", "rmse")


class ReasonBucket:
    def __init__(self, document: dict[str, Any]) -> None:
        self.body = json.dumps(document).encode()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.body)}


def test_status_reads_the_reasons_people_read_from_reason_json() -> None:
    document = {"problems": [{"rule": "type", "message": "row 3: 'abc' in 'mean radius' is not a number"}]}
    reasons = readable_reasons(ReasonBucket(document), "bucket", "m/quarantine/x/reason.json")
    assert reasons == ["row 3: 'abc' in 'mean radius' is not a number"]


def test_info_json_help_and_yaml_round_trip_of_a_draft_keep_spaces_in_names(tmp_path: Path) -> None:
    _sample().to_csv(tmp_path / "s.csv", index=False)
    headrace("model", "init", "cancer", "--from", "s.csv")
    raw = yaml.safe_load((tmp_path / "models" / "cancer.yaml").read_text())
    assert raw["schema"]["columns"][0]["name"] == "mean radius"


def test_test_fraction_sizes_the_held_out_split_and_defaults_to_validations() -> None:
    import numpy as np

    from headrace.config import TrainerConfig
    from headrace.training.splits import assign

    strata = np.zeros(1000, dtype=np.int64)
    default = np.bincount(assign(strata, 0.2, seed=1), minlength=3)
    assert default.tolist() == [600, 200, 200]
    assert np.array_equal(assign(strata, 0.2, seed=1), assign(strata, 0.2, seed=1, test_fraction=0.2))
    assert np.bincount(assign(strata, 0.1, seed=1, test_fraction=0.3)).tolist() == [600, 100, 300]
    assert TrainerConfig(test_fraction=0.3).held_out_fraction == 0.3
    with pytest.raises(ValueError, match="test_fraction"):
        TrainerConfig(validation_fraction=0.5, test_fraction=0.5)
