"""The moto internals the local plane leans on (moto pinned in pyproject.toml): if an upgrade moves them,
these tests say which seam broke before the e2e tests fail in some less obvious way."""

from __future__ import annotations

import inspect
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.awslambda.models import LambdaFunction
from moto.events.models import Rule

from headrace.local.aws import Clients
from headrace.local.sagemaker.containers import ImageRegistry
from headrace.local.sagemaker.training import TrainingCompute
from headrace.local.seams import installed, normalize_event
from headrace.local.seams.sagemaker import MotoSageMakerRecords
from headrace.local.seams.targets import MotoTargets
from headrace.local.targets import EventDelivery, TargetDispatcher
from headrace.serving.deploy import SAGEMAKER_ERROR
from headrace.waiting import wait_for
from tests.support.moto import handler_zip, lambda_plane

HANDLER = """
import json, os
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"seen": event, "greeting": os.environ["GREETING"], "function": context.function_name}
"""
ROLE = "arn:aws:iam::123456789012:role/local"
# A stand-in training image honouring SageMaker's container contract (the real one: containers/train).
TRAIN_SCRIPT = """
import json, os, pathlib, sys, time
root = pathlib.Path(os.environ["HEADRACE_OPT_ML"])
hp = json.loads((root / "input/config/hyperparameters.json").read_text())
rows = (root / "input/data/train/part.csv").read_text().splitlines()
for r in range(3):
    print(f"[{r}] validation-auc={0.5 + r / 10};", flush=True)
if hp.get("sleep"):
    time.sleep(float(hp["sleep"]))
if hp.get("fail"):
    (root / "output/failure").write_text("ValueError: max_depth must be an integer, got 'banana'")
    sys.exit(1)
(root / "model/model.txt").write_text(f"trained on {len(rows) - 1} rows")
"""


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Clients, EventDelivery]]:
    with lambda_plane(tmp_path_factory.mktemp("code"), "local") as moto:
        delivery = EventDelivery(TargetDispatcher(MotoTargets()))
        delivery.start()
        clients = moto.clients
        images = ImageRegistry()
        image_dir = tmp_path_factory.mktemp("image")
        (image_dir / "train").write_text(TRAIN_SCRIPT)
        images.add("fake-trainer", image_dir)
        records = MotoSageMakerRecords(clients.account, clients.region)
        training = TrainingCompute(clients, images, tmp_path_factory.mktemp("jobs"), records)
        with installed(moto.runtime, delivery, training):
            yield clients, delivery
        delivery.stop()


def _function(clients: Clients, name: str) -> str:
    arn = clients.lambda_.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": handler_zip({"handler.py": HANDLER})},
        Environment={"Variables": {"GREETING": "hello"}},
    )["FunctionArn"]
    return str(arn)


def test_the_patched_moto_methods_still_exist_with_their_signatures() -> None:
    assert list(inspect.signature(LambdaFunction._invoke_lambda).parameters) == ["self", "event"]
    assert list(inspect.signature(Rule.send_to_targets).parameters) == [
        "self",
        "original_event",
        "transform_input",
    ]


def test_lambda_invoke_over_http_runs_the_functions_own_code_with_its_environment(plane: Any) -> None:
    clients, _ = plane
    _function(clients, "echo")
    response = clients.lambda_.invoke(FunctionName="echo", Payload=json.dumps({"n": 1}))
    assert json.loads(response["Payload"].read()) == {
        "seen": {"n": 1},
        "greeting": "hello",
        "function": "echo",
    }
    assert "GREETING" not in os.environ or os.environ["GREETING"] != "hello"


def test_a_raised_exception_comes_back_as_a_function_error(plane: Any) -> None:
    clients, _ = plane
    _function(clients, "failing")
    response = clients.lambda_.invoke(FunctionName="failing", Payload=json.dumps({"fail": True}))
    assert response["FunctionError"] == "Handled"
    assert json.loads(response["Payload"].read())["errorType"] == "ValueError"


def test_a_state_machine_lambda_task_runs_our_handler_and_catches_its_error(plane: Any) -> None:
    clients, _ = plane
    arn = _function(clients, "task")
    sfn = clients.client("stepfunctions")
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Catch": [{"ErrorEquals": ["ValueError"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "Result": {"caught": True}, "End": True},
        },
    }
    machine = sfn.create_state_machine(name="seam", definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    results = {}
    for name, payload in (("ok", {"n": 2}), ("err", {"fail": True})):
        execution = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload))[
            "executionArn"
        ]
        done = wait_for(
            lambda e=execution: (d := sfn.describe_execution(executionArn=e))["status"] != "RUNNING" and d,
            f"execution {name}",
            timeout_s=30,
        )
        results[name] = (done["status"], json.loads(done["output"]))
    assert results["ok"] == ("SUCCEEDED", {"seen": {"n": 2}, "greeting": "hello", "function": "task"})
    assert results["err"] == ("SUCCEEDED", {"caught": True})


