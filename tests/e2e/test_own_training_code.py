"""Your own training code through the whole loop on the local plane: the shipped scikit-learn and LightGBM
examples (examples/models/) each go drop → training run → gate → registered version (served by its own
image) → v2 rolled out by canary → endpoint predictions equal to the example's own load() and predict()
on the registered artifact → a drift check over the captured traffic. And a model whose predict() only
works inside a training job trains and registers, but its version never serves: the serving container's
smoke test refuses it before /ping answers, and the deploy says why.

It runs on a plane of its own: the session plane's models already take the pipeline stack near
CloudFormation's 500 resources. Every model here is trained, deployed and checked at once, in parallel."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from headrace.datagen import generate
from headrace.encoding import model_input
from headrace.local.control import start_detached, stop_detached
from headrace.naming import Outputs
from headrace.waiting import wait_for

from .conftest import REPO, RunningPlane, execution_failures
from .test_cli_and_state import headrace
from .test_monitoring import _ended
from .test_serving import NAMES, _artifact, _csv, _deploy_executions, _drop, _package

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples" / "models"
GOOD = ("churn-sklearn", "churn-lightgbm")
# The sklearn example with a predict() that reads a file only a training job has (its hyperparameters):
# training, its save/load check and its smoke rows pass; the serving container's smoke test does not.
LEAKY = "churn-leaky"
LEAKY_MODULE = '''"""The scikit-learn example, but predict() depends on the training job's own files."""

import os
from pathlib import Path

from pipeline import fit, load, save  # a sibling module of the folder: staged into the images too
from pipeline import predict as pipeline_predict

__all__ = ["fit", "load", "predict", "save"]


def predict(model, features):
    root = Path(os.environ.get("HEADRACE_OPT_ML", "/opt/ml"))
    (root / "input" / "config" / "hyperparameters.json").read_bytes()
    return pipeline_predict(model, features)
