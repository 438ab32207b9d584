"""The closed loop on the local plane, timed: drifted traffic reaching the endpoint -> the drift check
(fired now, as its schedule would) -> the drift alarm -> one retraining run -> gate -> the retrained version
serving after its canary rollout. And, on the way there, a dataset drop -> v1 serving.

What the loop pays by design is printed beside it: the rollout's configured waits (canary interval + bake).
The trainer alone on 100k rows is bench/training_local.py's reference.

    .venv/bin/python bench/loop_local.py [--rows 20000] [--traffic 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from headrace.config import load_models
from headrace.datagen import generate
from headrace.local.aws import Clients
from headrace.local.control import start_detached, stop_detached
from headrace.local.control_server import TickRequest, request_tick
from headrace.local.plane_info import read_info
from headrace.naming import Names, Outputs
from headrace.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
NAMES = Names("dev")
MODEL = "churn"
# Rollout timings for the bench (the shipped model waits minutes between canary steps).
WAIT_S, BAKE_S = 3, 2


def models_dir(root: Path) -> Path:
    churn = yaml.safe_load((REPO / "models" / "churn.yaml").read_text())
    churn["rollout"] |= {"wait_interval_s": WAIT_S, "bake_s": BAKE_S}
    churn["monitoring"] |= {"min_rows": 200}
    (root / "churn.yaml").write_text(yaml.safe_dump(churn))
    return root


def ended(clients: Clients, machine: str, count: int, timeout_s: float = 600) -> dict[str, Any]:
    sfn = clients.client("stepfunctions")

    def check() -> dict[str, Any] | None:
        executions = sorted(
            sfn.list_executions(stateMachineArn=machine)["executions"], key=lambda e: e["startDate"]
        )
        if len(executions) < count:
            return None
        described = sfn.describe_execution(executionArn=executions[count - 1]["executionArn"])
        return dict(described) if described["status"] != "RUNNING" else None

    return wait_for(
        check, f"execution {count} of {machine.rsplit(':', 1)[-1]}", timeout_s=timeout_s, interval_s=0.2
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--traffic", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        (root / "models").mkdir()
        models = models_dir(root / "models")
        model = next(m for m in load_models(models) if m.name == MODEL)
        info = start_detached(work_dir=root / "plane", models_dir=models)
        try:
            clients = info.clients()
            outputs = info.outputs[NAMES.pipeline_stack]
            bucket = info.outputs[NAMES.data_stack]["DataBucketName"]
            frame = generate(model, args.rows, seed=5)
            started = time.perf_counter()
            clients.s3.put_object(
                Bucket=bucket, Key=f"{MODEL}/incoming/bench.csv", Body=frame.to_csv(index=False)
            )
            first = ended(clients, outputs[Outputs.deploy_state_machine(MODEL)], 1)
            drop_to_serving = time.perf_counter() - started
            if first["status"] != "SUCCEEDED":
                raise SystemExit(f"v1 was not deployed: {first.get('cause')}")

            features = [c.name for c in model.data.features]
            rows = generate(model, args.traffic, seed=6, drift=1.0)[features].to_csv(
                index=False, header=False
            )
            lines = rows.splitlines()
            runtime = clients.client("sagemaker-runtime")
            started = time.perf_counter()
            for i in range(0, len(lines), 100):
                runtime.invoke_endpoint(
                    EndpointName=NAMES.endpoint(MODEL),
                    Body="\n".join(lines[i : i + 100]) + "\n",
                    ContentType="text/csv",
                )
            time.sleep(1.5)  # data capture writes each second's records
            plane = read_info(root / "plane")
            assert plane is not None and plane.control_port is not None
            request_tick(
                plane.control_port,
                TickRequest(schedules=True, alarms=False, names=[NAMES.drift_schedule(MODEL)]),
                plane.credentials.secret_access_key,
            )
            check = ended(clients, outputs[Outputs.drift_state_machine(MODEL)], 1)
            checked = time.perf_counter() - started
            second = ended(clients, outputs[Outputs.deploy_state_machine(MODEL)], 2)
            traffic_to_serving = time.perf_counter() - started
            if second["status"] != "SUCCEEDED":
                raise SystemExit(f"the retrained version was not deployed: {second.get('cause')}")
            outcome = json.loads(check["output"])["check"]
        finally:
            stop_detached(root / "plane")
    waits = WAIT_S + BAKE_S
    print(f"drop ({args.rows:,} rows) → v1 serving: {drop_to_serving:.1f}s")
    print(
        f"drifted traffic ({args.traffic:,} rows) → drift check {outcome['status']} in {checked:.1f}s → "
        f"retrained v2 serving: {traffic_to_serving:.1f}s (of which the rollout's configured waits: {waits}s)"
    )
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "loop_local.json").write_text(
        json.dumps(
            {
                "rows": args.rows,
                "traffic_rows": args.traffic,
                "drop_to_serving_s": drop_to_serving,
                "traffic_to_check_s": checked,
                "traffic_to_retrained_serving_s": traffic_to_serving,
                "rollout_waits_s": waits,
                "check": outcome,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
