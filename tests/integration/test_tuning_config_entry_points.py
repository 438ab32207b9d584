"""A bad `trainer.tuning` stops each way in: `headrace config check`, the CDK app's synth (app.py) and
`headrace local up` all load the models through load_models, and each says which file and field is wrong,
with its own exit status, before anything is built or started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from headrace.cli.main import app
from headrace.cli.output import EXIT_BAD_INPUT

REPO = Path(__file__).resolve().parents[2]
# app.py's status for an invalid model config.
EXIT_INVALID_CONFIG = 2
PROBLEM = "trainer.tuning.max_parallel_jobs: 4 is greater than max_jobs (3)"


def _models(directory: Path, tuning: dict[str, Any]) -> Path:
    raw = yaml.safe_load((REPO / "models" / "churn.yaml").read_text())
    raw["trainer"]["hyperparameters"] = {}
    raw["trainer"]["tuning"] = tuning
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "churn.yaml").write_text(yaml.safe_dump(raw))
    return directory


@pytest.fixture
def bad_models(tmp_path: Path) -> Path:
    return _models(
        tmp_path / "models",
        {"max_jobs": 3, "max_parallel_jobs": 4, "ranges": {"eta": {"min": 0.1, "max": 0.5}}},
    )


def _run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            **env,
        },
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_config_check_refuses_a_bad_tuning_section_by_field(bad_models: Path) -> None:
    done = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["config", "check", "--models-dir", str(bad_models)])
    assert done.exit_code == EXIT_BAD_INPUT, done.output
    assert "churn.yaml" in done.stderr and PROBLEM in done.stderr


def test_config_check_accepts_a_tuned_model(tmp_path: Path) -> None:
    models = _models(tmp_path / "models", {"max_jobs": 6, "ranges": {"eta": {"min": 0.05, "max": 0.5}}})
    done = CliRunner().invoke(app, ["config", "check", "--models-dir", str(models)])
    assert done.exit_code == 0, done.output
    assert "ok churn" in done.stdout


def test_synth_refuses_a_bad_tuning_section_before_building_anything(
    bad_models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cdk.out"
    done = _run(
        str(REPO / "app.py"), env={"HEADRACE_MODELS_DIR": str(bad_models), "CDK_OUTDIR": str(out)}, cwd=REPO
    )
    assert done.returncode == EXIT_INVALID_CONFIG, done.stderr
    assert PROBLEM in done.stderr and "churn.yaml" in done.stderr
    assert not (out / "manifest.json").exists()


def test_local_up_refuses_a_bad_tuning_section_and_starts_no_plane(bad_models: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    done = _run(
        "-m",
        "headrace.cli.main",
        "local",
        "up",
        "--models-dir",
        str(bad_models),
        "--work-dir",
        str(work),
        env={"XDG_STATE_HOME": str(tmp_path / "state"), "COLUMNS": "300"},
        cwd=tmp_path,
    )
    assert done.returncode == EXIT_BAD_INPUT, done.stdout + done.stderr
    assert PROBLEM in done.stderr
    assert not (work / "cdk.out" / "manifest.json").exists()
