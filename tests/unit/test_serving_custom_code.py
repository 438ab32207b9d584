"""The inference container serving a model trained by its own code (`"framework": "custom"`): the user's
module from the image's `usercode/`, its `load()` on what `save()` wrote, its `predict()` on the frame the
trainer's `fit` saw for the same cells (single rows and batches, row and column encoders alike), its output
checked as the trainer checks it; and the faults a user's code can have, each named."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.encoding import model_input
from headrace.usercode import UserCodeError

SERVE = Path(__file__).resolve().parents[2] / "containers" / "serve"
if str(SERVE) not in sys.path:
    sys.path.insert(0, str(SERVE))  # the container's import root, as its `serve` script sets

from inference.model import Model, ModelFault  # noqa: E402
from inference.payload import csv_columns, encode  # noqa: E402

FEATURES = ["tenure", "region", "charges"]
CATEGORICAL = {"region": ["north", "south", "east"]}
# A user's module: refuses any frame that is not the training frame's shape (categoricals as Categorical
# with the declared categories, numerics float64), so a wrong frame fails the test rather than passing.
MODULE = """
import json
import numpy as np
import pandas as pd

CATEGORIES = ["north", "south", "east"]


def fit(train, validation, hyperparameters, context):
    raise NotImplementedError


def predict(model, features):
    assert list(features.columns) == ["tenure", "region", "charges"], list(features.columns)
    assert isinstance(features["region"].dtype, pd.CategoricalDtype), features.dtypes
    assert list(features["region"].cat.categories) == CATEGORIES
    assert features["tenure"].dtype == "float64" and features["charges"].dtype == "float64"
    region = features["region"].cat.codes.to_numpy().astype("float64")  # -1 for missing
    tenure = features["tenure"].fillna(model["fill"]).to_numpy()
    charges = features["charges"].fillna(0.0).to_numpy()
    z = model["w"][0] * tenure + model["w"][1] * region + model["w"][2] * charges
    return SHAPE(1.0 / (1.0 + np.exp(-z)))


def save(model, directory):
    (directory / "weights.json").write_text(json.dumps(model))


def load(directory):
    return json.loads((directory / "weights.json").read_text())
"""
WEIGHTS: dict[str, Any] = {"w": [0.05, -0.7, 0.01], "fill": 12.0}
CELLS: list[list[Any]] = [
    [3, "north", 20.5],
    [40, " south ", None],
    [None, "east", 99.0],
    ["7", "west", "1e2"],  # an unknown category is missing, as in training
    [0, None, "true"],
]


def user_module(body: str = MODULE, shape: str = "") -> str:
    return body.replace("SHAPE", shape)


def layout(tmp_path: Path, module: str, features: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """A model directory as the trainer writes it for a custom model, and an image's program directory
    carrying the user's code as stacks/assets.py stages it."""
    model = tmp_path / "model"
    (model / "user").mkdir(parents=True)
    (model / "user" / "weights.json").write_text(json.dumps(WEIGHTS))
    described = {
        "features": FEATURES,
        "categorical": CATEGORICAL,
        "target": "churned",
        "objective": "binary:logistic",
        "framework": "custom",
        "model": "churn_custom",
        "entry_point": "model.py",
        **(features or {}),
    }
    (model / "features.json").write_text(json.dumps(described))
    program = tmp_path / "program"
    code = program / "usercode"
    code.mkdir(parents=True)
    (code / "model.py").write_text(module)
    (code / "requirements.txt").write_text("")
    digest = hashlib.sha256(module.encode()).hexdigest()
    manifest = {"model": "churn_custom", "entry_point": "model.py", "sha256": digest}
    (code / "usercode.json").write_text(json.dumps(manifest))
    return model, program


