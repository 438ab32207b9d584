"""The training container's contract (containers/train/CONTRACT.md), through its real entry point.

Each test lays out a private `/opt/ml` tree (HEADRACE_OPT_ML) from the data generator and the churn
model's own hyperparameters, runs `containers/train/train` as a subprocess, as SageMaker and the local
plane do, and reads what it left behind.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.profile import FeatureInfo, ReferenceProfile
from headrace.training_job import Hyperparameters, hyperparameters_for

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "containers" / "train" / "train"
ROWS = 4_000
SPLITS = {"train": 0.6, "validation": 0.2, "test": 0.2}


@dataclass(frozen=True)
class Run:
    root: Path
    code: int
    output: str

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def failure(self) -> str:
        return (self.root / "output" / "failure").read_text()

    def json(self, name: str) -> Any:
        return json.loads((self.model / name).read_text())


def lay_out(
    root: Path, model: ModelConfig, overrides: Mapping[str, str] | None = None, shuffle_labels: bool = False
) -> Path:
    """An /opt/ml tree as SageMaker prepares it: hyperparameters (strings) and three CSV channels."""
    frame = generate(model, ROWS, seed=21, shuffle_labels=shuffle_labels)
    start = 0
    for channel, share in SPLITS.items():
        end = start + int(ROWS * share)
        directory = root / "input" / "data" / channel
        directory.mkdir(parents=True)
        frame.iloc[start:end].to_csv(directory / "data.csv", index=False)
        start = end
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(
        json.dumps({**hyperparameters_for(model), **(overrides or {})})
    )
    return root


def train(root: Path, script: Path = TRAIN) -> Run:
    done = subprocess.run(
        [sys.executable, str(script), "train"],
        # PASSIVE: OpenMP threads spinning while they wait make a shared CPU crawl (parallel test processes).
        env={
            "HEADRACE_OPT_ML": str(root),
            "PATH": "/usr/bin:/bin",
            "PYTHONUNBUFFERED": "1",
            "OMP_WAIT_POLICY": "PASSIVE",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(root, done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory, example_model: ModelConfig) -> Run:
    run = train(lay_out(tmp_path_factory.mktemp("opt_ml"), example_model))
    assert run.code == 0, run.output
    return run


@pytest.fixture
def failed_run(tmp_path: Path, example_model: ModelConfig) -> Callable[..., Run]:
    """Lay out a tree, let the test break it, run, and expect the contract's failure: exit 1 and a reason."""

    def run(breakage: Callable[[Path], object] = lambda _: None, **overrides: str) -> Run:
        root = lay_out(tmp_path / "opt_ml", example_model, overrides)
        breakage(root)
        result = train(root)
        assert result.code == 1, result.output
        assert not (root / "model" / "model.json").exists()
        return result

    return run


def test_a_good_run_writes_the_model_directory(good_run: Run) -> None:
    assert sorted(p.name for p in good_run.model.iterdir()) == [
        "evaluation.json",
        "features.json",
        "model.json",
        "profile.json",
        "smoke.json",
    ]
    assert not (good_run.root / "output" / "failure").exists()


def test_the_model_learns_the_churn_relation(good_run: Run) -> None:
    evaluation = good_run.json("evaluation.json")
    assert evaluation["metric"] == "auc"
    assert evaluation["metrics"]["auc"] > 0.7
    assert set(evaluation["metrics"]) == {"auc", "logloss", "accuracy", "rows"}
    assert evaluation["metrics"]["rows"] == int(ROWS * SPLITS["test"])
    assert evaluation["device"] == "cpu"
    assert 0 <= evaluation["best_iteration"] < evaluation["rounds"] <= 200
    assert evaluation["train_seconds"] > 0


def test_each_slice_reports_its_metric_and_rows(good_run: Run) -> None:
    evaluation = good_run.json("evaluation.json")
    regions = evaluation["slices"]["region"]
    assert list(regions) == ["north", "south", "east", "west"]
    assert sum(s["rows"] for s in regions.values()) == evaluation["metrics"]["rows"]
    assert all(0.5 < s["auc"] <= 1 for s in regions.values())


def test_every_round_prints_the_lines_sagemaker_metric_definitions_scrape(good_run: Run) -> None:
    evaluation = good_run.json("evaluation.json")
    rounds = re.findall(
        r"^\[(\d+)\] train-auc=[0-9.eE+-]+; validation-auc=[0-9.eE+-]+;$", good_run.output, re.M
    )
    assert [int(r) for r in rounds] == list(range(evaluation["rounds"]))
    validation = re.findall(r"validation-auc=([0-9.eE+-]+);", good_run.output)
    assert len(validation) == evaluation["rounds"] + 1
    # The last one, which a metric definition keeps, is the kept (best) round's score.
    best = evaluation["best_iteration"]
    assert re.search(
        rf"^\[best {best}\] validation-auc={re.escape(validation[best])};$", good_run.output, re.M
    )
    (test,) = re.findall(r"test-auc=([0-9.eE+-]+);", good_run.output)
    assert float(test) == pytest.approx(evaluation["metrics"]["auc"], rel=1e-5)


