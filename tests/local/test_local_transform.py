"""Transform jobs on the local plane: moto's SageMaker API with the transform seam installed, the model
trained by the real trainer and served by the real serve container (containers/serve, the endpoints' image),
driven as SageMaker's batch transform drives it; the job reached through boto3 and through a state
machine's `createTransformJob.sync` task."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.encoding import model_input
from headrace.local.aws import Clients
from headrace.local.sagemaker.containers import ImageRegistry
from headrace.local.sagemaker.training import TrainingCompute
from headrace.local.sagemaker.transform import TransformCompute
from headrace.local.seams import installed
from headrace.local.seams.sagemaker import MotoSageMakerRecords
from headrace.local.seams.targets import MotoTargets
from headrace.local.targets import EventDelivery, TargetDispatcher
from headrace.waiting import wait_for
from tests.integration.test_train_container import lay_out, train
from tests.support.moto import lambda_plane

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/local"
BUCKET = "transform"
ROWS = 10_000


@dataclass
class Transform:
    clients: Clients
    sagemaker: Any
    compute: TransformCompute
    model_dir: Path
    features: list[str]
    categorical: list[str]
    config: ModelConfig

    def create(self, name: str, uri: str, model: str = "churn-v1", **extra: Any) -> None:
        settings: dict[str, Any] = {
            "MaxPayloadInMB": 1,
            "MaxConcurrentTransforms": 2,
            "BatchStrategy": "MultiRecord",
            "DataProcessing": {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": "$"},
            **extra,
        }
        self.sagemaker.create_transform_job(**request(name, uri, model, settings))

    def settled(self, name: str, timeout_s: float = 120) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            described: dict[str, Any] = self.sagemaker.describe_transform_job(TransformJobName=name)
            return None if described["TransformJobStatus"] in ("InProgress", "Stopping") else described

        return wait_for(done, f"transform job {name}", timeout_s=timeout_s)

    def outputs(self, name: str) -> list[str]:
        listed = self.clients.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"output/{name}/")
        return [item["Key"] for item in listed.get("Contents", [])]


def request(name: str, uri: str, model: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{BUCKET}/output/{name}/",
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        **settings,
    }


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, example_model: ModelConfig) -> Iterator[Transform]:
    run = train(lay_out(tmp_path_factory.mktemp("opt_ml"), example_model))
    assert run.code == 0, run.output
    described = json.loads((run.root / "model" / "features.json").read_text())
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted((run.root / "model").iterdir()):
            tar.add(path, arcname=path.name)
    with lambda_plane(tmp_path_factory.mktemp("code"), "local") as moto:
        clients = moto.clients
        clients.s3.create_bucket(Bucket=BUCKET)
        clients.s3.put_object(Bucket=BUCKET, Key="models/v1/model.tar.gz", Body=archive.getvalue())
        sagemaker = clients.client("sagemaker")
        sagemaker.create_model(
            ModelName="churn-v1",
            PrimaryContainer={
                "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/assets:serve",
                "ModelDataUrl": f"s3://{BUCKET}/models/v1/model.tar.gz",
            },
            ExecutionRoleArn=ROLE,
        )
        images = ImageRegistry()
        images.add("serve", REPO / "containers" / "serve")
        records = MotoSageMakerRecords(clients.account, clients.region)
        compute = TransformCompute(clients, images, tmp_path_factory.mktemp("jobs"), records)
        delivery = EventDelivery(TargetDispatcher(MotoTargets()))
        delivery.start()
        # As the plane installs them: the training seam carries Step Functions' SageMaker integration.
        training = TrainingCompute(clients, images, tmp_path_factory.mktemp("training"), records)
        with installed(moto.runtime, delivery, training, transform=compute):
            yield Transform(
                clients,
                sagemaker,
                compute,
                run.root / "model",
                described["features"],
                described["categorical"],
                example_model,
            )
        delivery.stop()


def _rows(local: Transform, count: int, seed: int) -> str:
    """`count` rows as SageMaker's transform reads them: no header, the model's features in order."""
    frame = generate(local.config, count, seed=seed)[local.features]
    return str(frame.to_csv(index=False, header=False))


def _booster_scores(local: Transform, text: str) -> np.ndarray[Any, Any]:
    import xgboost as xgb

    frame = pd.read_csv(
        io.StringIO(text), header=None, names=local.features, dtype=dict.fromkeys(local.categorical, "string")
    )
    booster = xgb.Booster(model_file=local.model_dir / "model.json")
    inputs = model_input(frame, local.features, local.categorical)
    return np.asarray(booster.predict(xgb.DMatrix(inputs, enable_categorical=True)))


def test_a_transform_scores_every_row_as_the_booster_does_with_its_inputs_joined(local: Transform) -> None:
    text = _rows(local, ROWS, seed=5)
    local.clients.s3.put_object(Bucket=BUCKET, Key="input/ok/input.csv", Body=text.encode())
    local.create("ok", f"s3://{BUCKET}/input/ok/")
    described = local.settled("ok")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert "FailureReason" not in described
    assert local.outputs("ok") == ["output/ok/input.csv.out"]
    body = local.clients.s3.get_object(Bucket=BUCKET, Key="output/ok/input.csv.out")["Body"].read().decode()
    lines = body.splitlines()
    inputs = text.splitlines()
    assert len(lines) == ROWS
    assert [line.rsplit(",", 1)[0] for line in lines] == inputs  # in order, each with its own inputs
    scores = np.array([float(line.rsplit(",", 1)[1]) for line in lines])
    np.testing.assert_allclose(scores, _booster_scores(local, text), atol=1e-6, rtol=0)
    streams = local.clients.client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix="ok/"
    )["logStreams"]
    assert streams, "the container log reaches CloudWatch Logs"


def test_a_row_the_model_cannot_read_fails_the_job_with_the_container_s_reason_and_no_output(
    local: Transform,
) -> None:
    text = _rows(local, 50, seed=6).splitlines()
    broken = ",".join(["banana"] * len(local.features))
    body = "\n".join([*text, broken]) + "\n"
    local.clients.s3.put_object(Bucket=BUCKET, Key="input/bad/input.csv", Body=body.encode())
    local.create("bad", f"s3://{BUCKET}/input/bad/input.csv")
    described = local.settled("bad")
    assert described["TransformJobStatus"] == "Failed"
    assert "the container answered 400" in described["FailureReason"]
    assert "s3://transform/input/bad/input.csv" in described["FailureReason"]
    assert local.outputs("bad") == []


def test_an_input_prefix_with_nothing_under_it_fails_the_job(local: Transform) -> None:
    local.create("empty", f"s3://{BUCKET}/input/nothing-here/")
    described = local.settled("empty")
    assert described["TransformJobStatus"] == "Failed"
    assert "No S3 objects found under S3 URL" in described["FailureReason"]


def test_a_job_for_a_model_that_does_not_exist_is_refused(local: Transform) -> None:
    with pytest.raises(ClientError) as raised:
        local.create("no-model", f"s3://{BUCKET}/input/ok/", model="churn-v9")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "churn-v9" in raised.value.response["Error"]["Message"]


def test_payload_limits_over_100_mb_are_refused(local: Transform) -> None:
    with pytest.raises(ClientError) as raised:
        local.create("too-big", f"s3://{BUCKET}/input/ok/", MaxPayloadInMB=50, MaxConcurrentTransforms=3)
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_a_job_name_in_use_is_refused(local: Transform) -> None:
    local.clients.s3.put_object(Bucket=BUCKET, Key="input/twice/input.csv", Body=_rows(local, 10, 7).encode())
    local.create("twice", f"s3://{BUCKET}/input/twice/")
    with pytest.raises(ClientError) as raised:
        local.create("twice", f"s3://{BUCKET}/input/twice/")
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    assert local.settled("twice")["TransformJobStatus"] == "Completed"


def test_stop_transform_job_stops_it_and_stores_no_output(local: Transform) -> None:
    text = _rows(local, 3_000, seed=8)
    local.clients.s3.put_object(Bucket=BUCKET, Key="input/stop/input.csv", Body=text.encode())
    # One record per request: long enough to be stopped while it runs.
    local.create(
        "stop", f"s3://{BUCKET}/input/stop/", BatchStrategy="SingleRecord", MaxConcurrentTransforms=1
    )
    wait_for(lambda: local.compute.running("stop"), "the job to start", timeout_s=10)
    local.sagemaker.stop_transform_job(TransformJobName="stop")
    described = local.settled("stop", timeout_s=30)
    assert described["TransformJobStatus"] == "Stopped"
    assert local.outputs("stop") == []
    with pytest.raises(ClientError) as raised:
        local.sagemaker.stop_transform_job(TransformJobName="stop")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_a_sync_transform_task_waits_for_the_job_and_returns_its_description(local: Transform) -> None:
    local.clients.s3.put_object(Bucket=BUCKET, Key="input/sfn/input.csv", Body=_rows(local, 200, 9).encode())
    sfn = local.clients.client("stepfunctions")
    settings = {"MaxPayloadInMB": 1, "BatchStrategy": "MultiRecord"}
    parameters = request("sfn", f"s3://{BUCKET}/input/sfn/", "churn-v1", settings)
    definition = {
        "StartAt": "Transform",
        "States": {
            "Transform": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTransformJob.sync",
                "Parameters": parameters,
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(name="transform", definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="sfn")["executionArn"]
    done = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        "the execution",
        timeout_s=60,
    )
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["TransformJobStatus"] == "Completed"
    assert local.outputs("sfn") == ["output/sfn/input.csv.out"]
