"""The training and serving images, built from their Dockerfiles and run as SageMaker runs them.

The images are built once per session on the local Debian base (headrace.local.sagemaker.images), from the
contexts `cdk synth` stages; then one training job (CreateTrainingJob through moto, network-isolated) trains
a small churn model in the training image, and one endpoint serves that model from the serving image; the
same for the scikit-learn example (examples/models/churn-sklearn) in the images built from its folder.
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

from headrace.config import ModelConfig, load_model_file
from headrace.datagen import generate
from headrace.encoding import model_input
from headrace.local.aws import Clients
from headrace.local.network import free_port
from headrace.local.sagemaker.containers import ImageRegistry
from headrace.local.sagemaker.docker import DockerLauncher
from headrace.local.sagemaker.hosting import EndpointHosting, served
from headrace.local.sagemaker.images import (
    ContextImages,
    ImageBuildError,
    build_image,
    docker_available,
    stage_contexts,
)
from headrace.local.sagemaker.training import TrainingCompute
from headrace.local.seams.sagemaker import MotoSageMakerRecords, hosting_installed, training_installed
from headrace.training_job import hyperparameters_for
from headrace.usercode import load_usercode
from headrace.waiting import wait_for
from stacks.assets import (
    SERVE_IMAGE_FILES,
    SERVE_IMAGE_SOURCE,
    TRAIN_IMAGE_FILES,
    TRAIN_IMAGE_SOURCE,
    stage_image_context,
    stage_usercode,
)
from tests.support.moto import PLANE_CREDENTIALS, sagemaker_runtime

pytestmark = pytest.mark.docker

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
BUCKET = "images-test"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/local"
ROWS = 600
SPLITS = {"train": 0.6, "validation": 0.2, "test": 0.2}
JOB = "churn-in-docker"
# Bring-your-own-code: the scikit-learn example, its requirements installed into its own images.
CUSTOM_MODEL = Path(__file__).resolve().parents[2] / "examples" / "models" / "churn-sklearn" / "model.yaml"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], ContextImages]:
    """Both staged contexts and their images, built once (the base too, the first time on a machine)."""
    if reason := docker_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the docker tests cannot run: {reason}")
        pytest.skip(f"docker tests need a Docker daemon: {reason}")
    contexts = stage_contexts(tmp_path_factory.mktemp("contexts"))
    staged = tmp_path_factory.mktemp("custom-contexts")
    custom = load_model_file(CUSTOM_MODEL)
    contexts["train-custom"] = stage_image_context(
        TRAIN_IMAGE_SOURCE, TRAIN_IMAGE_FILES, staged / "train", custom
    )
    contexts["serve-custom"] = stage_image_context(
        SERVE_IMAGE_SOURCE, SERVE_IMAGE_FILES, staged / "serve", custom
    )
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
    for tag, context in contexts.items():
        images.add(tag, context)
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
    return _train(plane, example_model, "train", JOB, {"num_round": "10"})


@pytest.fixture(scope="module")
def custom_model() -> ModelConfig:
    return load_model_file(CUSTOM_MODEL)


@pytest.fixture(scope="module")
def trained_custom(plane: Plane, custom_model: ModelConfig) -> dict[str, Any]:
    """The scikit-learn example trained in its own image: its requirements pip-installed at build time."""
    return _train(plane, custom_model, "train-custom", f"{JOB}-custom", {})


def _train(
    plane: Plane, model: ModelConfig, image: str, job: str, overrides: dict[str, str]
) -> dict[str, Any]:
    frame = generate(model, ROWS, seed=7)
    start = 0
    channels = []
    for channel, share in SPLITS.items():
        end = start + int(ROWS * share)
        key = f"{job}/splits/{channel}/data.csv"
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
                        "S3Uri": f"s3://{BUCKET}/{job}/splits/{channel}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        )
    metric = "test:auc"
    plane.sagemaker.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={
            "TrainingImage": f"{REGISTRY}:{image}",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": metric, "Regex": "test-auc=([0-9.eE+-]+);"}],
        },
        RoleArn=ROLE,
        HyperParameters={**hyperparameters_for(model), **overrides},
        InputDataConfig=channels,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/{job}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        EnableNetworkIsolation=True,
    )
    assert plane.training.wait(job, timeout_s=600), "the training job did not finish in 10 minutes"
    described: dict[str, Any] = plane.sagemaker.describe_training_job(TrainingJobName=job)
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
    predictions = _serve(plane, trained, example_model, "serve", "churn-docker")
    assert len(predictions) == 5 and all(0.0 <= p <= 1.0 for p in predictions)


def test_a_custom_model_trains_and_serves_in_its_own_images(
    plane: Plane, trained_custom: dict[str, Any], custom_model: ModelConfig, tmp_path: Path
) -> None:
    assert trained_custom["TrainingJobStatus"] == "Completed", trained_custom.get("FailureReason")
    files = _model_files(plane, trained_custom)
    assert json.loads(files["features.json"])["framework"] == "custom"
    predictions = _serve(plane, trained_custom, custom_model, "serve-custom", "churn-sk-docker")
    # The endpoint's scores are the example's own load + predict on the same artifact, in process.
    assert custom_model.code_dir is not None
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    described = json.loads(files["features.json"])
    user = load_usercode(stage_usercode(custom_model, tmp_path / "usercode"))
    fitted = user.call("load", tmp_path / "user")
    rows = generate(custom_model, 5, seed=8)
    expected = user.call(
        "predict", fitted, model_input(rows, described["features"], described["categorical"])
    )
    assert predictions == pytest.approx(list(expected), abs=1e-6)


def test_a_requirement_that_does_not_install_fails_the_image_build(
    custom_model: ModelConfig, tmp_path: Path
) -> None:
    if reason := docker_available():
        pytest.skip(reason)
    context = stage_image_context(SERVE_IMAGE_SOURCE, SERVE_IMAGE_FILES, tmp_path / "serve", custom_model)
    (context / "usercode" / "requirements.txt").write_text("scikit-learn==0.0.0.1\n")
    with pytest.raises(ImageBuildError) as failed:
        build_image(context, "headrace-local/serve:unbuildable", progress=False)
    assert "scikit-learn==0.0.0.1" in str(failed.value)


def _serve(plane: Plane, trained: dict[str, Any], model: ModelConfig, image: str, name: str) -> list[float]:
    """The model of `trained` behind an endpoint of `image`: its scores for 5 generated rows, then the
    endpoint is deleted and its container must be gone."""
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    plane.sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": f"{REGISTRY}:{image}",
            "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"],
        },
        ExecutionRoleArn=ROLE,
    )
    plane.sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    plane.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-1")

    def settled() -> dict[str, Any] | None:
        described: dict[str, Any] = plane.sagemaker.describe_endpoint(EndpointName=name)
        return None if described["EndpointStatus"] == "Creating" else described

    described = wait_for(settled, "the endpoint to leave Creating", timeout_s=120)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")

    features = json.loads(_model_files(plane, trained)["features.json"])["features"]
    body = generate(model, 5, seed=8)[features].to_csv(index=False, header=False)
    response = plane.runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv")
    predictions: list[float] = json.loads(response["Body"].read())["predictions"]

    plane.sagemaker.delete_endpoint(EndpointName=name)
    running = subprocess.run(
        ["docker", "ps", "--quiet", "--filter", "name=headrace-serve-"], capture_output=True, text=True
    )
    assert running.stdout.strip() == "", "DeleteEndpoint left the serving container running"
    return predictions


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
