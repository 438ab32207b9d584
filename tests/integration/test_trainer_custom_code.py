"""A model's own training code through the training container (containers/train/CONTRACT.md).

Each test writes a model folder (model.yaml from the churn-centroid fixture, a model.py of its own),
stages the training image's build context exactly as the stacks do (stacks.assets.stage_image_context,
with the model's usercode/ and its manifest), lays out an /opt/ml tree and runs the staged `train`, as
the local plane runs the image. Good code trains end to end; broken code fails the job with a reason
naming the model, the function and the problem, and leaves model/ empty.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.config import ModelConfig, load_model_file
from headrace.encoding import RowEncoder, frame_from_codes
from headrace.usercode import load_usercode
from stacks.assets import TRAIN_IMAGE_FILES, TRAIN_IMAGE_SOURCE, stage_image_context
from tests.integration.test_train_container import ROWS, SPLITS, TRAIN, Run, lay_out, train

REPO = Path(__file__).resolve().parents[2]
FIXTURE_YAML = REPO / "tests" / "support" / "custom_models" / "churn-centroid" / "model.yaml"
TEST_ROWS = int(ROWS * SPLITS["test"])

# Nearest centroids on the numeric features: numpy only, a few milliseconds to fit.
CENTROIDS = '''"""Nearest centroids on the numeric features (a test module)."""

import json

import numpy as np


def _matrix(features, means):
    return np.column_stack([features[n].astype("float64").fillna(m) for n, m in means.items()])


def fit(train, validation, hyperparameters, context):
    numeric = train.features.select_dtypes("number")
    means = {n: float(numeric[n].mean()) for n in numeric.columns}
    matrix = _matrix(train.features, means)
    scale = matrix.std(axis=0) + 1e-9
    model = {
        "means": means,
        "scale": scale.tolist(),
        "positive": (matrix[train.labels == 1].mean(axis=0) / scale).tolist(),
        "negative": (matrix[train.labels == 0].mean(axis=0) / scale).tolist(),
    }
    context.log("hyperparameters " + json.dumps(hyperparameters, sort_keys=True))
    context.log(f"device {context.device} seed {context.seed} classes {context.classes}")
    return model


def predict(model, features):
    matrix = _matrix(features, model["means"]) / np.asarray(model["scale"])
    to_negative = np.linalg.norm(matrix - np.asarray(model["negative"]), axis=1)
    to_positive = np.linalg.norm(matrix - np.asarray(model["positive"]), axis=1)
    margin = to_negative - to_positive
    return 1.0 / (1.0 + np.exp(-margin))


def save(model, directory):
    (directory / "centroids.json").write_text(json.dumps(model))


def load(directory):
    return json.loads((directory / "centroids.json").read_text())
'''

# A scikit-learn pipeline on every feature (categoricals one-hot), reported once through context.score.
SKLEARN = """import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def _objects(features):
    return features.astype({c: object for c in features.columns if features[c].dtype == "category"})


def fit(train, validation, hyperparameters, context):
    categorical = [c for c in train.features.columns if train.features[c].dtype == "category"]
    numeric = [c for c in train.features.columns if c not in categorical]
    columns = ColumnTransformer([
        ("categories", make_pipeline(SimpleImputer(strategy="constant", fill_value="?"),
                                     OneHotEncoder(handle_unknown="ignore")), categorical),
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
    ])
    model = make_pipeline(columns, LogisticRegression(max_iter=500, random_state=context.seed))
    model.fit(_objects(train.features), train.labels)
    context.report(
        0,
        train=context.score(train.labels, predict(model, train.features)),
        validation=context.score(validation.labels, predict(model, validation.features)),
    )
    return model


def predict(model, features):
    return model.predict_proba(_objects(features))[:, 1]


def save(model, directory):
    joblib.dump(model, directory / "pipeline.joblib")


def load(directory):
    return joblib.load(directory / "pipeline.joblib")
"""

# Reports a fixed validation curve (best at epoch 3): early stopping must end it at 3 + patience.
EARLY_STOPPING = CENTROIDS.replace(
    "    return model\n\n\ndef predict",
    """    for epoch in range(100):
        if context.report(epoch, train=0.9, validation=0.5 + 0.1 * min(epoch, 3) - 0.01 * max(epoch - 3, 0)):
            break
    model["epochs"] = epoch + 1
    return model