def test_features_json_tells_serving_the_encoding(good_run: Run, example_model: ModelConfig) -> None:
    features = good_run.json("features.json")
    assert features["target"] == "churned"
    assert features["objective"] == "binary:logistic"
    assert features["features"] == [c.name for c in example_model.data.features]
    assert features["categorical"]["region"] == ["north", "south", "east", "west"]
    assert set(features["categorical"]) == {"contract", "payment_method", "region"}


def test_model_json_scores_the_test_channel_as_the_evaluation_says(good_run: Run) -> None:
    import xgboost as xgb

    features = good_run.json("features.json")
    booster = xgb.Booster(model_file=good_run.model / "model.json")
    assert booster.num_boosted_rounds() == good_run.json("evaluation.json")["best_iteration"] + 1
    test = pd.read_csv(good_run.root / "input" / "data" / "test" / "data.csv")
    inputs = pd.DataFrame(
        {
            name: pd.Categorical(test[name], categories=features["categorical"][name])
            if name in features["categorical"]
            else test[name].astype(float)
            for name in features["features"]
        }
    )
    scores = booster.predict(xgb.DMatrix(inputs, enable_categorical=True))
    assert _pairwise_auc(test["churned"].to_numpy(), scores) == pytest.approx(
        good_run.json("evaluation.json")["metrics"]["auc"], abs=1e-12
    )


def test_smoke_json_holds_the_first_test_rows_and_the_models_scores_for_them(good_run: Run) -> None:
    import xgboost as xgb

    from headrace.encoding import RowEncoder

    features = good_run.json("features.json")
    smoke = good_run.json("smoke.json")
    test = pd.read_csv(good_run.root / "input" / "data" / "test" / "data.csv")
    assert len(smoke["rows"]) == len(smoke["scores"]) == 20
    first = test[features["features"]].iloc[:20].astype(object).where(test.iloc[:20].notna(), None)
    assert smoke["rows"] == first.to_numpy().tolist()
    # Scored as serving scores a request: the rows encoded by RowEncoder, the booster's inplace_predict.
    booster = xgb.Booster(model_file=good_run.model / "model.json")
    matrix = RowEncoder.of(features["features"], features["categorical"]).encode(smoke["rows"])
    scores = booster.inplace_predict(matrix, validate_features=False)
    assert np.asarray(smoke["scores"]) == pytest.approx(scores.astype(np.float64), rel=1e-6, abs=1e-6)
    assert len(set(smoke["scores"])) > 1


def test_profile_json_is_the_training_baseline(good_run: Run) -> None:
    profile = ReferenceProfile.model_validate_json((good_run.model / "profile.json").read_text())
    info = FeatureInfo.model_validate(good_run.json("features.json"))
    assert list(profile.features) == info.features
    assert profile.n == int(ROWS * SPLITS["train"])
    assert profile.features["region"].kind == "categorical"
    assert profile.features["monthly_charges"].kind == "numeric"


def test_a_bad_hyperparameter_fails_naming_it(failed_run: Callable[..., Run]) -> None:
    run = failed_run(max_depth="banana")
    assert "max_depth" in run.failure and "banana" in run.failure


def test_a_missing_channel_fails_naming_it(failed_run: Callable[..., Run]) -> None:
    def drop_test(root: Path) -> None:
        for path in (root / "input" / "data" / "test").iterdir():
            path.unlink()
        (root / "input" / "data" / "test").rmdir()

    run = failed_run(drop_test)
    assert "Channel 'test' is missing" in run.failure


def test_a_header_only_channel_fails_as_empty(failed_run: Callable[..., Run]) -> None:
    def header_only(root: Path) -> None:
        csv = root / "input" / "data" / "train" / "data.csv"
        csv.write_text(csv.read_text().splitlines()[0] + "\n")

    run = failed_run(header_only)
    assert "Channel 'train' is empty" in run.failure


def test_a_missing_target_column_fails_naming_it(failed_run: Callable[..., Run]) -> None:
    run = failed_run(target="cancelled")
    assert "Target column 'cancelled'" in run.failure and "missing" in run.failure


def test_a_target_missing_from_one_channel_fails_naming_both(failed_run: Callable[..., Run]) -> None:
    def drop_target(root: Path) -> None:
        csv = root / "input" / "data" / "test" / "data.csv"
        pd.read_csv(csv).drop(columns="churned").to_csv(csv, index=False)

    run = failed_run(drop_target)
    assert "Target column 'churned' is missing from channel 'test'" in run.failure


def test_asking_for_a_gpu_without_one_fails_naming_device(failed_run: Callable[..., Run]) -> None:
    run = failed_run(device="cuda")
    assert "'device'" in run.failure


