"""Hyperparameter tuning on the local plane: is the best trial better than the shipped defaults, and what do
2 trials at a time save against running the same trials one after another?

The data: a small, noisy churn set (a share of its labels shuffled), where the shipped defaults (churn.yaml:
max_depth 5, eta 0.2, 200 rounds, early stopping after 20) fit noise. A model with `trainer.tuning` (Bayesian,
20 trials, 2 in parallel, over eta, max_depth, min_child_weight and subsample) is dropped on a plane of its
own; the tuning job runs inside the training pipeline (Prepare → tuning job → TuningResult → Evaluate →
Gate → Register).

References, measured in the same run on the same splits (the ones the tuning job's trials read):
- the default configuration: one training job with the shipped hyperparameters; its validation objective;
- sequential: each trial's own training job again (its exact hyperparameters, channels and resources), one
  after another through the same CreateTrainingJob path, without checkpoints. Its total wall time against
  the tuning job's (CreationTime → HyperParameterTuningEndTime).

    .venv/bin/python bench/tuning.py [--rows 1500] [--noise 0.3] [--trials 20] [--parallel 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from headrace.config import ModelConfig, load_models
from headrace.datagen import generate
from headrace.local.control import start_detached, stop_detached
from headrace.naming import execution_name
from headrace.training_job import hyperparameters_for
from headrace.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
MODEL = "noisy"
OBJECTIVE = "validation:auc"
# What a trial's CreateTrainingJob request holds that DescribeTrainingJob gives back (checkpoints left out:
# a rerun that resumed from the trial's checkpoint would not be the same work).
REQUEST_FIELDS = (
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableManagedSpotTraining",
    "Environment",
)
ENDED = ("Completed", "Failed", "Stopped")


def write_models(directory: Path, trials: int, parallel: int) -> Path:
    config = yaml.safe_load((REPO / "models" / "churn.yaml").read_text())
    config["name"] = MODEL
    fixed = dict(config["trainer"]["hyperparameters"])
    config["trainer"]["hyperparameters"] = {k: v for k, v in fixed.items() if k not in ("eta", "max_depth")}
    config["trainer"]["tuning"] = {
        "strategy": "Bayesian",
        "max_jobs": trials,
        "max_parallel_jobs": parallel,
        "ranges": {
            "eta": {"min": 0.01, "max": 0.5, "scaling": "logarithmic"},
            "max_depth": {"min": 1, "max": 10},
            "min_child_weight": {"min": 1.0, "max": 64.0, "scaling": "logarithmic"},
            "subsample": {"min": 0.5, "max": 1.0},
        },
    }
    # The run is judged here, not by the gate: any version registers, and nothing deploys.
    config["gate"] |= {"thresholds": {"auc": 0.5}, "approval": "manual", "max_slice_gap": 1.0}
    config["monitoring"] |= {"max_retrains_per_day": 0}
    (directory / f"{MODEL}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return directory


def shipped_defaults(model: ModelConfig) -> dict[str, str]:
    """The hyperparameters `model` would train with untuned, at churn.yaml's shipped values."""
    shipped = yaml.safe_load((REPO / "models" / "churn.yaml").read_text())["trainer"]["hyperparameters"]
    trainer = model.trainer.model_copy(update={"tuning": None, "hyperparameters": shipped})
    return hyperparameters_for(model.model_copy(update={"trainer": trainer}))


def train(sagemaker: Any, name: str, request: dict[str, Any]) -> dict[str, Any]:
    sagemaker.create_training_job(TrainingJobName=name, **request)

    def ended() -> dict[str, Any] | None:
        described = sagemaker.describe_training_job(TrainingJobName=name)
        return dict(described) if described["TrainingJobStatus"] in ENDED else None

    return wait_for(ended, f"training job {name}", timeout_s=900, interval_s=0.2)


