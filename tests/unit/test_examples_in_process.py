"""The shipped examples of your own training code (examples/models/), run in process as the trainer runs them:
each folder's config read by `load_model_file`, its code staged as the images carry it (`stage_usercode`),
loaded by `load_usercode` (its requirements.txt checked against this venv, so the pins are the versions the
tests ran with), called through `UserCode.call` on data from `headrace.datagen` encoded by the trainer's
own functions, with a `Context` whose metric is the evaluation's. Each learns churn well above chance,
gives back the same predictions after save then load, and scores any row the serving side may send."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.config import ModelConfig, load_model_file
from headrace.datagen import generate
from headrace.training_job import Hyperparameters, hyperparameters_for
from headrace.usercode import (
    Context,
    Dataset,
    UserCode,
    UserCodeError,
    check_scores,
    load_usercode,
    user_hyperparameters,
)
from stacks.assets import stage_usercode

TRAIN = Path(__file__).resolve().parents[2] / "containers" / "train"
if str(TRAIN) not in sys.path:
    sys.path.insert(0, str(TRAIN))  # the container's import root, as its `train` script sets

from trainer import data, evaluate  # noqa: E402
from trainer.device import choose_user_device  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"
# As the local plane runs training containers (headrace/local/sagemaker/containers.py): LightGBM's OpenMP
# threads busy-wait otherwise, 20-40x slower on a shared machine. Read when libgomp loads, with lightgbm.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Frameworks in the dev dependencies (pyproject.toml); torch is the user's to install (README).
IN_MAKE_TEST = ["churn-sklearn", "churn-lightgbm"]
ROWS = {"train": 3000, "validation": 1000, "test": 2000}
# The generated churn rule is learnable: the built-in XGBoost model reaches about 0.89 on it.
GOOD_AUC = 0.85


class Run:
    """One example's fit on fresh data, with what the trainer would give it."""

    def __init__(self, name: str, tmp_path: Path, **overrides: Any) -> None:
        self.config: ModelConfig = load_model_file(EXAMPLES / name / "model.yaml")
        self.user: UserCode = load_usercode(stage_usercode(self.config, tmp_path / "usercode"))
        raw = hyperparameters_for(self.config)
        self.hp = Hyperparameters.from_strings(raw)
        self.hyperparameters = user_hyperparameters(raw) | overrides
        frames = {
            split: generate(self.config, rows, seed=seed)
            for seed, (split, rows) in enumerate(ROWS.items(), start=11)
        }
        self.encoding = data.plan_encoding(frames["train"], self.hp)
        self.splits = {
            split: Dataset(
                data.features(frame, self.encoding), data.labels(frame, split, self.encoding, self.hp)
            )
            for split, frame in frames.items()
        }
        self.checkpoints = tmp_path / "checkpoints"
        self.checkpoints.mkdir(parents=True)

    def context(self) -> Context:
        return Context(
            model=self.config.name,
            objective=self.hp.objective,
            metric=self.hp.metric,
            classes=None,
            num_class=None,
            # "cuda" where a GPU is visible, as the trainer decides: the torch example then trains there.
            device="cuda" if choose_user_device(self.hp.device).name == "cuda" else "cpu",
            seed=self.hp.seed,
            checkpoints=self.checkpoints,
            patience=int(self.hyperparameters.get("early_stopping_rounds", 0)),
            scorer=partial(evaluate.score, self.hp.objective, self.hp.metric),
        )

    def fit(self, context: Context | None = None) -> Any:
        split = self.splits
        context = context or self.context()
        return self.user.call("fit", split["train"], split["validation"], self.hyperparameters, context)

    def predict(self, model: Any, features: pd.DataFrame | None = None) -> np.ndarray[Any, Any]:
        frame = self.splits["test"].features if features is None else features
        scores = self.user.call("predict", model, frame.copy())
        return check_scores(self.config.name, scores, len(frame), self.hp.objective, None)

    def auc(self, scores: np.ndarray[Any, Any]) -> float:
        value = evaluate.score("binary:logistic", "auc", self.splits["test"].labels, scores)
        assert value is not None
        return value