def test_s3_eventbridge_notifications_reach_a_lambda_rule_target_in_aws_shape(
    plane: Any, tmp_path: Path
) -> None:
    clients, delivery = plane
    seen = tmp_path / "seen.json"
    source = (
        f"import json\ndef handler(event, context):\n    open({str(seen)!r}, 'w').write(json.dumps(event))\n"
    )
    arn = clients.lambda_.create_function(
        FunctionName="sink",
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": handler_zip({"handler.py": source})},
    )["FunctionArn"]
    events = clients.client("events")
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"object": {"key": [{"wildcard": "*/incoming/*"}]}},
    }
    events.put_rule(Name="arrivals", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="arrivals", Targets=[{"Id": "sink", "Arn": arn}])
    clients.s3.create_bucket(Bucket="seam-data")
    clients.s3.put_bucket_notification_configuration(
        Bucket="seam-data", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    clients.s3.put_object(Bucket="seam-data", Key="m/ignored.csv", Body=b"x")
    clients.s3.put_object(Bucket="seam-data", Key="m/incoming/a.csv", Body=b"a,b\n1,2\n")
    assert delivery.wait_idle(timeout_s=30)
    event = json.loads(seen.read_text())
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["object"]["key"] == "m/incoming/a.csv"
    assert "etag" in event["detail"]["object"] and "eTag" not in event["detail"]["object"]
    assert isinstance(event["time"], str) and event["time"].endswith("Z")


def test_normalized_s3_events_get_distinct_ids() -> None:
    raw = {"source": "aws.s3", "id": "fixed", "time": 1_700_000_000.0, "detail": {"object": {"eTag": "e"}}}
    assert normalize_event(raw)["id"] != normalize_event(raw)["id"]


def test_boto3_clients_reach_the_server_through_aws_endpoint_url(plane: Any) -> None:
    clients, _ = plane
    s3 = boto3.client("s3")  # endpoint from AWS_ENDPOINT_URL, as a user's script would get it
    s3.create_bucket(Bucket="plain-boto3")
    assert "plain-boto3" in [b["Name"] for b in clients.s3.list_buckets()["Buckets"]]


def _training_machine(clients: Clients, name: str) -> str:
    sfn = clients.client("stepfunctions")
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {
                    "TrainingJobName.$": "$.job",
                    "HyperParameters.$": "$.hp",
                    "AlgorithmSpecification": {
                        "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/assets:fake-trainer",
                        "TrainingInputMode": "File",
                        "MetricDefinitions": [
                            {"Name": "validation:auc", "Regex": "validation-auc=([0-9.]+);"}
                        ],
                    },
                    "RoleArn": ROLE,
                    "InputDataConfig": [
                        {
                            "ChannelName": "train",
                            "DataSource": {
                                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://seam-training/in/"}
                            },
                        }
                    ],
                    "OutputDataConfig": {"S3OutputPath": "s3://seam-training/out/"},
                    "ResourceConfig": {
                        "InstanceType": "ml.m5.large",
                        "InstanceCount": 1,
                        "VolumeSizeInGB": 5,
                    },
                    "StoppingCondition": {"MaxRuntimeInSeconds.$": "$.max_runtime"},
                },
                "End": True,
            }
        },
    }
    return str(
        sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
            "stateMachineArn"
        ]
    )


def _run_training(clients: Clients, machine: str, job: str, hp: dict[str, str], max_runtime: int = 60) -> Any:
    sfn = clients.client("stepfunctions")
    payload = {"job": job, "hp": hp, "max_runtime": max_runtime}
    execution = sfn.start_execution(stateMachineArn=machine, name=job, input=json.dumps(payload))[
        "executionArn"
    ]
    return wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        f"execution {job}",
        timeout_s=60,
    )


@pytest.fixture(scope="module")
def training_machine(plane: Any) -> str:
    clients, _ = plane
    clients.s3.create_bucket(Bucket="seam-training")
    clients.s3.put_object(Bucket="seam-training", Key="in/part.csv", Body=b"a,b\n1,2\n3,4\n")
    return _training_machine(clients, "seam-training")


