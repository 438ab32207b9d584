"""headrace.usercode: loading a model's own module, calling it, checking its scores, the fit() context."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from headrace.usercode import (
    MANIFEST,
    Context,
    UserCodeError,
    check_scores,
    find_usercode,
    load_usercode,
    user_hyperparameters,
)

GOOD = """\
def fit(train, validation, hyperparameters, context):
    return {"bias": 0.5}


def predict(model, features):
    return [model["bias"]] * len(features)


def save(model, directory):
    pass


def load(directory):
    raise ValueError("nothing saved")
"""


@pytest.fixture(autouse=True)
def _clean_imports() -> Iterator[None]:
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def usercode(
    root: Path, module: str = GOOD, requirements: str = "", entry_point: str = "churn_model.py"
) -> Path:
    """An image's usercode/ folder as stacks/assets.py stages it: module, requirements, manifest."""
    directory = root / "usercode"
    directory.mkdir()
    (directory / entry_point).write_text(module)
    (directory / "requirements.txt").write_text(requirements)
    digest = hashlib.sha256(module.encode()).hexdigest()
    manifest = {"model": "churn_x", "entry_point": entry_point, "sha256": digest}
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return directory


def reason(directory: Path) -> str:
    with pytest.raises(UserCodeError) as caught:
        load_usercode(directory)
    return caught.value.reason


def test_find_usercode_needs_the_manifest(tmp_path: Path) -> None:
    assert find_usercode(tmp_path) is None
    (tmp_path / "usercode").mkdir()
    assert find_usercode(tmp_path) is None  # the built-in images' empty folder
    (tmp_path / "usercode" / MANIFEST).write_text("{}")
    assert find_usercode(tmp_path) == tmp_path / "usercode"


def test_a_good_module_loads_and_its_functions_are_called(tmp_path: Path) -> None:
    user = load_usercode(usercode(tmp_path))
    assert user.model == "churn_x"
    assert user.call("predict", {"bias": 0.25}, [1, 2]) == [0.25, 0.25]


def test_an_exception_names_the_function_and_the_users_line(tmp_path: Path) -> None:
    user = load_usercode(usercode(tmp_path))
    with pytest.raises(UserCodeError) as caught:
        user.call("load", tmp_path)
    assert caught.value.reason == (
        "model 'churn_x': load() raised ValueError: nothing saved (churn_model.py, line 14)."
    )
    assert isinstance(caught.value.__cause__, ValueError)


def test_sys_exit_in_user_code_is_an_error_not_an_exit(tmp_path: Path) -> None:
    user = load_usercode(usercode(tmp_path, GOOD.replace("    pass", "    raise SystemExit(3)")))
    with pytest.raises(UserCodeError, match=r"save\(\) called sys.exit\(3\) \(churn_model.py, line 10\)"):
        user.call("save", {}, tmp_path)


def test_a_missing_function_is_named(tmp_path: Path) -> None:
    module = GOOD.replace("def save(model, directory):\n    pass\n", "save = 3\n")
    assert reason(usercode(tmp_path, module)) == (
        "model 'churn_x': churn_model.py defines save as a int, not the function save(model, directory); "
        "the module must define fit, predict, save, load (containers/train/CONTRACT.md)."
    )


def test_a_function_that_cannot_take_the_contracts_arguments_is_named(tmp_path: Path) -> None:
    module = GOOD.replace("def predict(model, features):", "def predict(features):")
    assert "predict() in churn_model.py cannot be called as predict(model, features)" in reason(
        usercode(tmp_path, module)
    )


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    assert reason(usercode(tmp_path, GOOD + "\nif True\n")).endswith(
        "does not import: SyntaxError: expected ':' (churn_model.py, line 16)."
    )


def test_a_missing_package_points_at_requirements(tmp_path: Path) -> None:
    found = reason(usercode(tmp_path, "import headrace_absent_pkg\n" + GOOD))
    assert "ModuleNotFoundError: No module named 'headrace_absent_pkg' (churn_model.py, line 1)" in found
    assert found.endswith("add headrace_absent_pkg to the model's requirements.txt.")


@pytest.mark.parametrize(
    ("requirements", "problem"),
    [
        (
            "numpy>=99\n",
            "requirement 'numpy>=99' (requirements.txt, line 1) is not met: numpy {numpy} is installed",
        ),
        (
            "# comment\n\nheadrace-absent-dist==1.0\n",
            "requirement 'headrace-absent-dist==1.0' (requirements.txt, line 3) is not met: "
            "headrace-absent-dist is not installed",
        ),
        ("numpy>=1 !!\n", "requirements.txt, line 1: 'numpy>=1 !!' is not a requirement"),
    ],
)
def test_an_unmet_requirement_is_named_with_its_line(tmp_path: Path, requirements: str, problem: str) -> None:
    numpy = importlib.metadata.version("numpy")
    assert problem.format(numpy=numpy) in reason(usercode(tmp_path, requirements=requirements))


def test_options_markers_and_met_requirements_pass(tmp_path: Path) -> None:
    requirements = (
        "--extra-index-url https://example.invalid/simple\n"
        "numpy>=1.20  # met\n"
        'headrace-absent-dist==1.0; python_version < "3.0"\n'
    )
    assert load_usercode(usercode(tmp_path, requirements=requirements)).model == "churn_x"


