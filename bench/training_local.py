"""The loop on the local plane: wall time from a file landing in S3 to a registered version (each state's
share from the execution history), and on to that version serving on its endpoint (the deploy workflow,
started by the registry's approval event: the shipped model is approved by its gate).

Reference, measured in the same run: the trainer alone (containers/train/train as a subprocess on the same
rows, already split), i.e. the floor any pipeline around it has to pay. The ratio is the pipeline's
overhead: ingest, splits, S3 transfers, evaluation, gate and registry.

    .venv/bin/python bench/training_local.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from headrace.config import load_models
from headrace.datagen import generate
from headrace.local.control import start_detached, stop_detached
from headrace.naming import execution_name
from headrace.training_job import hyperparameters_for
from headrace.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]


def trainer_alone(rows: int, seed: int, device: str | None = None) -> float:
    model = next(m for m in load_models() if m.name == "churn")
    frame = generate(model, rows, seed=seed)
    with tempfile.TemporaryDirectory() as root:
        parts = {
            "train": frame.iloc[: int(rows * 0.6)],
            "validation": frame.iloc[int(rows * 0.6) : int(rows * 0.8)],
        }
        parts["test"] = frame.iloc[int(rows * 0.8) :]
        for name, part in parts.items():
            (Path(root) / "input" / "data" / name).mkdir(parents=True)
            part.to_csv(Path(root) / "input" / "data" / name / "data.csv", index=False)
        (Path(root) / "input" / "config").mkdir(parents=True)
        hyperparameters = hyperparameters_for(model) | ({"device": device} if device else {})
        (Path(root) / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        env = {**os.environ, "HEADRACE_OPT_ML": root, "OMP_WAIT_POLICY": "PASSIVE"}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "containers" / "train" / "train")],
            env=env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    model = next(m for m in load_models() if m.name == "churn")
    body = generate(model, args.rows, seed=int(time.time())).to_csv(index=False).encode()
    name = execution_name("churn", hashlib.sha256(body).hexdigest())
    with tempfile.TemporaryDirectory() as work:
        info = start_detached(work_dir=Path(work))
        try:
            clients = info.clients()
            bucket = info.outputs["headrace-dev-data"]["DataBucketName"]
            machine = info.outputs["headrace-dev-pipeline"]["TrainingStateMachineChurn"]
            arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
            sfn = clients.client("stepfunctions")
            started = time.perf_counter()
            clients.s3.put_object(Bucket=bucket, Key="churn/incoming/bench.csv", Body=body)

            def finished() -> dict[str, object] | None:
                try:
                    described = sfn.describe_execution(executionArn=arn)
                except sfn.exceptions.ExecutionDoesNotExist:
                    return None
                return dict(described) if described["status"] != "RUNNING" else None

            execution = wait_for(finished, "the training run", timeout_s=600, interval_s=0.2)
            total = time.perf_counter() - started
            if execution["status"] != "SUCCEEDED":
                # A failed run ends early: its time says nothing about the pipeline's overhead.
                raise SystemExit(
                    f"the training run ended {execution['status']}: {execution.get('cause', '')}"
                )
            history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            deploy_machine = info.outputs["headrace-dev-pipeline"]["DeployStateMachineChurn"]

            def deployed() -> dict[str, object] | None:
                executions = sfn.list_executions(stateMachineArn=deploy_machine)["executions"]
                done = [e for e in executions if e["status"] != "RUNNING"]
                return dict(done[0]) if done else None

            deployment = wait_for(deployed, "the deployment", timeout_s=300, interval_s=0.2)
            serving = time.perf_counter() - started
            if deployment["status"] != "SUCCEEDED":
                raise SystemExit(f"the deployment ended {deployment['status']}")
            # Approved at registration (gate.approval: auto): the registry's event starts the deploy workflow.
            approval_to_serving = (deployment["stopDate"] - execution["stopDate"]).total_seconds()  # type: ignore[operator]
            row = (
                generate(model, 1, seed=3).drop(columns=[model.data.target]).to_csv(index=False, header=False)
            )
            clients.client("sagemaker-runtime").invoke_endpoint(
                EndpointName="headrace-dev-churn", Body=row, ContentType="text/csv"
            )
        finally:
            stop_detached(Path(work))
    entered = {
        e["stateEnteredEventDetails"]["name"]: e["timestamp"]
        for e in history
        if "stateEnteredEventDetails" in e
    }
    exited = {
        e["stateExitedEventDetails"]["name"]: e["timestamp"]
        for e in history
        if "stateExitedEventDetails" in e
    }
    steps = {s: (exited[s] - entered[s]).total_seconds() for s in entered if s in exited}
    alone = trainer_alone(args.rows, seed=1)
    print(f"status {execution['status']}; {args.rows:,} rows, {len(body) / 1e6:.1f} MB CSV")
    print(f"drop → registered: {total:.1f}s; trainer alone: {alone:.1f}s; ratio {total / alone:.1f}")
    for step, seconds in steps.items():
        print(f"  {step:10} {seconds:6.1f}s")
    print(f"approval → serving: {approval_to_serving:.1f}s; drop → serving: {serving:.1f}s")
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    result = {
        "rows": args.rows,
        "status": execution["status"],
        "drop_to_registered_s": total,
        "trainer_alone_s": alone,
        "steps_s": steps,
        "approval_to_serving_s": approval_to_serving,
        "drop_to_serving_s": serving,
    }
    (out / "training_local.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