def test_a_run_resumes_from_its_newest_checkpoint(tmp_path: Path, example_model: ModelConfig) -> None:
    interrupted = lay_out(
        tmp_path / "interrupted", example_model, {"num_round": "30", "early_stopping_rounds": "0"}
    )
    first = train(interrupted)
    assert first.code == 0, first.output
    assert sorted(p.name for p in (interrupted / "checkpoints").iterdir()) == [
        "checkpoint-000010.json",
        "checkpoint-000020.json",
        "checkpoint-000030.json",
    ]
    # The same job started again (a spot interruption), now with rounds still to go.
    settings = interrupted / "input" / "config" / "hyperparameters.json"
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "num_round": "50"}))
    resumed = train(interrupted)
    assert resumed.code == 0, resumed.output
    assert "resumed from round 30" in resumed.output
    rounds = [int(r) for r in re.findall(r"^\[(\d+)\] ", resumed.output, re.M)]
    assert rounds == list(range(30, 50))
    evaluation = resumed.json("evaluation.json")
    assert (evaluation["rounds"], evaluation["resumed_from_round"]) == (50, 30)
    # Resuming loses nothing: the model is the one an uninterrupted run builds.
    straight = train(
        lay_out(tmp_path / "straight", example_model, {"num_round": "50", "early_stopping_rounds": "0"})
    )
    assert straight.code == 0, straight.output
    assert straight.json("evaluation.json")["metrics"] == pytest.approx(evaluation["metrics"], rel=1e-9)


def test_shuffled_labels_leave_nothing_to_learn(tmp_path: Path, example_model: ModelConfig) -> None:
    run = train(lay_out(tmp_path, example_model, shuffle_labels=True))
    assert run.code == 0, run.output
    assert abs(run.json("evaluation.json")["metrics"]["auc"] - 0.5) < 0.08


def test_churn_hyperparameters_are_strings_the_container_parses_back(example_model: ModelConfig) -> None:
    values = hyperparameters_for(example_model)
    assert all(isinstance(v, str) for v in values.values())
    assert values == hyperparameters_for(example_model)
    parsed = Hyperparameters.from_strings(values)
    assert parsed.to_strings() == values
    assert (parsed.target, parsed.metric, parsed.num_round, parsed.slice_by) == (
        "churned",
        "auc",
        200,
        ["region"],
    )
    assert parsed.xgboost_params() == {
        "objective": "binary:logistic",
        "seed": 42,
        "max_depth": 5,
        "eta": 0.2,
        "eval_metric": "auc",
    }


def _pairwise_auc(labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]) -> float:
    """AUC by its definition: P(score of a positive > score of a negative), ties counting one half."""
    positives, negatives = scores[labels == 1][:, None], scores[labels == 0][None, :]
    wins = (positives > negatives).sum() + 0.5 * (positives == negatives).sum()
    return float(wins / (positives.size * negatives.size))


def test_rank_auc_matches_the_pairwise_definition_with_ties() -> None:
    sys.path.insert(0, str(TRAIN.parent))
    try:
        from trainer.evaluate import auc
    finally:
        sys.path.remove(str(TRAIN.parent))
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, size=300)
    scores = np.round(rng.random(300) + 0.3 * labels, 1)  # coarse scores: many ties
    assert auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores), abs=1e-12)
    assert auc(np.ones(5), np.arange(5.0)) is None


def _champion_channel(root: Path, champion: Run | None) -> None:
    """The champion channel as Prepare fills it: the champion's model.tar.gz, or none.json."""
    directory = root / "input" / "data" / "champion"
    directory.mkdir(parents=True)
    if champion is None:
        (directory / "none.json").write_text('{"champion": null, "reason": "no approved version yet"}')
        return
    with tarfile.open(directory / "model.tar.gz", "w:gz") as archive:
        for path in sorted(champion.model.iterdir()):
            archive.add(path, arcname=path.name)


def test_the_champion_is_scored_on_the_same_test_split(
    tmp_path: Path, example_model: ModelConfig, good_run: Run
) -> None:
    # Same data, so the same test split: the champion's figures must be its own evaluation's, exactly.
    root = lay_out(tmp_path / "opt_ml", example_model, {"num_round": "5"})
    _champion_channel(root, good_run)
    run = train(root)
    assert run.code == 0, run.output
    champion = run.json("evaluation.json")["champion"]
    own = good_run.json("evaluation.json")["metrics"]
    assert champion["rows"] == own["rows"] == int(ROWS * SPLITS["test"])
    assert champion["metrics"] == pytest.approx({k: v for k, v in own.items() if k != "rows"})
    assert run.json("evaluation.json")["metrics"]["auc"] != pytest.approx(own["auc"])  # another model
    assert f"champion on the test split: {example_model.gate.metric}" in run.output


def test_no_champion_block_without_a_champion(tmp_path: Path, example_model: ModelConfig) -> None:
    root = lay_out(tmp_path / "opt_ml", example_model, {"num_round": "5"})
    _champion_channel(root, None)
    run = train(root)
    assert run.code == 0, run.output
    assert "champion" not in run.json("evaluation.json")
