"""Serving on the local plane: an approved version reaches its endpoint through the deploy workflow CDK
synthesized; plain boto3 `invoke_endpoint` gets the model's own predictions; v2 rolls out by canary while a
client calls without one failure; a version answering 5xx trips the guard alarm and is rolled back (and the
workflow says so); a rejected version deploys nothing."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from headrace.approval import set_approval
from headrace.datagen import generate
from headrace.encoding import model_input
from headrace.naming import Names, Outputs
from headrace.runs import list_runs
from headrace.waiting import wait_for

from .conftest import RunningPlane, execution_failures
from .test_cli_and_state import headrace

pytestmark = pytest.mark.e2e

NAMES = Names("dev")


def _drop(plane: RunningPlane, model: str, seed: int, rows: int = 3000) -> pd.DataFrame:
    frame = generate(plane.models[model], rows, seed=seed)
    info = plane.deployment.model(model)
    plane.clients.s3.put_object(
        Bucket=info.data_bucket, Key=f"{info.incoming_prefix}seed-{seed}.csv", Body=frame.to_csv(index=False)
    )
    return frame


def _deploy_executions(plane: RunningPlane, model: str) -> list[dict[str, Any]]:
    arn = plane.info.outputs[NAMES.pipeline_stack][Outputs.deploy_state_machine(model)]
    sfn = plane.clients.client("stepfunctions")
    return list(sfn.list_executions(stateMachineArn=arn)["executions"])


def _deployment(plane: RunningPlane, model: str, count: int) -> dict[str, Any]:
    """The `count`-th deploy execution of `model`, once it has ended."""
    sfn = plane.clients.client("stepfunctions")

    def ended() -> dict[str, Any] | None:
        executions = _deploy_executions(plane, model)
        if len(executions) < count:
            return None
        oldest_first = sorted(executions, key=lambda e: e["startDate"])
        described = sfn.describe_execution(executionArn=oldest_first[count - 1]["executionArn"])
        return dict(described) if described["status"] != "RUNNING" else None

    return wait_for(ended, f"deployment {count} of {model} to end", timeout_s=240, interval_s=0.5)


def _package(plane: RunningPlane, model: str, version: int) -> dict[str, Any]:
    sagemaker = plane.clients.client("sagemaker")
    arn = (
        f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{NAMES.model_package_group(model)}/{version}"
    )
    return dict(sagemaker.describe_model_package(ModelPackageName=arn))


def _artifact(plane: RunningPlane, url: str) -> dict[str, bytes]:
    bucket, key = url.removeprefix("s3://").split("/", 1)
    body = plane.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _in_process(files: dict[str, bytes], frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """The version's booster, loaded here, on rows encoded as the trainer encodes them."""
    described = json.loads(files["features.json"])
    booster = xgb.Booster()
    booster.load_model(bytearray(files["model.json"]))
    inputs = model_input(frame, described["features"], described["categorical"])
    return np.asarray(booster.predict(xgb.DMatrix(inputs, enable_categorical=True)))


def _csv(frame: pd.DataFrame, model: Any) -> str:
    features = [c.name for c in model.data.features]
    return frame[features].to_csv(index=False, header=False)


