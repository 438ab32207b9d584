"""The ports implemented with boto3 and Powertools, and `connect`, which wires them from the settings.

Nothing here runs at import, and `connect`, which the handler calls on its first invocation, builds no
client: each one, and the idempotency persistence layer, is made by the first call that uses it. boto3
honours AWS_ENDPOINT_URL, so the same code talks to AWS, to the local plane's moto server, or to moto
in-process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
)
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.errors import error_code
from headrace.aws.events import EventBridgePublisher
from headrace.aws.idempotency import IdempotentOnce, ledger_persistence
from headrace.aws.metrics import PowertoolsMetrics
from headrace.ingest.ports import IngestPorts, ObjectDigest, ObjectRef, StartedRun, StoredObject
from headrace.ingest.result import IngestResult
from headrace.ingest.settings import IngestSettings
from headrace.ledger import DynamoLedger

# CopyObject copies at most 5 GB; larger objects need a multipart copy
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/copy-object.html).
COPY_OBJECT_MAX = 5 * 1024**3
STREAM_CHUNK = 8 * 1024 * 1024
COPY_CHECKSUM = "SHA256"
# Idempotency records outlive any redelivery of one event (EventBridge retries for up to 24 hours);
# past that, the ledger and the execution name still refuse a second run.
IDEMPOTENCY_TTL_S = 48 * 3600


class S3ObjectStore:
    def __init__(self, client: Any) -> None:
        self._s3 = client

    def size(self, ref: ObjectRef) -> int:
        return int(self._s3.head_object(**_object_args(ref))["ContentLength"])

    def read(self, ref: ObjectRef) -> StoredObject:
        response = self._s3.get_object(**_object_args(ref))
        return StoredObject(body=response["Body"].read(), version_id=response.get("VersionId"))

    def digest(self, ref: ObjectRef) -> ObjectDigest:
        sha = hashlib.sha256()
        response = self._s3.get_object(**_object_args(ref))
        for chunk in response["Body"].iter_chunks(STREAM_CHUNK):
            sha.update(chunk)
        return ObjectDigest(sha256=sha.hexdigest(), version_id=response.get("VersionId"))

    def copy(self, source: ObjectRef, key: str, size: int) -> None:
        copy_source = {"Bucket": source.bucket, "Key": source.key}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        # A file uploaded in parts (`aws s3 cp` of 8 MB or more) carries a checksum of its parts; a copy that
        # kept it would fail every checksum-validating read (issue 14, finding 5). Asking for a new SHA-256
        # makes S3 compute a full-object checksum of the copy's own bytes (CopyObject's
        # x-amz-checksum-algorithm: https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
        if size <= COPY_OBJECT_MAX:
            self._s3.copy_object(
                CopySource=copy_source, Bucket=source.bucket, Key=key, ChecksumAlgorithm=COPY_CHECKSUM
            )
        else:
            threshold = TransferConfig(multipart_threshold=COPY_OBJECT_MAX)
            extra = {"ChecksumAlgorithm": COPY_CHECKSUM}
            self._s3.copy(copy_source, source.bucket, key, ExtraArgs=extra, Config=threshold)

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def _object_args(ref: ObjectRef) -> dict[str, str]:
    args = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        args["VersionId"] = ref.version_id
    return args


class StepFunctionsRuns:
    def __init__(
        self, client: Any, state_machines: Mapping[str, str], variable: str = "TRAINING_STATE_MACHINES"
    ) -> None:
        self._sfn = client
        self._machines = dict(state_machines)
        self._variable = variable

    def start(self, model: str, name: str, payload: str) -> StartedRun:
        machine = self._machines.get(model)
        if machine is None:
            raise LookupError(f"no state machine for model '{model}' in {self._variable}")
        try:
            response = self._sfn.start_execution(stateMachineArn=machine, name=name, input=payload)
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            return StartedRun(execution_arn=execution_arn(machine, name), created=False)
        return StartedRun(execution_arn=str(response["executionArn"]), created=True)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:stateMachine:<machine> -> arn:...:execution:<machine>:<name> (the standard-workflow form)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


@dataclass(frozen=True)
class Connection:
    ports: IngestPorts
    idempotency: IdempotencyConfig

    def register(self, context: Any) -> None:
        """Give idempotency the invocation's deadline, so a timed-out attempt does not block its retry."""
        if hasattr(context, "get_remaining_time_in_millis"):
            self.idempotency.register_lambda_context(context)


def connect(settings: IngestSettings, metrics: Metrics, session: boto3.Session | None = None) -> Connection:
    """The ports; every client, and the idempotency layer's, is made by the first call that uses it (from one
    boto3 Session: `session`, else the process's shared one, headrace.aws.clients)."""
    dynamodb = lazy_client("dynamodb", session)
    idempotency = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_TTL_S)
    persistence = partial(ledger_persistence, settings.ledger_table, dynamodb)
    ports = IngestPorts(
        store=S3ObjectStore(lazy_client("s3", session)),
        ledger=DynamoLedger(dynamodb, settings.ledger_table),
        runs=StepFunctionsRuns(lazy_client("stepfunctions", session), settings.training_state_machines),
        events=EventBridgePublisher(
            lazy_client("events", session),
            settings.event_bus_name,
            settings.names.event_source,
        ),
        metrics=PowertoolsMetrics(metrics, settings.stage),
        once=IdempotentOnce(persistence, idempotency, IngestResult, "headrace-ingest"),
        clock=now,
        batches=StepFunctionsRuns(
            lazy_client("stepfunctions", session), settings.batch_state_machines, "BATCH_STATE_MACHINES"
        ),
    )
    return Connection(ports=ports, idempotency=idempotency)
