"""EndpointHosting against a stub container: a few lines of Python answering /ping and /invocations under
SageMaker's container contract, registered as the image, so that hosting's own behaviour (create, invoke,
traffic split, blue/green update and rollback, data capture, a dead container) is tested without the real
model server, through moto's SageMaker API with the hosting seam installed."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from headrace.local.aws import Clients
from headrace.local.network import free_port
from headrace.local.sagemaker.containers import ImageRegistry
from headrace.local.sagemaker.hosting import EndpointHosting, served
from headrace.local.seams.sagemaker import MotoSageMakerRecords, hosting_installed
from headrace.waiting import wait_for
from tests.support.moto import PLANE_CREDENTIALS, sagemaker_runtime

ROLE = "arn:aws:iam::123456789012:role/hosting"
BUCKET = "models"
# The container contract hosting honours: the model under $HEADRACE_OPT_ML/model, the port in $PORT, the
# Model's Environment; `crash` kills the process mid-request, `bad` is a client error from the model.
STUB_SERVE = """
import json, os, pathlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = (pathlib.Path(os.environ["HEADRACE_OPT_ML"]) / "model" / "model.txt").read_text()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.answer(200 if self.path == "/ping" else 404, b"{}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if body == b"crash":
            os._exit(1)
        if body == b"bad":
            return self.answer(400, b"bad input")
        answer = {"model": MODEL, "greeting": os.environ.get("GREETING"), "body": body.decode()}
        self.answer(200, json.dumps(answer).encode())

    def answer(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


print(f"stub serving {MODEL}", flush=True)
ThreadingHTTPServer((os.environ["HEADRACE_SERVE_HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"""
BROKEN_SERVE = "import sys\nprint('cannot load the model', flush=True)\nsys.exit(3)\n"


@dataclass
class Hosting:
    clients: Clients
    hosting: EndpointHosting
    sagemaker: Any
    runtime: Any
    alarms: dict[str, str] = field(default_factory=dict)

    def model(self, name: str, version: str, image: str = "stub") -> str:
        key = f"{name}/{version}/model.tar.gz"
        self.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=_model_archive(version))
        self.sagemaker.create_model(
            ModelName=f"{name}-{version}",
            PrimaryContainer={
                "Image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/local:{image}",
                "ModelDataUrl": f"s3://{BUCKET}/{key}",
                "Environment": {"GREETING": f"hello from {version}"},
            },
            ExecutionRoleArn=ROLE,
        )
        return f"{name}-{version}"

    def config(
        self, name: str, variants: dict[str, str], capture: str | None = None, instances: int = 1
    ) -> str:
        extra: dict[str, Any] = {}
        if capture:
            extra["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": capture,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
            }
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": variant,
                    "ModelName": model,
                    "InitialInstanceCount": instances,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": 1.0,
                }
                for variant, model in variants.items()
            ],
            **extra,
        )
        return name

    def endpoint(self, name: str, config: str) -> dict[str, Any]:
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
        return self.settled(name)

    def settled(self, name: str) -> dict[str, Any]:
        """DescribeEndpoint once the endpoint is neither creating nor updating."""

        def done() -> dict[str, Any] | None:
            described: dict[str, Any] = self.sagemaker.describe_endpoint(EndpointName=name)
            return (
                None if described["EndpointStatus"] in ("Creating", "Updating", "RollingBack") else described
            )

        return wait_for(done, f"endpoint {name} to settle", timeout_s=30)

    def invoke(self, name: str, body: str, **extra: Any) -> tuple[dict[str, Any], str]:
        response = self.runtime.invoke_endpoint(
            EndpointName=name, Body=body.encode(), ContentType="text/csv", **extra
        )
        return json.loads(response["Body"].read()), response["InvokedProductionVariant"]


def _model_archive(version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = version.encode()
        info = tarfile.TarInfo("model.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _image(directory: Path, serve: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "serve").write_text(serve)
    return directory


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosting]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    clients = Clients(endpoint, credentials=PLANE_CREDENTIALS)
    clients.s3.create_bucket(Bucket=BUCKET)
    images = ImageRegistry()
    root = tmp_path_factory.mktemp("images")
    images.add("stub", _image(root / "stub", STUB_SERVE))
    images.add("broken", _image(root / "broken", BROKEN_SERVE))
    alarms: dict[str, str] = {}
    hosting = EndpointHosting(
        clients,
        images,
        tmp_path_factory.mktemp("work"),
        lambda names: {n: alarms[n] for n in names if n in alarms},
        MotoSageMakerRecords(clients.account, clients.region),
    )
    runtime = sagemaker_runtime(clients)
    with served(hosting), hosting_installed(hosting):
        yield Hosting(clients, hosting, clients.client("sagemaker"), runtime, alarms)
    server.stop()


def test_a_created_endpoint_serves_its_model_with_the_model_s_environment(local: Hosting) -> None:
    config = local.config("create-v1", {"AllTraffic": local.model("create", "v1")})
    described = local.endpoint("create", config)
    assert described["EndpointStatus"] == "InService"
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["AllTraffic"]
    answer, variant = local.invoke("create", "1,2,3")
    assert answer == {"model": "v1", "greeting": "hello from v1", "body": "1,2,3"}
    assert variant == "AllTraffic"


def test_the_container_s_output_goes_to_the_endpoint_s_log_group(local: Hosting) -> None:
    local.endpoint("logged", local.config("logged-v1", {"AllTraffic": local.model("logged", "v1")}))
    local.sagemaker.delete_endpoint(EndpointName="logged")  # the last lines are flushed when it exits
    logs = local.clients.client("logs")

    def logged() -> list[str]:
        events = logs.filter_log_events(logGroupName="/aws/sagemaker/Endpoints/logged")["events"]
        return [e["message"] for e in events]

    assert wait_for(logged, "the container's log lines", timeout_s=10) == ["stub serving v1"]


def test_a_container_that_exits_before_ping_fails_the_endpoint_with_the_reason(local: Hosting) -> None:
    model = local.model("broken", "v1", image="broken")
    described = local.endpoint("broken", local.config("broken-v1", {"AllTraffic": model}))
    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("The primary container for production variant AllTraffic did not pass the ping")
    assert "exited with 3 before answering /ping" in reason
    assert reason.endswith("Its last line: cannot load the model")  # the container's own words


def test_traffic_is_split_by_the_variants_weights_and_target_variant_picks_one(local: Hosting) -> None:
    variants = {"A": local.model("split", "a"), "B": local.model("split", "b")}
    local.endpoint("split", local.config("split-ab", variants))
    assert local.hosting.weights("split") == {"split-ab/A": 1.0, "split-ab/B": 1.0}
    seen = {local.invoke("split", "x")[1] for _ in range(40)}
    assert seen == {"A", "B"}
    answers = [local.invoke("split", "x", TargetVariant="B") for _ in range(5)]
    assert {(a["model"], variant) for a, variant in answers} == {("b", "B")}


def test_a_model_error_is_a_424_with_the_container_s_status_and_message(local: Hosting) -> None:
    local.endpoint("model-error", local.config("model-error-v1", {"AllTraffic": local.model("me", "v1")}))
    with pytest.raises(ClientError) as raised:
        local.invoke("model-error", "bad")
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 400
    assert error["OriginalMessage"] == "bad input"


def test_a_container_that_dies_mid_request_answers_503(local: Hosting) -> None:
    local.endpoint("dead", local.config("dead-v1", {"AllTraffic": local.model("dead", "v1")}))
    with pytest.raises(ClientError) as raised:
        local.invoke("dead", "crash")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert raised.value.response["Error"]["Code"] == "ServiceUnavailable"


def test_a_canary_update_shifts_traffic_then_serves_the_new_config_alone(local: Hosting) -> None:
    local.endpoint(
        "canary", local.config("canary-v1", {"AllTraffic": local.model("canary", "v1")}, instances=2)
    )
    local.config("canary-v2", {"AllTraffic": local.model("canary", "v2")}, instances=2)
    local.sagemaker.update_endpoint(
        EndpointName="canary",
        EndpointConfigName="canary-v2",
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    "WaitIntervalInSeconds": 1,
                },
                "TerminationWaitInSeconds": 0,
            }
        },
    )
    # A canary is whole instances: 10% of a fleet of two is one instance, so half of the traffic.
    halves = {"canary-v1/AllTraffic": 0.5, "canary-v2/AllTraffic": 0.5}
    wait_for(lambda: local.hosting.weights("canary") == halves, "the canary step", timeout_s=20)
    described = local.settled("canary")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "canary-v2")
    assert local.hosting.weights("canary") == {"canary-v2/AllTraffic": 1.0}
    assert local.invoke("canary", "1")[0]["model"] == "v2"