@dataclass
class Caller:
    """A client calling the endpoint without pause, as production traffic would, recording every answer."""

    plane: RunningPlane
    endpoint: str
    body: str
    answers: list[tuple[float, float | None, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        runtime = self.plane.clients.client("sagemaker-runtime")
        while not self._stop.is_set():
            try:
                response = runtime.invoke_endpoint(
                    EndpointName=self.endpoint, Body=self.body, ContentType="text/csv"
                )
                score = float(json.loads(response["Body"].read())["predictions"][0])
                self.answers.append((time.monotonic(), score, None))
            except Exception as exc:
                self.answers.append((time.monotonic(), None, f"{type(exc).__name__}: {exc}"))

    @classmethod
    @contextlib.contextmanager
    def running(cls, plane: RunningPlane, endpoint: str, body: str) -> Iterator[Caller]:
        caller = cls(plane, endpoint, body)
        thread = threading.Thread(target=caller._run, daemon=True)
        thread.start()
        try:
            yield caller
        finally:
            caller._stop.set()
            thread.join(timeout=30)

    @property
    def errors(self) -> list[str]:
        return [e for _, _, e in self.answers if e]


@pytest.fixture(scope="module")
def shop_v1(plane: RunningPlane) -> pd.DataFrame:
    frame = _drop(plane, "shop", seed=101)
    execution = _deployment(plane, "shop", 1)
    assert execution["status"] == "SUCCEEDED", execution
    return frame


def test_an_approved_version_serves_its_own_predictions_to_plain_boto3(
    plane: RunningPlane, shop_v1: pd.DataFrame
) -> None:
    sagemaker = plane.clients.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=NAMES.endpoint("shop"))
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"].startswith("headrace-dev-shop-v1-")
    rows = shop_v1.head(25)
    response = plane.clients.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=NAMES.endpoint("shop"), Body=_csv(rows, plane.models["shop"]), ContentType="text/csv"
    )
    served = np.asarray(json.loads(response["Body"].read())["predictions"])
    files = _artifact(
        plane, _package(plane, "shop", 1)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    )
    np.testing.assert_allclose(served, _in_process(files, rows), rtol=0, atol=1e-6)
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_a_bad_payload_is_the_model_s_4xx_not_a_failure_of_the_endpoint(
    plane: RunningPlane, shop_v1: pd.DataFrame
) -> None:
    runtime = plane.clients.client("sagemaker-runtime")
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=NAMES.endpoint("shop"), Body="1,2\n", ContentType="text/csv")
    assert raised.value.response["OriginalStatusCode"] == 400
    assert "the model takes 8" in raised.value.response["OriginalMessage"]


def test_invocations_are_captured_and_counted(plane: RunningPlane, shop_v1: pd.DataFrame) -> None:
    runtime = plane.clients.client("sagemaker-runtime")
    body = _csv(shop_v1.head(1), plane.models["shop"])
    for _ in range(5):
        runtime.invoke_endpoint(EndpointName=NAMES.endpoint("shop"), Body=body, ContentType="text/csv")
    info = plane.deployment.model("shop")
    prefix = f"shop/capture/{NAMES.endpoint('shop')}/AllTraffic/"

    def captured() -> list[dict[str, Any]] | None:
        listed = plane.clients.s3.list_objects_v2(Bucket=info.data_bucket, Prefix=prefix).get("Contents", [])
        lines = [
            json.loads(line)
            for item in listed
            for line in plane.clients.s3.get_object(Bucket=info.data_bucket, Key=item["Key"])["Body"]
            .read()
            .splitlines()
        ]
        return lines if len(lines) >= 5 else None

    record = wait_for(captured, "captured invocations in S3", timeout_s=15)[-1]
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": body,
        "encoding": "CSV",
    }
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert record["eventMetadata"]["inferenceTime"].endswith("Z")
    cloudwatch = plane.clients.client("cloudwatch")
    dims = [
        {"Name": "EndpointName", "Value": NAMES.endpoint("shop")},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]

    def counted() -> float | None:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Invocations",
            Dimensions=dims,
            StartTime=time.time() - 600,
            EndTime=time.time() + 60,
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        total = sum(p["Sum"] for p in points)
        return total if total >= 5 else None

    wait_for(counted, "Invocations in CloudWatch", timeout_s=15)


