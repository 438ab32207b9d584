"""The handlers' AWS played by moto in-process, and the plane's credential shape; fixtures registered by the
integration and local conftests."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from moto import mock_aws
from moto.server import ThreadedMotoServer

from headrace.local.aws import Clients, PlaneCredentials, local_environment
from headrace.local.lambda_runtime import HandlerRuntime
from headrace.local.network import free_port

REGION = "us-east-1"
# For tests that serve moto themselves (no gate in front): any key works there, the plane's shape is kept.
PLANE_CREDENTIALS = PlaneCredentials.generate()
DATA_BUCKET = "headrace-dev-data-databucket-example"
LEDGER_TABLE = "headrace-dev-ledger"


@dataclass
class LambdaContext:
    """What the handlers use of Lambda's context object: the deadline (Powertools idempotency reads it)."""

    function_name: str = "headrace-dev-function"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:headrace-dev-function"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass(frozen=True)
class MotoAccount:
    """The data store as the data stack leaves it: a versioned bucket and the ledger table."""

    s3: Any
    dynamodb: Any
    events: Any
    sqs: Any

    def published(self, queue: str, pattern: dict[str, Any], bus: str = "default") -> str:
        """A queue on a rule for `pattern`: moto delivers put_events to SQS targets, so it shows what was
        published."""
        url = self.sqs.create_queue(QueueName=queue)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.events.put_rule(Name=queue, EventBusName=bus, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule=queue, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
        return str(url)

    def received(self, queue: str) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.fixture
def moto_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAccount]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=DATA_BUCKET)
        s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=LEDGER_TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        yield MotoAccount(s3=s3, dynamodb=dynamodb, events=events, sqs=sqs)


@pytest.fixture(scope="module", autouse=True)
def fresh_moto() -> None:
    """moto's backends are process-wide: modules that serve moto in-process (a ThreadedMotoServer per module)
    would otherwise see each other's roles and functions. Each module starts from an empty moto."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def handler_zip(files: Mapping[str, str]) -> bytes:
    """A Lambda deployment package holding `files` (name -> source)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, source in files.items():
            archive.writestr(name, source)
    return buffer.getvalue()


@contextmanager
def served_moto() -> Iterator[str]:
    """moto served in-process on a free port, its endpoint yielded; until the block ends the environment
    points at it (as the plane's children see it) and state machines execute."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    saved = dict(os.environ)
    os.environ.update({"MOTO_PORT": str(port), **local_environment(endpoint, PLANE_CREDENTIALS)})
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        requests.post(
            f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=5
        )
        yield endpoint
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class LambdaPlane:
    """Served moto with a handler runtime for its functions and an IAM role they can run as."""

    endpoint: str
    clients: Clients
    runtime: HandlerRuntime


@contextmanager
def lambda_plane(code: Path, role: str) -> Iterator[LambdaPlane]:
    """served_moto plus a HandlerRuntime unpacking code under `code` and the role `role` Lambda may assume;
    the caller installs the seams it needs (seams.installed) around what it yields."""
    with served_moto() as endpoint:
        runtime = HandlerRuntime(code, local_environment(endpoint, PLANE_CREDENTIALS))
        try:
            clients = Clients(endpoint, credentials=PLANE_CREDENTIALS)
            trust = {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
            clients.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
            yield LambdaPlane(endpoint, clients, runtime)
        finally:
            runtime.close()


def sagemaker_runtime(clients: Clients) -> Any:
    """InvokeEndpoint on served moto, without retries: a 503 from a dead container is the answer under test,
    not something to wait out."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=clients.endpoint,
        region_name=clients.region,
        aws_access_key_id=PLANE_CREDENTIALS.access_key_id,
        aws_secret_access_key=PLANE_CREDENTIALS.secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
