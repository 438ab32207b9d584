"""The closed loop on the local plane: v1 serves; drifted traffic is captured; the scheduled drift check
(fired now with `headrace local tick`) finds it; the drift alarm enters ALARM; exactly one retraining run
starts, passes the gate and rolls out as v2; a second alarm episode inside the cooldown starts nothing and
the ledger says why."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from headrace.datagen import generate
from headrace.ledger import DynamoLedger, RetrainDecision
from headrace.naming import Names, Outputs
from headrace.waiting import wait_for

from .conftest import RunningPlane, execution_failures
from .test_cli_and_state import headrace

pytestmark = pytest.mark.e2e

NAMES = Names("dev")
MODEL = "drifty"


def _executions(plane: RunningPlane, output: str) -> list[dict[str, Any]]:
    arn = plane.info.outputs[NAMES.pipeline_stack][output]
    executions = plane.clients.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
    return sorted(executions, key=lambda e: e["startDate"])


def _ended(plane: RunningPlane, output: str, count: int, timeout_s: float = 240) -> dict[str, Any]:
    sfn = plane.clients.client("stepfunctions")

    def ended() -> dict[str, Any] | None:
        executions = _executions(plane, output)
        if len(executions) < count:
            return None
        described = sfn.describe_execution(executionArn=executions[count - 1]["executionArn"])
        return dict(described) if described["status"] != "RUNNING" else None

    described = wait_for(ended, f"execution {count} of {output}", timeout_s=timeout_s, interval_s=0.5)
    if described["status"] != "SUCCEEDED":
        described["failures"] = execution_failures(plane, described["executionArn"])
    return described


def _decisions(plane: RunningPlane) -> list[dict[str, Any]]:
    ledger = DynamoLedger(plane.clients.client("dynamodb"), plane.deployment.ledger_table)
    return [i.model_dump(mode="json") for i in ledger.partition(MODEL) if isinstance(i, RetrainDecision)]


@pytest.fixture(scope="module")
def loop(plane: RunningPlane) -> dict[str, Any]:
    model = plane.models[MODEL]
    info = plane.deployment.model(MODEL)
    frame = generate(model, 3000, seed=41)
    plane.clients.s3.put_object(
        Bucket=info.data_bucket, Key=f"{info.incoming_prefix}v1.csv", Body=frame.to_csv(index=False)
    )
    first = _ended(plane, Outputs.deploy_state_machine(MODEL), 1)
    assert first["status"] == "SUCCEEDED", first

    features = [c.name for c in model.data.features]
    drifted = (
        generate(model, 1000, seed=42, drift=1.0)[features].to_csv(index=False, header=False).splitlines()
    )
    runtime = plane.clients.client("sagemaker-runtime")
    started = time.monotonic()
    for i in range(0, len(drifted), 100):
        runtime.invoke_endpoint(
            EndpointName=NAMES.endpoint(MODEL),
            Body="\n".join(drifted[i : i + 100]) + "\n",
            ContentType="text/csv",
        )
    prefix = f"{MODEL}/capture/{NAMES.endpoint(MODEL)}/"
    wait_for(
        lambda: (
            plane.clients.s3.list_objects_v2(Bucket=info.data_bucket, Prefix=prefix).get("KeyCount") or None
        ),
        "captured traffic in S3",
        timeout_s=15,
    )
    time.sleep(1.5)  # the last second's capture file
    ticked = headrace(
        "local",
        "tick",
        "--schedules",
        "--name",
        NAMES.drift_schedule(MODEL),
        "--json",
        "--work-dir",
        str(plane.work_dir),
        plane=plane,
    )
    assert ticked.returncode == 0, ticked.stdout + ticked.stderr
    check = _ended(plane, Outputs.drift_state_machine(MODEL), 1, timeout_s=120)
    retrained = _ended(plane, Outputs.deploy_state_machine(MODEL), 2, timeout_s=300)
    serving_after = time.monotonic() - started
    return {
        "ticked": json.loads(ticked.stdout),
        "check": check,
        "retrained": retrained,
        "seconds": serving_after,
    }


def test_the_scheduled_check_finds_the_drifted_traffic(loop: dict[str, Any]) -> None:
    assert [s["name"] for s in loop["ticked"]["schedules"]] == [NAMES.drift_schedule(MODEL)]
    assert loop["check"]["status"] == "SUCCEEDED", loop["check"]
    check = json.loads(loop["check"]["output"])["check"]
    assert check["status"] == "drifted"
    assert check["rows"] == 1000
    assert "tenure_months" in check["drifted_features"]


def test_the_drift_alarm_starts_exactly_one_retraining_that_rolls_out_as_v2(
    plane: RunningPlane, loop: dict[str, Any]
) -> None:
    alarm = plane.clients.client("cloudwatch").describe_alarms(AlarmNames=[NAMES.model_alarm(MODEL, "drift")])
    assert alarm["MetricAlarms"][0]["StateValue"] == "ALARM"
    started = [d for d in _decisions(plane) if d["decision"] == "started"]
    assert len(started) == 1
    assert started[0]["alarm"] == NAMES.model_alarm(MODEL, "drift")
    runs = _executions(plane, Outputs.training_state_machine(MODEL))
    assert [r["name"] for r in runs if "retrain-" in r["name"]] == [
        started[0]["execution_arn"].rsplit(":", 1)[1]
    ]
    assert loop["retrained"]["status"] == "SUCCEEDED", loop["retrained"]
    endpoint = plane.clients.client("sagemaker").describe_endpoint(EndpointName=NAMES.endpoint(MODEL))
    assert endpoint["EndpointConfigName"].startswith(f"headrace-dev-{MODEL}-v2-")
    print(f"drifted traffic -> retrained v2 serving: {loop['seconds']:.1f}s")


def test_a_second_alarm_inside_the_cooldown_starts_nothing_and_says_why(
    plane: RunningPlane, loop: dict[str, Any]
) -> None:
    cloudwatch = plane.clients.client("cloudwatch")
    alarm = NAMES.model_alarm(MODEL, "drift")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="e2e: the episode ended")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="e2e: a second episode")
    skipped = wait_for(
        lambda: [d for d in _decisions(plane) if d["decision"] == "skipped"] or None,
        "the second episode's decision",
        timeout_s=30,
    )
    assert "cooldown" in skipped[0]["reason"] and "cooldown_minutes = 60" in skipped[0]["reason"]
    assert len([d for d in _decisions(plane) if d["decision"] == "started"]) == 1
    status = headrace("status", "--json", "--models-dir", str(plane.models_dir), plane=plane)
    assert status.returncode == 0, status.stderr
    reported = [r for r in json.loads(status.stdout)["retrains"] if r["model"] == MODEL]
    assert {r["decision"] for r in reported} == {"started", "skipped"}


def test_a_check_with_no_new_traffic_reports_too_little_traffic_not_drift(
    plane: RunningPlane, loop: dict[str, Any], tmp_path: Any
) -> None:
    report = tmp_path / "drift.html"
    done = headrace(
        "drift", MODEL, "--json", "--html", str(report), "--models-dir", str(plane.models_dir), plane=plane
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert result["check"]["status"] == "too_little_traffic"
    assert result["result"]["drifted"] is False
    assert "<svg" in report.read_text()
