"""The inference container's smoke test at start, for both frameworks: the version's own test rows
(`model/smoke.json`, written by the trainer) must score here as they scored in training, or `serve` exits 1
with the reason before it listens, so /ping never answers and the endpoint never goes InService. An
artifact without smoke.json (trained before it existed) is served unchecked."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from headrace.encoding import model_input
from tests.unit.test_serving_custom_code import CELLS, expected_scores, layout, user_module

SERVE = Path(__file__).resolve().parents[2] / "containers" / "serve"
if str(SERVE) not in sys.path:
    sys.path.insert(0, str(SERVE))  # the container's import root, as its `serve` script sets

from inference import main as serve_main  # noqa: E402
from inference.model import Model  # noqa: E402
from inference.smoke import SmokeTestFailed, smoke_test  # noqa: E402

FEATURES = ["tenure", "region", "charges"]
CATEGORICAL = {"region": ["north", "south", "east"]}
OTHER_SCORES = "model 'churn': the smoke test on smoke.json failed: predict() gives other scores"


def smoke_rows(rows: list[list[Any]]) -> list[list[Any]]:
    """Cells as the trainer writes them: numbers as floats, categoricals as text, missing as null."""
    columns = {name: pd.Series([r[i] for r in rows], dtype=object) for i, name in enumerate(FEATURES)}
    frame = model_input(pd.DataFrame(columns), FEATURES, CATEGORICAL)
    return [
        [None if pd.isna(v) else (v if isinstance(v, str) else float(v)) for v in record]
        for record in frame.astype(object).itertuples(index=False)
    ]


def write_smoke(model: Path, rows: list[list[Any]], scores: Any) -> None:
    (model / "smoke.json").write_text(json.dumps({"rows": rows, "scores": np.asarray(scores).tolist()}))


def xgboost_model(root: Path) -> tuple[Path, list[list[Any]], np.ndarray[Any, Any]]:
    """A booster trained as the trainer trains (a frame from model_input, native categoricals), its
    features.json, and its own predictions for a few rows through the trainer's DMatrix."""
    generator = np.random.default_rng(7)
    cells = [
        [float(generator.integers(0, 72)), str(generator.choice(["north", "south", "east"])), float(v)]
        for v in generator.normal(60, 20, 200)
    ]
    columns = {name: pd.Series([r[i] for r in cells], dtype=object) for i, name in enumerate(FEATURES)}
    frame = model_input(pd.DataFrame(columns), FEATURES, CATEGORICAL)
    labels = (frame["tenure"] < 20).astype(float) * (frame["region"] == "north").astype(float)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(frame, label=labels, enable_categorical=True),
        num_boost_round=5,
    )
    model = root / "model"
    model.mkdir()
    booster.save_model(model / "model.json")
    described = {
        "features": FEATURES,
        "categorical": CATEGORICAL,
        "target": "y",
        "objective": "binary:logistic",
    }
    (model / "features.json").write_text(json.dumps(described))
    rows = smoke_rows(cells[:20])
    test = model_input(pd.DataFrame(rows, columns=FEATURES, dtype=object), FEATURES, CATEGORICAL)
    return model, rows, booster.predict(xgb.DMatrix(test, enable_categorical=True))


def test_an_xgboost_model_passes_on_its_own_recorded_scores(tmp_path: Path) -> None:
    model, rows, scores = xgboost_model(tmp_path)
    write_smoke(model, rows, scores)
    assert smoke_test(Model.load(model, environ={}), model) == 20


def test_a_custom_model_passes_on_its_own_recorded_scores(tmp_path: Path) -> None:
    model, program = layout(tmp_path, user_module())
    write_smoke(model, smoke_rows(CELLS), expected_scores(CELLS))
    assert smoke_test(Model.load(model, program_dir=program, environ={}), model) == len(CELLS)