def test_a_guard_alarm_during_an_update_rolls_back_to_the_old_config(local: Hosting) -> None:
    local.endpoint("guarded", local.config("guarded-v1", {"AllTraffic": local.model("guarded", "v1")}))
    local.config("guarded-v2", {"AllTraffic": local.model("guarded", "v2")})
    local.alarms["guarded-5xx"] = "ALARM"
    local.sagemaker.update_endpoint(
        EndpointName="guarded",
        EndpointConfigName="guarded-v2",
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                "TerminationWaitInSeconds": 5,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "guarded-5xx"}]},
        },
    )
    described = local.settled("guarded")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "guarded-v1")
    assert local.hosting.weights("guarded") == {"guarded-v1/AllTraffic": 1.0}
    assert local.invoke("guarded", "1")[0]["model"] == "v1"


def test_an_update_of_an_endpoint_that_is_not_in_service_is_refused(local: Hosting) -> None:
    model = local.model("refused", "v1", image="broken")
    local.endpoint("refused", local.config("refused-v1", {"AllTraffic": model}))
    with pytest.raises(ClientError) as raised:
        local.sagemaker.update_endpoint(EndpointName="refused", EndpointConfigName="refused-v1")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot update in-progress endpoint" in raised.value.response["Error"]["Message"]