def test_an_entry_point_that_is_not_the_staged_one_is_refused(tmp_path: Path) -> None:
    directory = usercode(tmp_path)
    (directory / "churn_model.py").write_text(GOOD + "# edited after staging\n")
    assert "churn_model.py is not the file staged into the image" in reason(directory)


def test_a_broken_manifest_is_named(tmp_path: Path) -> None:
    directory = usercode(tmp_path)
    (directory / MANIFEST).write_text('{"model": "x"}')
    assert "user-code manifest" in reason(directory) and "KeyError" in reason(directory)


def test_binary_scores_are_float64_probabilities() -> None:
    scores = check_scores("m", [0.1, 1, 0], 3, "binary:logistic", None)
    assert scores.dtype == np.float64 and scores.tolist() == [0.1, 1.0, 0.0]


@pytest.mark.parametrize(
    ("scores", "objective", "num_class", "problem"),
    [
        (
            np.zeros((4, 2)),
            "binary:logistic",
            None,
            "predict() returned shape (4, 2); expected (4,) for objective binary:logistic "
            "(the probability of class 1); return the second column",
        ),
        (np.zeros((4, 1)), "reg:squarederror", None, "shape (4, 1); expected (4,)"),
        (np.zeros(3), "binary:logistic", None, "shape (3,); expected (4,)"),
        (np.zeros((4, 3)), "multi:softprob", 4, "shape (4, 3); expected (4, 4) for objective multi:softprob"),
        (np.zeros(4), "multi:softprob", None, "shape (4,); expected (4, k >= 2)"),
        ([0.1, math.nan, 0.2, math.inf], "reg:squarederror", None, "2 value(s) that are not finite"),
        (
            [0.1, 1.5, 0.2, -0.1],
            "binary:logistic",
            None,
            "2 value(s) outside [0, 1] (row 1: 1.5, row 3: -0.1)",
        ),
        (np.full((4, 2), 2.0), "multi:softprob", None, "outside [0, 1]"),
        (["a", "b", "c", "d"], "binary:logistic", None, "returned a list that is not an array of numbers"),
    ],
)
def test_bad_scores_name_predict_and_the_problem(
    scores: object, objective: str, num_class: int | None, problem: str
) -> None:
    with pytest.raises(UserCodeError) as caught:
        check_scores("churn_x", scores, 4, objective, num_class)
    assert caught.value.reason.startswith("model 'churn_x': predict() ")
    assert problem in caught.value.reason


def test_regression_scores_may_be_any_finite_number() -> None:
    assert check_scores("m", [-5.0, 1e9], 2, "reg:squarederror", None).tolist() == [-5.0, 1e9]


def test_user_hyperparameters_are_decoded_and_the_pipelines_keys_left_out() -> None:
    raw = {
        "target": "churned",
        "objective": "binary:logistic",
        "categorical": '{"region": ["north"]}',
        "sagemaker_program": "x",
        "num_round": "100",
        "learning_rate": "0.1",
        "early_stop": "true",
        "layers": "[64, 32]",
        "name": "wide net",
    }
    assert user_hyperparameters(raw) == {
        "num_round": 100,
        "learning_rate": 0.1,
        "early_stop": True,
        "layers": [64, 32],
        "name": "wide net",
    }


def _context(tmp_path: Path, metric: str, patience: int) -> Context:
    return Context(
        model="churn_x",
        objective="binary:logistic",
        metric=metric,
        classes=None,
        num_class=None,
        device="cpu",
        seed=0,
        checkpoints=tmp_path,
        patience=patience,
    )


def test_report_prints_the_metric_line_and_stops_after_patience(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = _context(tmp_path, "auc", patience=2)
    curve = [0.6, 0.7, 0.69, 0.7, 0.65]
    stops = [context.report(epoch, train=0.8, validation=value) for epoch, value in enumerate(curve)]
    assert stops == [False, False, False, True, True]
    assert context.best_epoch == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[0] train-auc=0.8; validation-auc=0.6;"
    assert lines[4] == "[4] train-auc=0.8; validation-auc=0.65;"


def test_report_minimizes_a_loss_and_never_stops_without_patience(tmp_path: Path) -> None:
    loss = _context(tmp_path, "logloss", patience=1)
    assert [loss.report(e, validation=v) for e, v in enumerate([0.5, 0.4, 0.45])] == [False, False, True]
    assert loss.best_epoch == 1
    endless = _context(tmp_path, "logloss", patience=0)
    assert not any(endless.report(e, validation=1.0 + e) for e in range(20))


def test_score_computes_the_gate_metric_through_the_trainers_scorer(tmp_path: Path) -> None:
    context = _context(tmp_path, "auc", patience=0)
    context.scorer = lambda labels, scores: float(np.mean(labels == (scores > 0.5)))
    assert context.score(np.array([1.0, 0.0]), [0.9, 0.2]) == 1.0
    with pytest.raises(UserCodeError, match="outside"):
        context.score(np.array([1.0, 0.0]), [2.0, 0.2])