def test_an_artifact_without_smoke_json_is_served_unchecked(tmp_path: Path) -> None:
    model, _, _ = xgboost_model(tmp_path)
    assert smoke_test(Model.load(model, environ={}), model) == 0


def test_the_fault_hook_does_not_fail_the_smoke_test(tmp_path: Path) -> None:
    # The rollback tests' broken model must still deploy, then fail its invocations.
    model, rows, scores = xgboost_model(tmp_path)
    write_smoke(model, rows, scores)
    described = json.loads((model / "features.json").read_text())
    (model / "features.json").write_text(json.dumps({**described, "fault": "5xx"}))
    assert smoke_test(Model.load(model, environ={}), model) == 20


def test_scores_that_differ_from_training_name_the_model_predict_and_the_rows(tmp_path: Path) -> None:
    model, rows, scores = xgboost_model(tmp_path)
    changed = scores.copy()
    changed[[3, 11]] += 0.01
    write_smoke(model, rows, changed)
    served = Model.load(model, environ={"HEADRACE_MODEL": "churn"})
    with pytest.raises(SmokeTestFailed) as failed:
        smoke_test(served, model)
    reason = failed.value.reason
    assert reason.startswith(OTHER_SCORES)
    assert "for 2 of its 20 rows (row 3: " in reason and "; row 11: " in reason


def test_a_custom_load_that_does_not_restore_the_model_fails_it(tmp_path: Path) -> None:
    model, program = layout(tmp_path, user_module())
    write_smoke(model, smoke_rows(CELLS), expected_scores(CELLS))
    (model / "user" / "weights.json").write_text(json.dumps({"w": [0.0, 0.0, 0.0], "fill": 0.0}))
    with pytest.raises(
        SmokeTestFailed, match=r"model 'churn_custom'.*load\(\) may not restore what save\(\)"
    ):
        smoke_test(Model.load(model, program_dir=program, environ={}), model)


def test_a_custom_predict_of_the_wrong_shape_fails_it_naming_predict(tmp_path: Path) -> None:
    model, program = layout(tmp_path, user_module(shape="(lambda p: np.stack([1 - p, p], axis=1))"))
    write_smoke(model, smoke_rows(CELLS), expected_scores(CELLS))
    with pytest.raises(
        SmokeTestFailed,
        match=r"^the smoke test on smoke.json failed: model 'churn_custom': predict\(\) returned shape",
    ):
        smoke_test(Model.load(model, program_dir=program, environ={}), model)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ('{"rows": [[1, "north", 2]]}', "the file is unreadable"),
        ('{"rows": [[1, "north", 2]], "scores": [0.5, 0.5]}', "it holds 1 row(s) and 2 score(s)"),
        ('{"rows": [[1, "north"]], "scores": [0.5]}', "its rows have 2 value(s); the model takes 3"),
        ('{"rows": [["ten", "north", 2]], "scores": [0.5]}', "its row 0, column 0 ('tenure'): 'ten' is not"),
    ],
)
def test_a_smoke_json_that_is_not_one_says_what_is_wrong(tmp_path: Path, document: str, problem: str) -> None:
    model, _, _ = xgboost_model(tmp_path)
    (model / "smoke.json").write_text(document)
    with pytest.raises(SmokeTestFailed) as failed:
        smoke_test(Model.load(model, environ={}), model)
    assert problem in failed.value.reason


def test_serve_exits_1_with_the_reason_before_listening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model, rows, scores = xgboost_model(tmp_path)
    write_smoke(model, rows, 1.0 - scores)
    monkeypatch.setenv("HEADRACE_OPT_ML", str(tmp_path))
    monkeypatch.setenv("HEADRACE_MODEL", "churn")
    monkeypatch.setattr(serve_main, "serve_forever", _never_listens)
    assert serve_main.main(["serve"]) == 1
    assert OTHER_SCORES in capsys.readouterr().err


async def _never_listens(*_: object, **__: object) -> None:
    raise AssertionError("serve listened although the smoke test failed")