def test_a_sync_training_task_runs_the_image_and_returns_the_completed_description(
    plane: Any, training_machine: str
) -> None:
    clients, _ = plane
    done = _run_training(clients, training_machine, "job-ok", {"seed": "1"})
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert output["TrainingJobStatus"] == "Completed"
    assert {"MetricName": "validation:auc", "Value": 0.7} in [
        {k: m[k] for k in ("MetricName", "Value")} for m in output["FinalMetricDataList"]
    ]
    bucket, key = output["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert archive.extractfile("model.txt").read() == b"trained on 2 rows"  # type: ignore[union-attr]
    streams = clients.client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="job-ok/"
    )["logStreams"]
    assert streams, "the container log reaches CloudWatch Logs"


def test_a_failing_container_fails_the_task_with_its_failure_reason(
    plane: Any, training_machine: str
) -> None:
    clients, _ = plane
    done = _run_training(clients, training_machine, "job-bad", {"fail": "1"})
    assert done["status"] == "FAILED"
    described = clients.client("sagemaker").describe_training_job(TrainingJobName="job-bad")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"] == "ValueError: max_depth must be an integer, got 'banana'"
    history = clients.client("stepfunctions").get_execution_history(
        executionArn=done["executionArn"], reverseOrder=True
    )["events"]
    failed = next(e for e in history if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert failed["error"] == "States.TaskFailed" and "max_depth must be an integer" in failed["cause"]


def test_max_runtime_stops_a_job_that_runs_too_long(plane: Any, training_machine: str) -> None:
    clients, _ = plane
    done = _run_training(clients, training_machine, "job-slow", {"sleep": "30"}, max_runtime=1)
    assert done["status"] == "FAILED"
    described = clients.client("sagemaker").describe_training_job(TrainingJobName="job-slow")
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_stop_training_job_stops_a_running_job(plane: Any, training_machine: str) -> None:
    clients, _ = plane
    sagemaker = clients.client("sagemaker")
    sagemaker.create_training_job(
        TrainingJobName="job-stopped",
        HyperParameters={"sleep": "30"},
        AlgorithmSpecification={
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/assets:fake-trainer",
            "TrainingInputMode": "File",
        },
        RoleArn=ROLE,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://seam-training/in/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://seam-training/out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
    )
    wait_for(
        lambda: (
            sagemaker.describe_training_job(TrainingJobName="job-stopped")["SecondaryStatus"] == "Training"
        ),
        "the job to start training",
    )
    sagemaker.stop_training_job(TrainingJobName="job-stopped")
    final = wait_for(
        lambda: (
            (d := sagemaker.describe_training_job(TrainingJobName="job-stopped"))["TrainingJobStatus"]
            == "Stopped"
            and d
        ),
        "the job to stop",
        timeout_s=30,
    )
    assert final["SecondaryStatus"] == "Stopped"


def test_a_request_sagemaker_refuses_fails_the_task_as_step_functions_names_it(plane: Any) -> None:
    """SageMaker's ValidationException reaches the definition as SageMaker.AmazonSageMakerException, its code
    and message in the cause, so a Catch on that name (the deploy workflow's busy endpoint) matches.
    The plane's own UpdateEndpoint refusal takes the same path (tests/e2e: the hosting seam)."""
    clients, _ = plane
    sfn = clients.client("stepfunctions")
    definition = {
        "StartAt": "Update",
        "States": {
            "Update": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createEndpoint",
                "Parameters": {"EndpointName": "refused-endpoint", "EndpointConfigName": "no-such-config"},
                "Catch": [{"ErrorEquals": [SAGEMAKER_ERROR], "ResultPath": "$.error", "Next": "Refused"}],
                "End": True,
            },
            "Refused": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(name="seam-refusal", definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
    done = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        "the refused update",
        timeout_s=60,
    )
    assert done["status"] == "SUCCEEDED", done
    error = json.loads(done["output"])["error"]
    assert error["Error"] == SAGEMAKER_ERROR
    assert "Error Code: ValidationException" in error["Cause"] and "no-such-config" in error["Cause"], error


def test_the_tuning_seam_finds_moto_s_tuning_job_record_as_it_expects() -> None:
    from moto.sagemaker.models import HyperParameterTuningJob, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    parameters = inspect.signature(SageMakerModelBackend.create_hyper_parameter_tuning_job).parameters
    assert "hyper_parameter_tuning_job_name" in parameters
    # The tuning compute keeps these attributes, which moto's describe() reads.
    describe = inspect.getsource(HyperParameterTuningJob.describe)
    for attribute in (
        "hyper_parameter_tuning_job_status",
        "best_training_job",
        "training_job_status_counters",
    ):
        assert f"self.{attribute}" in describe
    # moto still lacks the calls the seam adds (if it gains them, ours replace its own: check they agree).
    assert not hasattr(SageMakerResponse, "list_training_jobs_for_hyper_parameter_tuning_job")
    assert not hasattr(SageMakerResponse, "stop_hyper_parameter_tuning_job")
