"""The handlers' AWS played by moto in-process, and the plane's credential shape; fixtures registered by the
integration and local conftests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from headrace.local.aws import PlaneCredentials

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