def test_captured_invocations_land_in_s3_in_sagemaker_s_format(local: Hosting) -> None:
    config = local.config(
        "captured-v1", {"AllTraffic": local.model("captured", "v1")}, capture=f"s3://{BUCKET}/capture"
    )
    local.endpoint("captured", config)
    local.invoke("captured", "4,5,6", InferenceId="order-17/row:0")

    def captured() -> list[str]:
        listed = local.clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="capture/captured/AllTraffic/")
        return [o["Key"] for o in listed.get("Contents", [])]

    [key] = wait_for(captured, "the captured record", timeout_s=10)
    record = json.loads(local.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "4,5,6",
        "encoding": "CSV",
    }
    output = record["captureData"]["endpointOutput"]
    assert (output["observedContentType"], output["encoding"]) == ("application/json", "BASE64")
    assert json.loads(base64.b64decode(output["data"]))["body"] == "4,5,6"
    metadata = record["eventMetadata"]
    assert metadata["inferenceId"] == "order-17/row:0"
    assert str(uuid.UUID(metadata["eventId"])) == metadata["eventId"]
    assert metadata["inferenceTime"].endswith("Z")


def test_an_inference_id_sagemaker_refuses_is_a_validation_error(local: Hosting) -> None:
    local.endpoint("refused-id", local.config("refused-id-v1", {"AllTraffic": local.model("rid", "v1")}))
    for inference_id, constraint in (
        ("x" * 65, "length less than or equal to 64"),
        ("order\t17", "regular expression pattern"),
    ):
        with pytest.raises(ClientError) as raised:
            local.invoke("refused-id", "1", InferenceId=inference_id)
        error = raised.value.response["Error"]
        assert error["Code"] == "ValidationError"
        assert "'inferenceId'" in error["Message"] and constraint in error["Message"]
    assert local.invoke("refused-id", "1", InferenceId="x" * 64)[0]["body"] == "1"


def test_a_deleted_endpoint_stops_its_containers(local: Hosting) -> None:
    local.endpoint("deleted", local.config("deleted-v1", {"AllTraffic": local.model("deleted", "v1")}))
    local.sagemaker.delete_endpoint(EndpointName="deleted")
    assert local.hosting.weights("deleted") == {}
    with pytest.raises(ClientError) as raised:
        local.invoke("deleted", "1")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