def objective(described: dict[str, Any]) -> float | None:
    for metric in described.get("FinalMetricDataList") or []:
        if metric["MetricName"] == OBJECTIVE:
            return float(metric["Value"])
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_500)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "models").mkdir()
        models = write_models(Path(work) / "models", args.trials, args.parallel)
        model = load_models(models)[0]
        body = generate(model, args.rows, seed=7, label_noise=args.noise).to_csv(index=False).encode()
        name = execution_name(MODEL, hashlib.sha256(body).hexdigest())
        info = start_detached(work_dir=Path(work) / "plane", models_dir=models)
        try:
            clients = info.clients()
            sagemaker = clients.client("sagemaker")
            sfn = clients.client("stepfunctions")
            bucket = info.outputs[f"headrace-{info.stage}-data"]["DataBucketName"]
            machine = next(
                arn
                for key, arn in info.outputs[f"headrace-{info.stage}-pipeline"].items()
                if key.startswith("TrainingStateMachine")
            )
            arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
            started = time.perf_counter()
            clients.s3.put_object(Bucket=bucket, Key=f"{MODEL}/incoming/bench.csv", Body=body)

            def finished() -> dict[str, Any] | None:
                try:
                    described = sfn.describe_execution(executionArn=arn)
                except sfn.exceptions.ExecutionDoesNotExist:
                    return None
                return dict(described) if described["status"] != "RUNNING" else None

            execution = wait_for(finished, "the tuning run", timeout_s=1800, interval_s=0.5)
            drop_to_end = time.perf_counter() - started
            if execution["status"] != "SUCCEEDED":
                raise SystemExit(f"the tuning run ended {execution['status']}: {execution.get('cause', '')}")
            (job,) = sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
            tuning = sagemaker.describe_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=job["HyperParameterTuningJobName"]
            )
            tuning_s = (tuning["HyperParameterTuningEndTime"] - tuning["CreationTime"]).total_seconds()
            pages = sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
                HyperParameterTuningJobName=job["HyperParameterTuningJobName"]
            )
            summaries = sorted(
                (s for page in pages for s in page["TrainingJobSummaries"]), key=lambda s: s["CreationTime"]
            )
            trials = [
                sagemaker.describe_training_job(TrainingJobName=s["TrainingJobName"]) for s in summaries
            ]
            requests = [{k: t[k] for k in REQUEST_FIELDS if k in t} for t in trials]

            reference = train(
                sagemaker, "bench-defaults", {**requests[0], "HyperParameters": shipped_defaults(model)}
            )
            sequential_started = time.perf_counter()
            again = [
                train(
                    sagemaker, f"bench-seq-{i:03d}", {**request, "HyperParameters": trial["HyperParameters"]}
                )
                for i, (request, trial) in enumerate(zip(requests, trials, strict=True), start=1)
            ]
            sequential_s = time.perf_counter() - sequential_started
        finally:
            stop_detached(Path(work) / "plane")
    best = tuning["BestTrainingJob"]
    scored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
    result = {
        "rows": args.rows,
        "label_noise": args.noise,
        "trials": len(summaries),
        "parallel": args.parallel,
        "strategy": "Bayesian",
        "cpus": os.cpu_count(),
        "objective": OBJECTIVE,
        "default_objective": objective(reference),
        "default_hyperparameters": {k: shipped_defaults(model)[k] for k in ("eta", "max_depth")},
        "best_objective": best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
        "best_hyperparameters": best["TunedHyperParameters"],
        "trial_objectives": [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in scored],
        "statuses": {s: sum(1 for t in summaries if t["TrainingJobStatus"] == s) for s in ENDED},
        "tuning_s": tuning_s,
        "sequential_s": sequential_s,
        "sequential_completed": sum(1 for j in again if j["TrainingJobStatus"] == "Completed"),
        "speedup": sequential_s / tuning_s,
        "drop_to_end_s": drop_to_end,
    }
    print(json.dumps(result, indent=1))
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "tuning.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
