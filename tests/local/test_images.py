"""The training and serving images, built from their Dockerfiles and run as SageMaker runs them.

The images are built once per session on the local Debian base (headrace.local.sagemaker.images), from the
contexts `cdk synth` stages; then one training job (CreateTrainingJob through moto, network-isolated) trains
a small churn model in the training image, and one endpoint serves that model from the serving image.
Without a Docker daemon the tests skip, saying why; under CI=true a missing daemon fails them instead.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.local.aws import Clients
from headrace.local.network import free_port
from headrace.local.sagemaker.containers import ImageRegistry
from headrace.local.sagemaker.docker import DockerLauncher
from headrace.local.sagemaker.hosting import EndpointHosting, served
from headrace.local.sagemaker.images import ContextImages, docker_available, stage_contexts
from headrace.local.sagemaker.training import TrainingCompute
from headrace.local.seams.sagemaker import MotoSageMakerRecords, hosting_installed, training_installed
from headrace.training_job import hyperparameters_for
from headrace.waiting import wait_for
from tests.support.moto import PLANE_CREDENTIALS, sagemaker_runtime

pytestmark = pytest.mark.docker

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
BUCKET = "images-test"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/local"
ROWS = 600
SPLITS = {"train": 0.6, "validation": 0.2, "test": 0.2}
JOB = "churn-in-docker"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], ContextImages]:
    """Both staged contexts and their images, built once (the base too, the first time on a machine)."""
    if reason := docker_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the docker tests cannot run: {reason}")
        pytest.skip(f"docker tests need a Docker daemon: {reason}")
    contexts = stage_contexts(tmp_path_factory.mktemp("contexts"))
    images = ContextImages()
    for context in contexts.values():
        images.image_for(context)
    return contexts, images


@dataclass
class Plane:
    clients: Clients
    sagemaker: Any
    runtime: Any
    training: TrainingCompute


@pytest.fixture(scope="module")
def plane(
    built: tuple[dict[str, Path], ContextImages], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plane]:
    contexts, built_images = built
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    clients = Clients(endpoint, credentials=PLANE_CREDENTIALS)
    clients.s3.create_bucket(Bucket=BUCKET)
    images = ImageRegistry()
    images.add("train", contexts["train"])
    images.add("serve", contexts["serve"])
    launcher = DockerLauncher(built_images)
    records = MotoSageMakerRecords(clients.account, clients.region)
    work = tmp_path_factory.mktemp("work")
    training = TrainingCompute(clients, images, work, records, launcher)
    hosting = EndpointHosting(clients, images, work, lambda names: {}, records, launcher)
    runtime = sagemaker_runtime(clients)
    with served(hosting), training_installed(training), hosting_installed(hosting):
        yield Plane(clients, clients.client("sagemaker"), runtime, training)
    server.stop()


@pytest.fixture(scope="module")
def trained(plane: Plane, example_model: ModelConfig) -> dict[str, Any]:
    """DescribeTrainingJob of one network-isolated job run in the training image on a small churn set."""
    frame = generate(example_model, ROWS, seed=7)
    start = 0
    channels = []
    for channel, share in SPLITS.items():
        end = start + int(ROWS * share)
        key = f"{JOB}/splits/{channel}/data.csv"
        plane.clients.s3.put_object(
            Bucket=BUCKET, Key=key, Body=frame.iloc[start:end].to_csv(index=False).encode()
        )
        start = end
        channels.append(
            {
                "ChannelName": channel,
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/{JOB}/splits/{channel}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        )
    metric = "test:auc"
    plane.sagemaker.create_training_job(
        TrainingJobName=JOB,
        AlgorithmSpecification={
            "TrainingImage": f"{REGISTRY}:train",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": metric, "Regex": "test-auc=([0-9.eE+-]+);"}],
        },
        RoleArn=ROLE,
        HyperParameters={**hyperparameters_for(example_model), "num_round": "10"},
        InputDataConfig=channels,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/{JOB}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        EnableNetworkIsolation=True,
    )
    assert plane.training.wait(JOB, timeout_s=600), "the training job did not finish in 10 minutes"
    described: dict[str, Any] = plane.sagemaker.describe_training_job(TrainingJobName=JOB)
    return described


def test_a_training_job_runs_in_the_training_image_and_uploads_the_model(
    plane: Plane, trained: dict[str, Any]
) -> None:
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    files = _model_files(plane, trained)
    assert {"model.json", "features.json", "evaluation.json", "profile.json"} <= set(files)
    assert [m["MetricName"] for m in trained["FinalMetricDataList"]] == ["test:auc"]


def test_an_endpoint_serves_the_trained_model_from_the_serving_image(
    plane: Plane, trained: dict[str, Any], example_model: ModelConfig
) -> None:
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    plane.sagemaker.create_model(
        ModelName="churn-docker",
        PrimaryContainer={
            "Image": f"{REGISTRY}:serve",
            "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"],
        },
        ExecutionRoleArn=ROLE,
    )
    plane.sagemaker.create_endpoint_config(
        EndpointConfigName="churn-docker-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "churn-docker",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    plane.sagemaker.create_endpoint(EndpointName="churn-docker", EndpointConfigName="churn-docker-1")

    def settled() -> dict[str, Any] | None:
        described: dict[str, Any] = plane.sagemaker.describe_endpoint(EndpointName="churn-docker")
        return None if described["EndpointStatus"] == "Creating" else described

    described = wait_for(settled, "the endpoint to leave Creating", timeout_s=120)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")

    features = json.loads(_model_files(plane, trained)["features.json"])["features"]
    body = generate(example_model, 5, seed=8)[features].to_csv(index=False, header=False)
    response = plane.runtime.invoke_endpoint(EndpointName="churn-docker", Body=body, ContentType="text/csv")
    predictions = json.loads(response["Body"].read())["predictions"]
    assert len(predictions) == 5 and all(0.0 <= p <= 1.0 for p in predictions)

    plane.sagemaker.delete_endpoint(EndpointName="churn-docker")
    running = subprocess.run(
        ["docker", "ps", "--quiet", "--filter", "name=headrace-serve-"], capture_output=True, text=True
    )
    assert running.stdout.strip() == "", "DeleteEndpoint left the serving container running"


def _model_files(plane: Plane, trained: dict[str, Any]) -> dict[str, bytes]:
    """The files of the job's model.tar.gz, by name."""
    bucket, key = trained["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    archive = plane.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {
            member.name: extracted.read()
            for member in tar.getmembers()
            if member.isfile() and (extracted := tar.extractfile(member)) is not None
        }
