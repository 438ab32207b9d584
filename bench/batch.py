"""Batch scoring on the local plane, timed end to end: a CSV of ROWS rows dropped under
`<model>/batch/incoming/` -> ingest validates it and writes the transform input -> the batch state machine ->
a transform job (the serving container, driven in mini-batches) -> the output complete and recorded (the
ledger's Completed item, written once the output objects are). Reference, in the same run: the same rows
encoded and predicted in-process with the same booster (headrace.encoding.model_input + Booster.predict).
Goal: at least half the in-process rate.

    .venv/bin/python bench/batch.py [--rows 1000000] [--instances 2]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import xgboost as xgb
import yaml

from headrace.config import load_models
from headrace.datagen import generate
from headrace.encoding import model_input
from headrace.ledger import DynamoLedger
from headrace.ledger.batches import FINISHED_BATCH
from headrace.local.control import start_detached, stop_detached
from headrace.naming import Names, Outputs
from headrace.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
NAMES = Names("dev")
MODEL = "churn"
GOAL = 0.5


def models_dir(root: Path, instances: int) -> Path:
    churn = yaml.safe_load((REPO / "models" / "churn.yaml").read_text())
    churn["rollout"] |= {"wait_interval_s": 2, "bake_s": 1}
    churn["batch"] = {"instance_count": instances}
    (root / "churn.yaml").write_text(yaml.safe_dump(churn))
    return root


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--instances", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        (root / "models").mkdir()
        model = load_models(models_dir(root / "models", args.instances))[0]
        info = start_detached(work_dir=root / "plane", models_dir=root / "models")
        try:
            clients = info.clients()
            outputs = info.outputs[NAMES.pipeline_stack]
            bucket = info.outputs[NAMES.data_stack]["DataBucketName"]
            ledger = DynamoLedger(
                clients.client("dynamodb"), info.outputs[NAMES.data_stack]["LedgerTableName"]
            )
            clients.s3.put_object(
                Bucket=bucket,
                Key=f"{MODEL}/incoming/train.csv",
                Body=generate(model, 20_000, seed=5).to_csv(index=False),
            )
            sfn = clients.client("stepfunctions")
            machine = outputs[Outputs.deploy_state_machine(MODEL)]

            def deployed() -> dict[str, object] | None:
                found = sfn.list_executions(stateMachineArn=machine)["executions"]
                return found[0] if found and found[0]["status"] != "RUNNING" else None

            if wait_for(deployed, "v1 serving", timeout_s=600, interval_s=0.5)["status"] != "SUCCEEDED":
                raise SystemExit("v1 was not deployed")
            sagemaker = clients.client("sagemaker")
            config = sagemaker.describe_endpoint(EndpointName=NAMES.endpoint(MODEL))["EndpointConfigName"]
            variant = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
            url = sagemaker.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["ModelDataUrl"]
            archive = clients.s3.get_object(Bucket=bucket, Key=url.split("/", 3)[3])["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                files = {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]

            frame = generate(model, args.rows, seed=7).drop(columns=[model.data.target])
            body = frame.to_csv(index=False).encode()

            # The reference: the same rows, encoded and predicted in this process with the same booster.
            described = json.loads(files["features.json"])
            booster = xgb.Booster()
            booster.load_model(bytearray(files["model.json"]))
            started = time.perf_counter()
            inputs = model_input(frame, described["features"], described["categorical"])
            reference = np.asarray(booster.predict(xgb.DMatrix(inputs, enable_categorical=True)))
            in_process_s = time.perf_counter() - started

            key = f"{MODEL}/batch/incoming/bench.csv"
            started = time.perf_counter()
            clients.s3.put_object(Bucket=bucket, Key=key, Body=body)

            def finished() -> object | None:
                mine = [b for b in ledger.batches(MODEL) if b.input_key == key]
                return mine[0] if mine and mine[0].status in FINISHED_BATCH else None

            dropped_at = time.time()
            item = wait_for(finished, "the batch job to end", timeout_s=1800, interval_s=0.2)
            plane_s = time.perf_counter() - started
            ended_at = time.time()
            # Where the time went: ingest (drop -> execution), the transform job, the rest (Resolve, Record).
            execution = sfn.describe_execution(executionArn=item.execution_arn)  # type: ignore[attr-defined]
            job = sagemaker.describe_transform_job(TransformJobName=item.job_name)  # type: ignore[attr-defined]
            stages = {
                "ingest_s": execution["startDate"].timestamp() - dropped_at,
                "transform_s": (job["TransformEndTime"] - job["TransformStartTime"]).total_seconds(),
                "record_s": ended_at - job["TransformEndTime"].timestamp(),
            }
            if item.status != "Completed":  # type: ignore[attr-defined]
                raise SystemExit(f"the batch was not scored: {item}")
        finally:
            stop_detached(root / "plane")
    plane_rate, reference_rate = args.rows / plane_s, args.rows / in_process_s
    ratio = plane_rate / reference_rate
    print(
        f"{args.rows:,} rows, {len(body) / 1e6:.0f} MB CSV, {args.instances} transform instance(s): "
        f"drop → output complete {plane_s:.1f}s ({plane_rate:,.0f} rows/s); in-process encode + predict "
        f"{in_process_s:.1f}s ({reference_rate:,.0f} rows/s): {ratio:.2f}x of in-process (goal ≥ {GOAL}x); "
        f"{len(reference):,} reference scores; stages: "
        + ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in stages.items())
    )
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "batch.json").write_text(
        json.dumps(
            {
                "rows": args.rows,
                "csv_mb": len(body) / 1e6,
                "instances": args.instances,
                "plane_s": plane_s,
                "in_process_s": in_process_s,
                "ratio": ratio,
                "goal": GOAL,
                **stages,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