def _missing_everywhere(run: Run) -> pd.DataFrame:
    """Rows the serving side may send: every feature missing, and every category unseen (also missing)."""
    test = run.splits["test"].features
    blank = test.iloc[:2].copy()
    for column in blank.columns:
        blank[column] = np.nan if not isinstance(test[column].dtype, pd.CategoricalDtype) else None
    return blank.astype(test.dtypes.to_dict())


@dataclass(frozen=True)
class Trained:
    run: Run
    model: Any
    context: Context
    reported: list[int]  # the epochs fit() reported, in order


@pytest.fixture(scope="module", params=IN_MAKE_TEST)
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Each example fitted once with its own hyperparameters (fits take seconds on a shared machine)."""
    run = Run(request.param, tmp_path_factory.mktemp(request.param))
    context = run.context()
    reported: list[int] = []
    report = context.report

    def recorded(epoch: int, **scores: Any) -> bool:
        reported.append(epoch)
        return report(epoch, **scores)

    context.report = recorded  # type: ignore[method-assign]
    return Trained(run, run.fit(context), context, reported)


def test_example_learns_churn_well_above_chance(trained: Trained) -> None:
    assert trained.run.auc(trained.run.predict(trained.model)) > GOOD_AUC


def test_example_reports_each_epoch_once_in_order(trained: Trained) -> None:
    assert trained.reported == list(range(len(trained.reported)))
    assert trained.context.best_epoch is not None


def test_example_loads_back_what_it_saved(trained: Trained, tmp_path: Path) -> None:
    run = trained.run
    run.user.call("save", trained.model, tmp_path)
    loaded = run.user.call("load", tmp_path)
    np.testing.assert_allclose(run.predict(loaded), run.predict(trained.model), rtol=0, atol=1e-12)


def test_example_scores_rows_with_every_feature_missing(trained: Trained) -> None:
    scores = trained.run.predict(trained.model, _missing_everywhere(trained.run))
    assert scores.shape == (2,)  # and check_scores found them finite probabilities


def test_lightgbm_stops_early_and_keeps_its_best_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A learning rate this high overfits within a few dozen rounds: validation stops improving early.
    run = Run("churn-lightgbm", tmp_path, learning_rate=0.5, num_round=400, early_stopping_rounds=5)
    context = run.context()
    booster = run.fit(context)
    rounds = [line for line in capsys.readouterr().out.splitlines() if "validation-auc=" in line]
    assert context.best_epoch is not None
    assert len(rounds) == context.best_epoch + 1 + 5 < 400  # stopped 5 rounds past the best
    assert booster.num_trees() == context.best_epoch + 1  # what predict and save use


def _torch_run(tmp_path: Path) -> Run:
    pytest.importorskip("torch")
    return Run("churn-torch", tmp_path, epochs=6, early_stopping_rounds=3)


def test_torch_learns_and_loads_back_what_it_saved(tmp_path: Path) -> None:
    run = _torch_run(tmp_path)
    model = run.fit()
    assert run.auc(run.predict(model)) > GOOD_AUC
    saved = tmp_path / "user"
    saved.mkdir()
    run.user.call("save", model, saved)
    np.testing.assert_allclose(
        run.predict(run.user.call("load", saved)), run.predict(model), rtol=0, atol=1e-12
    )
    assert run.predict(model, _missing_everywhere(run)).shape == (2,)


class Reclaimed(Exception):
    """A spot instance taken back mid-training: fit() ends without returning."""


def test_torch_resumes_from_its_checkpoint_as_if_never_stopped(tmp_path: Path) -> None:
    uninterrupted = _torch_run(tmp_path / "once")
    expected = uninterrupted.predict(uninterrupted.fit())

    run = _torch_run(tmp_path / "twice")
    context = run.context()
    original = context.report

    def reclaimed_after_epoch_2(epoch: int, **scores: Any) -> bool:
        stop = original(epoch, **scores)
        if epoch == 2:
            raise Reclaimed
        return stop

    context.report = reclaimed_after_epoch_2  # type: ignore[method-assign]
    with pytest.raises(UserCodeError, match=r"fit\(\) raised Reclaimed"):
        run.fit(context)
    resumed = run.predict(run.fit())  # a fresh context, the same checkpoints directory
    np.testing.assert_allclose(resumed, expected, rtol=0, atol=1e-12)