def predict""",
)


def model_folder(root: Path, name: str, module: str, requirements: str = "") -> ModelConfig:
    """models/<name>/: model.yaml (the churn-centroid fixture's, renamed), model.py, requirements.txt."""
    folder = root / "models" / name
    folder.mkdir(parents=True)
    config = (
        FIXTURE_YAML.read_text()
        .replace("name: churn-centroid", f"name: {name}")
        .replace("gate:\n  metric: auc\n", "gate:\n  metric: auc\n  slice_by: [region]\n")
    )
    assert "slice_by: [region]" in config
    (folder / "model.yaml").write_text(config)
    (folder / "model.py").write_text(module)
    (folder / "requirements.txt").write_text(requirements)
    return load_model_file(folder / "model.yaml")


def custom_train(root: Path, model: ModelConfig, **overrides: str) -> Run:
    """Stage the model's training image context, lay out /opt/ml, run the staged `train`."""
    program = stage_image_context(TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, root / "program", model)
    opt_ml = lay_out(root / "opt_ml", model, overrides)
    return train(opt_ml, program / "train")


def champion_channel(root: Path, model_dir: Path) -> None:
    """The champion channel as Prepare fills it: the champion's model.tar.gz, members at its root."""
    directory = root / "input" / "data" / "champion"
    directory.mkdir(parents=True)
    with tarfile.open(directory / "model.tar.gz", "w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("custom")
    run = custom_train(root, model_folder(root, "churn-sk", SKLEARN, "scikit-learn>=1.5\njoblib\n"))
    assert run.code == 0, run.output
    return run


def test_a_custom_run_writes_the_model_directory(good_run: Run) -> None:
    assert sorted(p.name for p in good_run.model.iterdir()) == [
        "evaluation.json",
        "features.json",
        "profile.json",
        "smoke.json",
        "user",
    ]
    assert (good_run.model / "user" / "pipeline.joblib").is_file()
    assert not (good_run.root / "output" / "failure").exists()


def test_the_evaluation_has_metrics_and_slices_of_the_users_predictions(good_run: Run) -> None:
    evaluation = good_run.json("evaluation.json")
    assert evaluation["framework"] == "custom"
    assert evaluation["device"] == "cpu"
    assert evaluation["metrics"]["auc"] > 0.7
    assert set(evaluation["metrics"]) == {"auc", "logloss", "accuracy", "rows"}
    assert evaluation["metrics"]["rows"] == TEST_ROWS
    regions = evaluation["slices"]["region"]
    assert list(regions) == ["north", "south", "east", "west"]
    assert sum(s["rows"] for s in regions.values()) == TEST_ROWS
    assert evaluation["best_epoch"] == 0
    (test,) = re.findall(r"test-auc=([0-9.eE+-]+);", good_run.output)
    assert float(test) == pytest.approx(evaluation["metrics"]["auc"], rel=1e-5)
    assert re.search(r"^\[0\] train-auc=[0-9.]+; validation-auc=[0-9.]+;$", good_run.output, re.M)


def test_features_json_names_the_code_that_serving_loads(good_run: Run) -> None:
    features = good_run.json("features.json")
    manifest = json.loads((good_run.root.parent / "program" / "usercode" / "usercode.json").read_text())
    assert features["framework"] == "custom"
    assert features["model"] == "churn-sk" == manifest["model"]
    assert features["entry_point"] == "model.py"
    assert features["code_sha256"] == manifest["sha256"]
    assert features["objective"] == "binary:logistic"
    assert features["categorical"]["region"] == ["north", "south", "east", "west"]
    assert (good_run.model / "profile.json").stat().st_size > 0


def test_smoke_json_scores_are_the_saved_models_through_servings_encoding(good_run: Run) -> None:
    features = good_run.json("features.json")
    smoke = good_run.json("smoke.json")
    user = load_usercode(good_run.root.parent / "program" / "usercode")
    model = user.call("load", good_run.model / "user")
    matrix = RowEncoder.of(features["features"], features["categorical"]).encode(smoke["rows"])
    frame = frame_from_codes(matrix, features["features"], features["categorical"])
    scores = np.asarray(user.call("predict", model, frame))
    assert len(smoke["rows"]) == 20
    assert np.asarray(smoke["scores"]) == pytest.approx(scores, rel=1e-9, abs=1e-12)
    assert len(set(smoke["scores"])) > 1


def test_fit_gets_its_hyperparameters_decoded_and_the_context(tmp_path: Path) -> None:
    model = model_folder(tmp_path, "centroids", CENTROIDS)
    run = custom_train(tmp_path, model, tag='"a b"', flag="true")
    assert run.code == 0, run.output
    (line,) = re.findall(r"^\[centroids\] hyperparameters (.*)$", run.output, re.M)
    assert json.loads(line) == {
        "early_stopping_rounds": 10,
        "flag": True,
        "tag": "a b",
        "temperature": 1.0,
    }
    assert f"[centroids] device cpu seed {model.trainer.seed} classes None" in run.output


def test_early_stopping_through_context_report(tmp_path: Path) -> None:
    model = model_folder(tmp_path, "patient", EARLY_STOPPING)
    run = custom_train(tmp_path, model, early_stopping_rounds="4")
    assert run.code == 0, run.output
    epochs = [int(e) for e in re.findall(r"^\[(\d+)\] train-auc=0\.9; validation-auc=", run.output, re.M)]
    assert epochs == list(range(8))  # best at 3, then 4 epochs without a better one
    assert run.json("evaluation.json")["best_epoch"] == 3
    saved = json.loads((run.model / "user" / "centroids.json").read_text())
    assert saved["epochs"] == 8


def _without_function(name: str) -> Callable[[str], str]:
    return lambda text: re.sub(rf"\ndef {name}\(.*?(?=\n\n\n|\Z)", "", text, flags=re.S)


def _numpy() -> str:
    return importlib.metadata.version("numpy")


PROBABILITY = "    return 1.0 / (1.0 + np.exp(-margin))\n"
# `def broken(:` appended after a blank line.
SYNTAX_LINE = CENTROIDS.count("\n") + 2
BROKEN: dict[str, tuple[Callable[[str], str], str, list[str]]] = {
    "missing function": (_without_function("load"), "", ["has no function load(directory)"]),
    "fit raises": (
        lambda t: t.replace(
            "    numeric = train", '    raise ValueError("too few rows")\n    numeric = train'
        ),
        "",
        ["fit() raised ValueError: too few rows (model.py, line 13)"],
    ),
    "predict returns two columns": (
        lambda t: t.replace(
            PROBABILITY, "    p = 1.0 / (1.0 + np.exp(-margin))\n    return np.c_[1 - p, p]\n"
        ),
        "",
        [f"predict() returned shape ({TEST_ROWS}, 2); expected ({TEST_ROWS},)", "[:, 1]"],
    ),
    "predict returns NaN": (
        lambda t: t.replace(PROBABILITY, "    return np.where(margin > 0, np.nan, 0.5)\n"),
        "",
        ["predict() returned", "not finite numbers"],
    ),
    "binary score outside [0, 1]": (
        lambda t: t.replace(PROBABILITY, "    return margin\n"),
        "",
        ["predict() returned", "outside [0, 1]", "binary:logistic takes probabilities"],
    ),
    "predict raises": (
        lambda t: t.replace(PROBABILITY, '    return model["missing"]\n'),
        "",
        ["predict() raised KeyError: 'missing' (model.py, line"],
    ),
    "syntax error": (
        lambda t: t + "\ndef broken(:\n    pass\n",
        "",
        ["SyntaxError", f"(model.py, line {SYNTAX_LINE})"],
    ),
    "import of a missing package": (
        lambda t: "import headrace_no_such_package\n" + t,
        "",
        ["model.py does not import: ModuleNotFoundError", "headrace_no_such_package", "requirements.txt"],
    ),
    "unmet requirement": (
        lambda t: t,
        "numpy>=99\n",
        ["requirement 'numpy>=99'", "is not met", "numpy {numpy} is installed"],
    ),
    "fit returns None": (
        lambda t: t.replace("    return model\n", "    return None\n"),
        "",
        ["fit() returned None"],
    ),
    "save writes nothing": (
        lambda t: t.replace('    (directory / "centroids.json").write_text(json.dumps(model))', "    pass"),
        "",
        ["save() wrote nothing"],
    ),
    "load changes the model": (
        lambda t: t.replace(
            '    return json.loads((directory / "centroids.json").read_text())',
            '    model = json.loads((directory / "centroids.json").read_text())\n'
            '    model["scale"] = [2 * s for s in model["scale"]]\n'
            "    return model",
        ),
        "",
        ["save() and load() do not give back the trained model", "differ on"],
    ),
    "fit takes too few parameters": (
        lambda t: t.replace("def fit(train, validation, hyperparameters, context):", "def fit(train):"),
        "",
        ["fit() in model.py cannot be called as fit(train, validation, hyperparameters, context)"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_code_fails_naming_the_model_function_and_problem(tmp_path: Path, case: str) -> None:
    edit, requirements, expected = BROKEN[case]
    module = edit(CENTROIDS)
    assert module != CENTROIDS or requirements, "the breakage must change something"
    run = custom_train(tmp_path, model_folder(tmp_path, "broken", module, requirements))
    assert run.code == 1, run.output
    failure = run.failure
    assert failure.startswith("model 'broken': "), failure
    for fragment in expected:
        assert fragment.format(numpy=_numpy()) in failure, failure
    assert "\n" not in failure.strip()
    assert not run.model.exists() or not any(run.model.iterdir())


def test_a_custom_champion_is_scored_with_the_current_load_and_predict(tmp_path: Path) -> None:
    first = custom_train(tmp_path / "a", model_folder(tmp_path / "a", "centroids", CENTROIDS))
    assert first.code == 0, first.output
    model = model_folder(tmp_path / "b", "centroids", CENTROIDS)
    program = stage_image_context(TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, tmp_path / "b" / "program", model)
    root = lay_out(tmp_path / "b" / "opt_ml", model)
    champion_channel(root, first.model)
    run = train(root, program / "train")
    assert run.code == 0, run.output
    champion = run.json("evaluation.json")["champion"]
    own = first.json("evaluation.json")["metrics"]
    assert champion["rows"] == own["rows"] == TEST_ROWS
    assert champion["metrics"] == pytest.approx({k: v for k, v in own.items() if k != "rows"})


def test_a_champion_that_does_not_load_is_skipped_not_a_failed_run(tmp_path: Path) -> None:
    first = custom_train(tmp_path / "a", model_folder(tmp_path / "a", "centroids", CENTROIDS))
    assert first.code == 0, first.output
    (first.model / "user" / "centroids.json").write_text("not json")
    model = model_folder(tmp_path / "b", "centroids", CENTROIDS)
    program = stage_image_context(TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, tmp_path / "b" / "program", model)
    root = lay_out(tmp_path / "b" / "opt_ml", model)
    champion_channel(root, first.model)
    run = train(root, program / "train")
    assert run.code == 0, run.output
    evaluation = run.json("evaluation.json")
    assert "champion" not in evaluation
    assert evaluation["champion_skipped"].startswith("model 'centroids': load() raised JSONDecodeError")


def test_an_xgboost_champion_is_scored_in_a_custom_run_and_a_custom_one_skipped_in_an_xgboost_run(
    tmp_path: Path, example_model: ModelConfig
) -> None:
    builtin = train(lay_out(tmp_path / "xgb", example_model, {"num_round": "5"}))
    assert builtin.code == 0, builtin.output
    custom = custom_train(tmp_path / "a", model_folder(tmp_path / "a", "centroids", CENTROIDS))
    assert custom.code == 0, custom.output

    model = model_folder(tmp_path / "b", "centroids", CENTROIDS)
    program = stage_image_context(TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, tmp_path / "b" / "program", model)
    root = lay_out(tmp_path / "b" / "opt_ml", model)
    champion_channel(root, builtin.model)
    run = train(root, program / "train")
    assert run.code == 0, run.output
    champion = run.json("evaluation.json")["champion"]
    assert champion["rows"] == TEST_ROWS
    assert champion["metrics"]["auc"] > 0.5

    root = lay_out(tmp_path / "c" / "opt_ml", example_model, {"num_round": "5"})
    champion_channel(root, custom.model)
    run = train(root, TRAIN)
    assert run.code == 0, run.output
    skipped: Any = run.json("evaluation.json")["champion_skipped"]
    assert "framework custom" in skipped and "'centroids'" in skipped


def test_smoke_rows_read_back_as_the_test_rows(good_run: Run) -> None:
    features = good_run.json("features.json")
    smoke = good_run.json("smoke.json")
    test = pd.read_csv(good_run.root / "input" / "data" / "test" / "data.csv")
    first = test[features["features"]].iloc[:20].astype(object).where(test.iloc[:20].notna(), None)
    assert smoke["rows"] == first.to_numpy().tolist()