'''
ROWS = 2000
DRIFTED_ROWS = 300


def _fast(config: dict[str, Any]) -> dict[str, Any]:
    """The e2e models' settings (tests/e2e/conftest.py): rollouts of seconds with a canary of one instance
    of two, the latency guard at the loaded machine's bound, and no retraining on the drift the test sends."""
    config["schema"]["max_file_mb"] = 1.0
    config["rollout"] |= {
        "canary_percent": 20,
        "wait_interval_s": 3,
        "bake_s": 2,
        "instance_count": 2,
        "max_p99_latency_ms": 5000,
    }
    config["monitoring"] |= {"min_rows": 200, "max_retrains_per_day": 0}
    # v2 is trained on other rows of the same distribution: the gate judges it on a 400-row test split.
    config["gate"] |= {"max_regression": 0.05}
    return config


def _copy_model(source: Path, models: Path, name: str) -> Path:
    folder = models / name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((folder / "model.yaml").read_text())
    config["name"] = name
    (folder / "model.yaml").write_text(yaml.safe_dump(_fast(config), sort_keys=False))
    return folder


def _write_models(models: Path) -> Path:
    for name in GOOD:
        _copy_model(EXAMPLES / name, models, name)
    leaky = _copy_model(EXAMPLES / "churn-sklearn", models, LEAKY)
    (leaky / "model.py").rename(leaky / "pipeline.py")
    (leaky / "model.py").write_text(LEAKY_MODULE)
    return models


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlane]:
    models = _write_models(tmp_path_factory.mktemp("own-code-models"))
    work_dir = tmp_path_factory.mktemp("own-code-plane")
    info = start_detached(work_dir=work_dir, models_dir=models)
    try:
        yield RunningPlane(info, models, work_dir)
    finally:
        stop_detached(work_dir)


def _ended_deploys(plane: RunningPlane, model: str, count: int) -> dict[str, Any] | None:
    executions = sorted(_deploy_executions(plane, model), key=lambda e: e["startDate"])
    if len(executions) < count or executions[count - 1]["status"] == "RUNNING":
        return None
    return dict(executions[count - 1])


def _described(plane: RunningPlane, execution: dict[str, Any]) -> dict[str, Any]:
    sfn = plane.clients.client("stepfunctions")
    described = dict(sfn.describe_execution(executionArn=execution["executionArn"]))
    if described["status"] != "SUCCEEDED":
        described["failures"] = execution_failures(plane, described["executionArn"])
    return described


def _all_deployed(plane: RunningPlane, models: tuple[str, ...], count: int) -> dict[str, dict[str, Any]]:
    """Each model's `count`-th deploy execution once all of them ended (they run at the same time)."""

    def all_ended() -> dict[str, dict[str, Any]] | None:
        ended = {model: _ended_deploys(plane, model, count) for model in models}
        return {m: e for m, e in ended.items() if e is not None} if all(ended.values()) else None

    ended = wait_for(all_ended, f"deployment {count} of {', '.join(models)}", timeout_s=420, interval_s=0.5)
    return {model: _described(plane, execution) for model, execution in ended.items()}


def _example_module(name: str) -> ModuleType:
    """The example's model.py as the user wrote it, imported here under a name of its own."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name.replace('-', '_')}", EXAMPLES / name / "model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _in_process(
    name: str, files: dict[str, bytes], rows: pd.DataFrame, directory: Path
) -> np.ndarray[Any, Any]:
    """The registered artifact's model loaded by the example's own load(), scoring rows encoded as the
    trainer encodes them."""
    for path, body in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    described = json.loads(files["features.json"])
    module = _example_module(name)
    model = module.load(directory / "user")
    return np.asarray(
        module.predict(model, model_input(rows, described["features"], described["categorical"]))
    )


def _served(plane: RunningPlane, model: str, rows: pd.DataFrame) -> np.ndarray[Any, Any]:
    response = plane.clients.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=NAMES.endpoint(model), Body=_csv(rows, plane.models[model]), ContentType="text/csv"
    )
    return np.asarray(json.loads(response["Body"].read())["predictions"])


def _pending_shares(plane: RunningPlane, models: tuple[str, ...]) -> dict[str, list[float]]:
    """Each model's canary weights while its v2 rolls out (DescribeEndpoint's PendingDeploymentSummary)."""
    sagemaker = plane.clients.client("sagemaker")
    shares: dict[str, list[float]] = {m: [] for m in models}

    def watch() -> bool | None:
        for model in models:
            pending = sagemaker.describe_endpoint(EndpointName=NAMES.endpoint(model)).get(
                "PendingDeploymentSummary"
            )
            if pending:
                shares[model].append(pending["ProductionVariants"][0]["CurrentWeight"])
        return all(_ended_deploys(plane, m, 2) for m in models) or None

    wait_for(watch, "the v2 rollouts to end", timeout_s=420, interval_s=0.2)
    return shares


@pytest.fixture(scope="module")
def loop(plane: RunningPlane) -> dict[str, Any]:
    """v1 of every model (the leaky one too), then v2 of the good ones by canary, then drifted traffic
    and the scheduled drift checks."""
    started = time.monotonic()
    v1 = {model: _drop(plane, model, seed=301, rows=ROWS) for model in (*GOOD, LEAKY)}
    first = _all_deployed(plane, (*GOOD, LEAKY), 1)
    v1_seconds = time.monotonic() - started
    for model in GOOD:
        _drop(plane, model, seed=302, rows=ROWS)
    shares = _pending_shares(plane, GOOD)
    second = {model: _described(plane, _ended_deploys(plane, model, 2) or {}) for model in GOOD}

    runtime = plane.clients.client("sagemaker-runtime")
    for model in GOOD:
        drifted = generate(plane.models[model], DRIFTED_ROWS, seed=303, drift=1.0)
        for start in range(0, DRIFTED_ROWS, 100):
            runtime.invoke_endpoint(
                EndpointName=NAMES.endpoint(model),
                Body=_csv(drifted.iloc[start : start + 100], plane.models[model]),
                ContentType="text/csv",
            )
    time.sleep(1.5)  # the last second's capture file
    checks = {}
    for model in GOOD:
        ticked = headrace(
            "local",
            "tick",
            "--schedules",
            "--name",
            NAMES.drift_schedule(model),
            "--json",
            "--work-dir",
            str(plane.work_dir),
            plane=plane,
        )
        assert ticked.returncode == 0, ticked.stdout + ticked.stderr
        checks[model] = _ended(plane, Outputs.drift_state_machine(model), 1, timeout_s=120)
    whole = time.monotonic() - started
    print(f"three custom models to v1 serving (or refused): {v1_seconds:.1f}s; the whole loop: {whole:.1f}s")
    return {"v1": v1, "first": first, "second": second, "shares": shares, "checks": checks}


@pytest.mark.parametrize("model", GOOD)
def test_an_example_trains_registers_and_serves_v1_from_its_own_image(
    plane: RunningPlane, loop: dict[str, Any], model: str
) -> None:
    assert loop["first"][model]["status"] == "SUCCEEDED", loop["first"][model]
    package = _package(plane, model, 1)
    assert package["ModelApprovalStatus"] == "Approved"
    images = {m: _package(plane, m, 1)["InferenceSpecification"]["Containers"][0]["Image"] for m in GOOD}
    assert len(set(images.values())) == len(GOOD), f"the examples share a serving image: {images}"
    files = _artifact(plane, package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    evaluation = json.loads(files["evaluation.json"])
    assert evaluation["framework"] == "custom"
    assert evaluation["metrics"]["auc"] > 0.8


@pytest.mark.parametrize("model", GOOD)
def test_v2_rolls_out_by_canary_and_serves_what_the_example_loads_in_process(
    plane: RunningPlane, loop: dict[str, Any], model: str, tmp_path: Path
) -> None:
    assert loop["second"][model]["status"] == "SUCCEEDED", loop["second"][model]
    shares = loop["shares"][model]
    # A 20% canary of a 2-instance fleet is one whole instance: half the traffic, then all of it.
    assert 0.5 in shares and 1.0 in shares and shares.index(0.5) < shares.index(1.0), shares
    endpoint = plane.clients.client("sagemaker").describe_endpoint(EndpointName=NAMES.endpoint(model))
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"].startswith(f"headrace-dev-{model}-v2-")
    rows = loop["v1"][model].head(25)
    url = _package(plane, model, 2)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    expected = _in_process(model, _artifact(plane, url), rows, tmp_path)
    np.testing.assert_allclose(_served(plane, model, rows), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("model", GOOD)
def test_a_drift_check_runs_over_the_traffic_the_example_served(loop: dict[str, Any], model: str) -> None:
    check = loop["checks"][model]
    assert check["status"] == "SUCCEEDED", check
    found = json.loads(check["output"])["check"]
    assert found["status"] == "drifted"
    assert found["rows"] == DRIFTED_ROWS


def test_a_version_whose_predict_fails_its_smoke_test_never_serves(
    plane: RunningPlane, loop: dict[str, Any]
) -> None:
    # Training passed (its predict works inside a training job) and the gate registered the version ...
    assert _package(plane, LEAKY, 1)["ModelApprovalStatus"] == "Approved"
    # ... but its deploy failed: the serving container refused the version before /ping answered.
    deploy = loop["first"][LEAKY]
    assert deploy["status"] == "FAILED"
    sagemaker = plane.clients.client("sagemaker")
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=NAMES.endpoint(LEAKY))
    except sagemaker.exceptions.ClientError:
        endpoint = {}
    assert endpoint.get("EndpointStatus") != "InService"
    said = json.dumps(deploy.get("failures", [])) + str(endpoint.get("FailureReason", ""))
    assert f"model '{LEAKY}'" in said and "predict()" in said and "FileNotFoundError" in said, said