@pytest.fixture(scope="module")
def shop_v2_rollout(plane: RunningPlane, shop_v1: pd.DataFrame) -> tuple[Caller, list[float], dict[str, Any]]:
    body = _csv(shop_v1.head(1), plane.models["shop"])
    sagemaker = plane.clients.client("sagemaker")
    shares: list[float] = []
    with Caller.running(plane, NAMES.endpoint("shop"), body) as caller:
        wait_for(lambda: len(caller.answers) >= 20 or None, "the caller's first answers", timeout_s=30)
        _drop(plane, "shop", seed=202)

        def watch() -> dict[str, Any] | None:
            pending = sagemaker.describe_endpoint(EndpointName=NAMES.endpoint("shop")).get(
                "PendingDeploymentSummary"
            )
            if pending:
                shares.append(pending["ProductionVariants"][0]["CurrentWeight"])
            executions = _deploy_executions(plane, "shop")
            return executions[0] if len(executions) >= 2 and executions[0]["status"] != "RUNNING" else None

        wait_for(watch, "v2's rollout to end", timeout_s=240, interval_s=0.2)
        time.sleep(1.0)
    return caller, shares, _deployment(plane, "shop", 2)


def test_rolling_out_v2_fails_no_call_and_moves_traffic_by_the_canary(
    shop_v2_rollout: tuple[Caller, list[float], dict[str, Any]], plane: RunningPlane
) -> None:
    caller, shares, execution = shop_v2_rollout
    assert execution["status"] == "SUCCEEDED", execution_failures(plane, execution["executionArn"])
    assert caller.errors == []
    # Traffic moved as configured: a 20% canary of a 2-instance fleet is one whole instance, so half the
    # traffic goes to the new fleet for the wait interval (SageMaker shifts by instances), then all of it.
    assert 0.5 in shares and 1.0 in shares
    assert shares.index(0.5) < shares.index(1.0)
    scores = [s for _, s, _ in caller.answers]
    v1, v2 = scores[0], scores[-1]
    assert v1 != v2, "the two versions score the test row alike; the test cannot tell them apart"
    first_v2 = scores.index(v2)
    last_v1 = len(scores) - 1 - scores[::-1].index(v1)
    assert first_v2 < last_v1, "no canary: traffic went over in one step"
    endpoint = plane.clients.client("sagemaker").describe_endpoint(EndpointName=NAMES.endpoint("shop"))
    assert endpoint["EndpointConfigName"].startswith("headrace-dev-shop-v2-")


def test_the_cli_lists_endpoints_and_predicts_from_a_csv(
    plane: RunningPlane,
    shop_v2_rollout: tuple[Caller, list[float], dict[str, Any]],
    shop_v1: pd.DataFrame,
    tmp_path: Path,
) -> None:
    listed = headrace("endpoints", "--json", "--models-dir", str(plane.models_dir), plane=plane)
    assert listed.returncode == 0, listed.stderr
    shop = next(e for e in json.loads(listed.stdout) if e["model"] == "shop")
    assert (shop["status"], shop["version"]) == ("InService", 2)
    rows = tmp_path / "rows.csv"
    rows.write_text(_csv(shop_v1.head(3), plane.models["shop"]))
    predicted = headrace(
        "predict",
        "shop",
        "--csv",
        str(rows),
        "--json-output",
        "--inference-id",
        "cli-request-1",
        "--models-dir",
        str(plane.models_dir),
        plane=plane,
    )
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    assert (len(answer["predictions"]), answer["inference_id"]) == (3, "cli-request-1")
    refused = headrace(
        "predict", "shop", "--json", "[[1, 2]]", "--models-dir", str(plane.models_dir), plane=plane
    )
    assert refused.returncode == 1 and "row 0" in refused.stdout + refused.stderr


def test_rollback_redeploys_an_older_version_on_purpose(
    plane: RunningPlane, shop_v2_rollout: tuple[Caller, list[float], dict[str, Any]]
) -> None:
    done = headrace(
        "rollback", "shop", "1", "--reason", "e2e", "--models-dir", str(plane.models_dir), plane=plane
    )
    assert done.returncode == 0, done.stdout + done.stderr
    endpoint = plane.clients.client("sagemaker").describe_endpoint(EndpointName=NAMES.endpoint("shop"))
    assert endpoint["EndpointConfigName"].startswith("headrace-dev-shop-v1-")


