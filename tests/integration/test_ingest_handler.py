"""The real ingest handler against moto in-process: S3 (versioned), DynamoDB, Step Functions, EventBridge."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from functions.ingest import handler as ingest_function
from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.ingest import InvalidEvent
from headrace.ingest.settings import SettingsError
from headrace.ledger import DynamoLedger, MisplacedItem, RejectionItem
from headrace.naming import execution_name
from tests.support.moto import DATA_BUCKET, LEDGER_TABLE, REGION, LambdaContext, MotoAccount

BUS = "headrace-dev"
ROLE = "arn:aws:iam::123456789012:role/headrace-dev-training"
# An invocation that changes nothing (a replay, an ignored key, a refused event) publishes no metric, and
# Powertools warns about an empty flush; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@dataclass(frozen=True)
class Cloud(MotoAccount):
    sfn: Any
    state_machine: str
    rejected_queue: str

    def executions(self) -> list[dict[str, Any]]:
        return list(self.sfn.list_executions(stateMachineArn=self.state_machine)["executions"])

    def rejected_events(self) -> list[dict[str, Any]]:
        return self.received(self.rejected_queue)


@pytest.fixture
def cloud(moto_account: MotoAccount, monkeypatch: pytest.MonkeyPatch, repo_root: Any) -> Cloud:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="headrace-dev-churn-training", definition=PASS_MACHINE, roleArn=ROLE
    )
    machine_arn = machine["stateMachineArn"]
    moto_account.events.create_event_bus(Name=BUS)
    rejected = moto_account.published(
        "rejected", {"source": ["headrace"], "detail-type": ["Dataset Rejected"]}, BUS
    )
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "Headrace",
        "HEADRACE_STAGE": "dev",
        "DATA_BUCKET": DATA_BUCKET,
        "LEDGER_TABLE": LEDGER_TABLE,
        "TRAINING_STATE_MACHINES": json.dumps({"churn": machine_arn}),
        "EVENT_BUS_NAME": BUS,
        "HEADRACE_MODELS_DIR": str(repo_root / "models"),
    }.items():
        monkeypatch.setenv(name, value)
    return Cloud(**vars(moto_account), sfn=sfn, state_machine=machine_arn, rejected_queue=rejected)


@pytest.fixture
def drop(cloud: Cloud, load_event: Callable[[str], dict[str, Any]]) -> Callable[[str, bytes], dict[str, Any]]:
    """Upload `body` under `key` and return the S3 Object Created event EventBridge would deliver for it."""

    def upload(key: str, body: bytes) -> dict[str, Any]:
        put = cloud.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)
        event = load_event("s3_object_created")
        event["detail"]["object"].update(
            {"key": quote_plus(key, safe="/"), "size": len(body), "version-id": put["VersionId"]}
        )
        return event

    return upload


def good_csv(model: ModelConfig, seed: int = 1) -> bytes:
    return generate(model, 600, seed=seed).to_csv(index=False).encode()


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = ingest_function.handler(event, LambdaContext())
    return result


def test_the_runtime_builds_no_client_until_the_first_event_uses_one(
    cloud: Cloud,
    drop: Callable[[str, bytes], dict[str, Any]],
    example_model: ModelConfig,
    monkeypatch: pytest.MonkeyPatch,
    built_clients: list[str],
) -> None:
    built = built_clients
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ingest-cold-start")  # a fresh runtime, not a cached one

    ingest_function._runtime()
    assert built == []
    invoke(drop("churn/incoming/2026-11-23/customers.csv", good_csv(example_model)))
    # The file is read from S3 and recorded, under the idempotency layer, in DynamoDB; the run is started.
    assert {"s3", "dynamodb", "stepfunctions"} <= set(built)
    assert len(built) == len(set(built))


def test_good_csv_starts_one_execution_with_the_dataset_version_as_input(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    body = good_csv(example_model)
    result = invoke(drop("churn/incoming/2026-11-23/customers.csv", body))

    assert result["outcome"] == "started"
    [execution] = cloud.executions()
    assert execution["executionArn"] == result["execution_arn"]
    assert execution["name"] == execution_name("churn", result["sha256"])
    started = json.loads(cloud.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    dataset = started["dataset"]
    assert started["model"] == "churn"
    assert (dataset["key"], dataset["rows"], dataset["format"]) == (
        "churn/incoming/2026-11-23/customers.csv",
        600,
        "csv",
    )
    assert dataset["schema_fingerprint"] == example_model.data.fingerprint()
    assert dataset["statistics"]["region"]["kind"] == "categorical"


def test_good_parquet_starts_one_execution_with_the_dataset_version_as_input(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    buffer = io.BytesIO()
    generate(example_model, 600, seed=2).to_parquet(buffer, index=False)

    result = invoke(drop("churn/incoming/customers.parquet", buffer.getvalue()))

    [execution] = cloud.executions()
    dataset = json.loads(cloud.sfn.describe_execution(executionArn=execution["executionArn"])["input"])[
        "dataset"
    ]
    assert result["outcome"] == "started"
    assert (dataset["format"], dataset["rows"], dataset["size_bytes"]) == (
        "parquet",
        600,
        len(buffer.getvalue()),
    )


def test_accepted_file_is_copied_byte_identical_to_its_content_addressed_dataset_key(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    body = good_csv(example_model)
    result = invoke(drop("churn/incoming/customers.csv", body))

    copy = cloud.s3.get_object(Bucket=DATA_BUCKET, Key=f"churn/datasets/{result['sha256']}/data.csv")[
        "Body"
    ].read()
    assert copy == body


def test_the_same_event_three_times_starts_one_execution(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    event = drop("churn/incoming/customers.csv", good_csv(example_model))

    outcomes = [invoke(event)["outcome"] for _ in range(3)]

    assert outcomes == ["started", "duplicate", "duplicate"]
    assert len(cloud.executions()) == 1


def test_the_same_bytes_under_another_key_start_no_second_execution(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    body = good_csv(example_model)
    first = invoke(drop("churn/incoming/monday.csv", body))

    second = invoke(drop("churn/incoming/again/monday copy.csv", body))

    assert second["outcome"] == "duplicate"
    assert second["execution_arn"] == first["execution_arn"]
    assert len(cloud.executions()) == 1


def test_a_replay_is_answered_from_the_idempotency_record_when_the_ledger_item_is_gone(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    event = drop("churn/incoming/customers.csv", good_csv(example_model))
    first = invoke(event)
    cloud.dynamodb.delete_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": "model#churn"}, "sk": {"S": f"dataset#{first['sha256']}"}}
    )

    replay = invoke(event)

    assert replay == first  # the stored result, replayed by Powertools idempotency
    assert len(cloud.executions()) == 1


def test_a_replay_with_no_records_left_is_stopped_by_the_execution_name(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    event = drop("churn/incoming/customers.csv", good_csv(example_model))
    first = invoke(event)
    for item in cloud.dynamodb.scan(TableName=LEDGER_TABLE)["Items"]:
        cloud.dynamodb.delete_item(TableName=LEDGER_TABLE, Key={"pk": item["pk"], "sk": item["sk"]})

    replay = invoke(event)

    # Same name and same input: Step Functions answers with the existing execution instead of a new one.
    assert replay["execution_arn"] == first["execution_arn"]
    assert len(cloud.executions()) == 1


def test_an_accepted_dataset_is_written_to_the_ledger(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    result = invoke(drop("churn/incoming/customers.csv", good_csv(example_model)))

    item = cloud.dynamodb.get_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": "model#churn"}, "sk": {"S": f"dataset#{result['sha256']}"}}
    )["Item"]
    assert item["execution_arn"]["S"] == result["execution_arn"]
    assert item["status"]["S"] == "started"
    assert item["rows"]["N"] == "600"
    assert json.loads(item["statistics"]["S"])["tenure_months"]["kind"] == "numeric"


def test_a_bad_file_is_quarantined_with_its_reason_and_the_original_is_kept(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    frame = generate(example_model, 600, seed=3)
    frame.loc[10, "region"] = "atlantis"
    body = frame.to_csv(index=False).encode()

    result = invoke(drop("churn/incoming/2026-11-23/customers.csv", body))

    assert result["outcome"] == "quarantined"
    folder = f"churn/quarantine/2026-11-23/101532.000000-{result['sha256'][:12]}-59520bc7"
    assert result["quarantine_key"] == f"{folder}/customers.csv"
    assert cloud.s3.get_object(Bucket=DATA_BUCKET, Key=result["quarantine_key"])["Body"].read() == body
    assert (
        cloud.s3.get_object(Bucket=DATA_BUCKET, Key="churn/incoming/2026-11-23/customers.csv")["Body"].read()
        == body
    )
    reason_key = result["quarantine_key"].rsplit("/", 1)[0] + "/reason.json"
    reason = json.loads(cloud.s3.get_object(Bucket=DATA_BUCKET, Key=reason_key)["Body"].read())
    assert [(p["rule"], p["column"], p["rows"]) for p in reason["problems"]] == [("category", "region", [11])]
    assert cloud.executions() == []


def test_a_rejection_is_announced_on_the_event_bus_and_recorded_in_the_ledger(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    body = generate(example_model, 10).to_csv(index=False).encode()

    result = invoke(drop("churn/incoming/tiny.csv", body))

    [event] = cloud.rejected_events()
    assert (event["source"], event["detail-type"]) == ("headrace", "Dataset Rejected")
    assert event["detail"]["rules"] == ["min_rows"]
    assert event["detail"]["quarantine_key"] == result["quarantine_key"]
    items = cloud.dynamodb.query(
        TableName=LEDGER_TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :rejection)",
        ExpressionAttributeValues={":pk": {"S": "model#churn"}, ":rejection": {"S": "rejection#"}},
    )["Items"]
    assert [i["quarantine_key"]["S"] for i in items] == [result["quarantine_key"]]


def test_a_key_outside_every_model_is_quarantined_under_its_own_prefix(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    result = invoke(drop("other-team/incoming/x.csv", good_csv(example_model)))

    assert result["outcome"] == "quarantined"
    assert result["quarantine_key"].startswith("other-team/quarantine/")
    assert [p["rule"] for p in result["problems"]] == ["key_prefix"]


def test_our_own_quarantine_writes_are_ignored(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    result = invoke(drop("churn/quarantine/2026-11-23/abc/reason.json", b"{}"))

    assert result["outcome"] == "ignored"
    assert cloud.rejected_events() == []


def test_metrics_are_emitted_as_embedded_metric_format(
    cloud: Cloud,
    drop: Callable[[str, bytes], dict[str, Any]],
    example_model: ModelConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke(drop("churn/incoming/customers.csv", good_csv(example_model)))

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [accepted] = [b for b in blobs if "DatasetsAccepted" in b]
    assert accepted["model"] == "churn"
    assert accepted["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Headrace"


def test_a_malformed_event_raises_invalid_event_naming_the_field(
    cloud: Cloud, load_event: Callable[[str], dict[str, Any]]
) -> None:
    event = load_event("s3_object_created")
    del event["detail"]["object"]["key"]

    with pytest.raises(InvalidEvent, match=r"detail\.object\.key: Field required"):
        invoke(event)


def test_a_missing_environment_variable_is_named(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, load_event: Any
) -> None:
    monkeypatch.delenv("LEDGER_TABLE")

    with pytest.raises(SettingsError, match="LEDGER_TABLE"):
        invoke(load_event("s3_object_created"))


def test_a_file_uploaded_in_parts_gives_a_dataset_copy_that_reads_back_intact(
    cloud: Cloud, load_event: Callable[[str], dict[str, Any]], example_model: ModelConfig
) -> None:
    # `aws s3 cp` uploads a file of 8 MB or more in parts, with a checksum of the parts (issue 14, finding 5).
    body = generate(example_model, 120_000, seed=3).to_csv(index=False).encode()
    assert len(body) >= 8 * 1024 * 1024
    key = "churn/incoming/big.csv"
    cloud.s3.upload_fileobj(io.BytesIO(body), DATA_BUCKET, key)
    head = cloud.s3.head_object(Bucket=DATA_BUCKET, Key=key)
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload indeed
    event = load_event("s3_object_created")
    event["detail"]["object"].update({"key": key, "size": len(body), "version-id": head["VersionId"]})

    result = invoke(event)

    assert result["outcome"] == "started"
    started = json.loads(cloud.sfn.describe_execution(executionArn=result["execution_arn"])["input"])
    copy = cloud.s3.get_object(
        Bucket=DATA_BUCKET, Key=started["dataset"]["dataset_key"], ChecksumMode="ENABLED"
    )
    assert copy["Body"].read() == body  # botocore validated the copy's full-object checksum on the way


@pytest.mark.parametrize(
    "key",
    ["churn/incoming/red flower.csv", "churn/incoming/a+b.csv", "churn/incoming/a%20b.csv"],
)
def test_keys_with_spaces_plus_and_percent_are_ingested_as_s3_encodes_them(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig, key: str
) -> None:
    result = invoke(drop(key, good_csv(example_model)))

    assert (result["outcome"], result["key"]) == ("started", key)


def test_a_file_at_the_bucket_root_is_recorded_as_misplaced_and_listed_by_status(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    result = invoke(drop("customers.csv", good_csv(example_model)))

    assert result["outcome"] == "misplaced"
    assert "bucket's root" in result["note"]
    [item] = DynamoLedger(cloud.dynamodb, LEDGER_TABLE).everywhere(MisplacedItem)
    assert (item.model, item.key) == ("unknown", "customers.csv")


def test_every_quarantine_is_found_whatever_its_prefix(
    cloud: Cloud, drop: Callable[[str, bytes], dict[str, Any]], example_model: ModelConfig
) -> None:
    invoke(drop("churn/incoming/empty.csv", b""))
    invoke(drop("other-team/incoming/x.csv", good_csv(example_model)))

    found = DynamoLedger(cloud.dynamodb, LEDGER_TABLE).everywhere(RejectionItem)

    assert sorted(i.model for i in found) == ["churn", "other-team"]


# A fresh interpreter imports the handler from its folder, as Lambda does, then validates the CSV on stdin.
CSV_PATH_IMPORTS = """
import sys
sys.path.insert(0, "functions/ingest")
import handler
from headrace.config import load_models
from headrace.ingest.dataset import summarize
from headrace.ingest.validation import inspect
schema = load_models()[0].data
inspection = inspect("x.csv", sys.stdin.buffer.read(), schema)
assert inspection.accepted and inspection.frame is not None, inspection.problems
summarize(inspection.frame, schema)
print(sorted(m for m in ("pandas", "pyarrow") if m in sys.modules))
"""


def test_the_handler_and_a_csv_upload_import_neither_pandas_nor_pyarrow(
    repo_root: Path, example_model: ModelConfig
) -> None:
    # pandas was 290 of the function's 552 ms cold start (issue 15).
    found = subprocess.run(
        [sys.executable, "-c", CSV_PATH_IMPORTS],
        input=good_csv(example_model),
        cwd=repo_root,
        capture_output=True,
        check=True,
    )

    assert found.stdout.decode().strip() == "[]"