def expected_scores(rows: list[list[Any]]) -> np.ndarray[Any, Any]:
    """The user's own predict on the frame the trainer builds for the same cells."""
    columns = {name: pd.Series([r[i] for r in rows], dtype=object) for i, name in enumerate(FEATURES)}
    frame = model_input(pd.DataFrame(columns), FEATURES, CATEGORICAL)
    region = frame["region"].cat.codes.to_numpy().astype("float64")
    z = (
        WEIGHTS["w"][0] * frame["tenure"].fillna(WEIGHTS["fill"]).to_numpy()
        + WEIGHTS["w"][1] * region
        + WEIGHTS["w"][2] * frame["charges"].fillna(0.0).to_numpy()
    )
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


@pytest.fixture
def served(tmp_path: Path) -> Model:
    model, program = layout(tmp_path, user_module())
    return Model.load(model, program_dir=program, environ={})


def test_a_custom_model_scores_single_rows_as_its_own_predict_does_on_the_training_frame(
    served: Model,
) -> None:
    assert served.runs_user_code and served.name == "churn_custom"
    for row in CELLS:
        scores = served.predict(served.encoder.encode([row]))
        assert scores.dtype == np.float64
        np.testing.assert_array_equal(scores, expected_scores([row]))


def test_a_custom_model_scores_json_and_csv_batches_as_its_own_predict_does(served: Model) -> None:
    body = json.dumps({"instances": CELLS}).encode()
    scores = served.predict(encode(body, "application/json", served.features, served.encoder))
    np.testing.assert_array_equal(scores, expected_scores(CELLS))
    csv = b"3,north,20.5\n40,south,\n,east,99\n7,west,1e2\n"
    columnar = csv_columns(csv, served.encoder)  # the batch transform's column-wise encoder
    assert columnar is not None
    expected = expected_scores([line.split(",") for line in csv.decode().splitlines()])
    np.testing.assert_array_equal(served.predict(columnar), expected)


def test_a_predict_of_the_wrong_shape_is_a_model_fault_naming_predict(tmp_path: Path) -> None:
    # Both class probabilities, as predict_proba gives them: the contract wants P(class 1) only.
    model, program = layout(tmp_path, user_module(shape="(lambda p: np.stack([1 - p, p], axis=1))"))
    served = Model.load(model, program_dir=program, environ={})
    with pytest.raises(ModelFault, match=r"model 'churn_custom': predict\(\) returned shape \(2, 2\)"):
        served.predict(served.encoder.encode(CELLS[:2]))


def test_a_predict_that_raises_is_a_model_fault_naming_the_line(tmp_path: Path) -> None:
    broken = user_module().replace("    region = ", "    raise KeyError('plan')\n    region = ")
    model, program = layout(tmp_path, broken)
    served = Model.load(model, program_dir=program, environ={})
    with pytest.raises(ModelFault, match=r"predict\(\) raised KeyError: 'plan' \(model.py, line \d+\)"):
        served.predict(served.encoder.encode(CELLS[:1]))


def test_a_load_that_raises_names_load_and_the_model(tmp_path: Path) -> None:
    model, program = layout(tmp_path, user_module())
    (model / "user" / "weights.json").unlink()
    with pytest.raises(UserCodeError, match=r"model 'churn_custom': load\(\) raised FileNotFoundError"):
        Model.load(model, program_dir=program, environ={})


def test_a_custom_model_in_an_image_without_its_code_says_which_image_to_deploy(tmp_path: Path) -> None:
    model, _ = layout(tmp_path, user_module())
    bare = tmp_path / "shared-image"
    bare.mkdir()
    with pytest.raises(UserCodeError, match=r"model 'churn_custom' was trained by its own code.*own serving"):
        Model.load(model, program_dir=bare, environ={})


def test_an_unmet_requirement_refuses_the_model_naming_it(tmp_path: Path) -> None:
    model, program = layout(tmp_path, user_module())
    (program / "usercode" / "requirements.txt").write_text("numpy>=999\n")
    with pytest.raises(UserCodeError, match=r"requirement 'numpy>=999'.*is not met: numpy \S+ is installed"):
        Model.load(model, program_dir=program, environ={})