def test_a_version_answering_5xx_trips_the_alarm_and_is_rolled_back(
    plane: RunningPlane, shop_v2_rollout: tuple[Caller, list[float], dict[str, Any]], shop_v1: pd.DataFrame
) -> None:
    sagemaker = plane.clients.client("sagemaker")
    good = _package(plane, "shop", 2)
    container = good["InferenceSpecification"]["Containers"][0]
    # A deliberately broken model (containers/serve/CONTRACT.md, the fault hook), approved like any other.
    files = _artifact(plane, container["ModelDataUrl"])
    files["features.json"] = json.dumps(json.loads(files["features.json"]) | {"fault": "5xx"}).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    bucket = plane.deployment.model("shop").data_bucket
    serving_before = sagemaker.describe_endpoint(EndpointName=NAMES.endpoint("shop"))["EndpointConfigName"]
    deployments_before = len(_deploy_executions(plane, "shop"))
    plane.clients.s3.put_object(
        Bucket=bucket, Key="shop/runs/broken/output/model.tar.gz", Body=archive.getvalue()
    )
    body = _csv(shop_v1.head(1), plane.models["shop"])
    with Caller.running(plane, NAMES.endpoint("shop"), body) as caller:
        sagemaker.create_model_package(
            ModelPackageGroupName=NAMES.model_package_group("shop"),
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": container["Image"],
                        "ModelDataUrl": f"s3://{bucket}/shop/runs/broken/output/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )
        execution = _deployment(plane, "shop", deployments_before + 1)
        rolled_back_at = time.monotonic()
        time.sleep(1.0)
    assert execution["status"] == "FAILED"
    assert "v3 was rolled back" in execution["cause"] and "headrace-dev-shop-5xx" in execution["cause"]
    endpoint = sagemaker.describe_endpoint(EndpointName=NAMES.endpoint("shop"))
    assert endpoint["EndpointConfigName"] == serving_before
    # The old version served throughout: the only failures were the canary's share, none after the rollback.
    served = [s for _, s, e in caller.answers if e is None]
    assert served and len(served) > len(caller.errors)
    assert all("ModelError" in e and "(500)" in e for e in caller.errors)
    assert [e for t, _, e in caller.answers if e and t > rolled_back_at] == []
    alarm = plane.clients.client("cloudwatch").describe_alarms(AlarmNames=["headrace-dev-shop-5xx"])
    assert alarm["MetricAlarms"][0]["StateValue"] == "ALARM"


def test_rejecting_a_version_deploys_nothing_and_approving_it_serves_it(plane: RunningPlane) -> None:
    _drop(plane, "reviewed", seed=303)
    table = plane.deployment.ledger_table
    dynamodb = plane.clients.client("dynamodb")
    run = wait_for(
        lambda: next((r for r in list_runs(dynamodb, table, "reviewed") if r.model_package_arn), None),
        "reviewed's first version",
        timeout_s=180,
        interval_s=0.5,
    )
    sagemaker = plane.clients.client("sagemaker")
    group = NAMES.model_package_group("reviewed")
    set_approval(sagemaker, dynamodb, table, "reviewed", group, 1, "Rejected", "not this one")
    time.sleep(3)
    assert _deploy_executions(plane, "reviewed") == []
    with pytest.raises(sagemaker.exceptions.ClientError):
        sagemaker.describe_endpoint(EndpointName=NAMES.endpoint("reviewed"))

    set_approval(sagemaker, dynamodb, table, "reviewed", group, 1, "Approved", "on second thought")
    execution = _deployment(plane, "reviewed", 1)
    assert execution["status"] == "SUCCEEDED", execution
    assert run.model_package_arn.endswith("/1")
    endpoint = sagemaker.describe_endpoint(EndpointName=NAMES.endpoint("reviewed"))
    assert endpoint["EndpointStatus"] == "InService"
