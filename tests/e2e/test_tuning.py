"""Hyperparameter tuning through the whole training pipeline on the local plane: a drop starts a tuning job of
6 trials (Bayesian, 2 at a time), whose best trial goes on to Evaluate, Gate and Register; the registered
version is that trial's artifact, its lineage lists every trial, and its objective is at least every trial's.
A second drop's tuning job warm-starts from the first. `headrace runs` shows the trials and the report.

It runs on a plane of its own: the session plane's models already take the pipeline stack near
CloudFormation's 500 resources. The data is small and the rounds few, so each trial takes seconds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from headrace.datagen import generate
from headrace.local.control import start_detached, stop_detached
from headrace.naming import Names, execution_name
from headrace.waiting import wait_for

from .conftest import REPO, RunningPlane, execution_failures

pytestmark = pytest.mark.e2e

MODEL = "tuned"
TRIALS = 6
PARALLEL = 2
ROWS = 2_000


def _write_models(models: Path) -> Path:
    config = yaml.safe_load((REPO / "models" / "churn.yaml").read_text())
    config["name"] = MODEL
    config["schema"]["max_file_mb"] = 1.0
    config["trainer"]["hyperparameters"] = {"num_round": 30, "early_stopping_rounds": 5}
    config["trainer"]["tuning"] = {
        "strategy": "Bayesian",
        "max_jobs": TRIALS,
        "max_parallel_jobs": PARALLEL,
        "ranges": {
            "eta": {"min": 0.05, "max": 0.5, "scaling": "logarithmic"},
            "max_depth": {"min": 2, "max": 6},
        },
    }
    # A person approves: the version is registered and nothing deploys, which this test does not judge.
    config["gate"] |= {"approval": "manual", "max_regression": 0.05}
    config["monitoring"] |= {"max_retrains_per_day": 0}
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return models


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlane]:
    models = _write_models(tmp_path_factory.mktemp("tuning-models"))
    work_dir = tmp_path_factory.mktemp("tuning-plane")
    info = start_detached(work_dir=work_dir, models_dir=models)
    try:
        yield RunningPlane(info, models, work_dir)
    finally:
        stop_detached(work_dir)


def _tuned_run(plane: RunningPlane, key: str, seed: int) -> dict[str, Any]:
    """Drop a dataset; the finished execution (SUCCEEDED, or the test fails with what failed and why)."""
    body = generate(plane.models[MODEL], ROWS, seed=seed).to_csv(index=False).encode()
    plane.clients.s3.put_object(Bucket=plane.deployment.data_bucket, Key=f"{MODEL}/incoming/{key}", Body=body)
    sfn = plane.clients.client("stepfunctions")
    machine = plane.deployment.model(MODEL).training_state_machine_arn
    arn = (
        machine.replace(":stateMachine:", ":execution:")
        + f":{execution_name(MODEL, hashlib.sha256(body).hexdigest())}"
    )

    def finished() -> dict[str, Any] | None:
        try:
            described = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            return None
        return dict(described) if described["status"] != "RUNNING" else None

    execution = wait_for(finished, f"tuning run of {key}", timeout_s=600, interval_s=1.0)
    assert execution["status"] == "SUCCEEDED", execution_failures(plane, arn)
    return execution


def _run_record(plane: RunningPlane, execution_arn: str) -> dict[str, Any]:
    listed = json.loads(_cli(plane, "runs", MODEL, "--json").stdout)
    (record,) = [r for r in listed if r["execution_arn"] == execution_arn]
    return dict(record)


def _cli(plane: RunningPlane, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **plane.info.environment(), "HEADRACE_MODELS_DIR": str(plane.models_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "headrace.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def _trials(sagemaker: Any, tuning_job: str) -> list[dict[str, Any]]:
    pages = sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=tuning_job
    )
    return [summary for page in pages for summary in page["TrainingJobSummaries"]]


def _most_at_once(jobs: list[dict[str, Any]]) -> int:
    """The most trials that were running at the same moment (from their start and end times)."""
    edges: list[tuple[datetime, int]] = []
    for job in jobs:
        edges += [(job["TrainingStartTime"], 1), (job["TrainingEndTime"], -1)]
    running = most = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        running += step
        most = max(most, running)
    return most


@pytest.fixture(scope="module")
def first(plane: RunningPlane) -> dict[str, Any]:
    execution = _tuned_run(plane, "first.csv", seed=61)
    return {"execution": execution, "record": _run_record(plane, execution["executionArn"])}


def test_a_tuning_run_registers_its_best_trial_with_every_trial_in_the_lineage(
    plane: RunningPlane, first: dict[str, Any]
) -> None:
    sagemaker = plane.clients.client("sagemaker")
    record = first["record"]
    assert record["status"] == "registered", record
    tuning_job = record["tuning"]["job_name"]
    described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert "WarmStartConfig" not in described  # the model's first tuning job has no parent
    trials = _trials(sagemaker, tuning_job)
    assert len(trials) == TRIALS
    jobs = [sagemaker.describe_training_job(TrainingJobName=t["TrainingJobName"]) for t in trials]
    assert _most_at_once(jobs) <= PARALLEL
    assert {tuple(sorted(t["TunedHyperParameters"])) for t in trials} == {("eta", "max_depth")}

    # The best by the API's own answer: the objective of every trial, Maximize (the gate's auc).
    objectives = {
        t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        for t in trials
        if "FinalHyperParameterTuningJobObjectiveMetric" in t
    }
    best = described["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] >= max(objectives.values())

    (package,) = [
        sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"])
        for p in sagemaker.list_model_packages(
            ModelPackageGroupName=Names(plane.info.stage).model_package_group(MODEL)
        )["ModelPackageSummaryList"]
    ]
    best_job = sagemaker.describe_training_job(TrainingJobName=best["TrainingJobName"])
    artifact = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert artifact == best_job["ModelArtifacts"]["S3ModelArtifacts"]
    metadata = package["CustomerMetadataProperties"]
    assert metadata["execution_arn"] == first["execution"]["executionArn"]
    bucket, key = metadata["lineage_uri"].removeprefix("s3://").split("/", 1)
    lineage = json.loads(plane.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert lineage["training"]["job_name"] == best["TrainingJobName"]
    listed = {t["name"]: t for t in lineage["tuning"]["trials"]}
    assert set(listed) == {t["TrainingJobName"] for t in trials}
    for trial in trials:
        assert listed[trial["TrainingJobName"]]["hyperparameters"] == trial["TunedHyperParameters"]
    assert lineage["tuning"]["best"]["name"] == best["TrainingJobName"]
    assert all(lineage["tuning"]["best"]["objective"] >= v for v in objectives.values())
    assert "validation:auc" in lineage["tuning"]["best"]["why"]
    # The version carries the best trial's tuned values on top of the static ones.
    for name, value in best["TunedHyperParameters"].items():
        assert best_job["HyperParameters"][name] == value


def test_the_cli_shows_every_trial_and_writes_the_report(
    plane: RunningPlane, first: dict[str, Any], tmp_path: Path
) -> None:
    record = first["record"]
    listed = _cli(plane, "runs", MODEL)
    assert f"tuned: {TRIALS} trials, best {record['tuning']['best']['name']}" in listed.stdout
    trials = json.loads(_cli(plane, "runs", "trials", record["job_name"], "--json").stdout)
    assert len(trials["trials"]) == TRIALS
    top = json.loads(_cli(plane, "runs", "compare", record["job_name"], "--best", "3", "--json").stdout)
    assert top["trials"][0]["name"] == record["tuning"]["best"]["name"]
    out = tmp_path / "tuning.html"
    _cli(plane, "runs", "report", record["job_name"], "--out", str(out))
    page = out.read_text()
    assert page.count("<svg") == 1 and all(t["name"] in page for t in trials["trials"])


def test_the_next_tuning_run_warm_starts_from_the_last_one(
    plane: RunningPlane, first: dict[str, Any]
) -> None:
    parent = first["record"]["tuning"]["job_name"]
    execution = _tuned_run(plane, "second.csv", seed=62)
    record = _run_record(plane, execution["executionArn"])
    assert record["tuning"]["warm_start_parents"] == [parent]
    described = plane.clients.client("sagemaker").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=record["tuning"]["job_name"]
    )
    warm = described["WarmStartConfig"]
    assert warm["WarmStartType"] == "TransferLearning"
    assert [p["HyperParameterTuningJobName"] for p in warm["ParentHyperParameterTuningJobs"]] == [parent]
