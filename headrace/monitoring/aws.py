"""The monitoring steps' ports with boto3 and Powertools. Nothing runs at import."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from headrace.ledger_keys import model_pk, plain, sort_time
from headrace.monitoring.window import StoredObject

if TYPE_CHECKING:  # the retrain function imports this module and runs without numpy/pandas
    from headrace.drift import DriftResult


class S3Store:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def read(self, bucket: str, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, bucket: str, prefix: str) -> list[StoredObject]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [
            StoredObject(key=o["Key"], size=int(o["Size"]), last_modified=o["LastModified"])
            for page in pages
            for o in page.get("Contents", [])
        ]


class EndpointArtifacts:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def artifact(self, endpoint: str) -> tuple[str, str] | None:
        try:
            config = self._sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationException":
                return None
            raise
        variant = self._sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
        model = self._sagemaker.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer") or model["Containers"][0]
        return str(config), str(container["ModelDataUrl"])


class DynamoLedger:
    """Drift checks (`drift#...`), retrain decisions (`retrain#...`) and the dataset versions they read."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._to = TypeSerializer()
        self._from = TypeDeserializer()

    def _query(
        self, model: str, prefix: str, *, newest_first: bool, limit: int | None = None
    ) -> list[dict[str, Any]]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": model_pk(model)}, ":prefix": {"S": prefix}},
            "ScanIndexForward": not newest_first,
        }
        if limit:
            arguments["Limit"] = limit
        items: list[dict[str, Any]] = []
        for page in self._dynamodb.get_paginator("query").paginate(**arguments):
            items.extend(
                {k: plain(self._from.deserialize(v)) for k, v in item.items()} for item in page["Items"]
            )
            if limit and len(items) >= limit:
                return items[:limit]
        return items

    def checks(self, model: str, limit: int) -> list[dict[str, Any]]:
        return self._query(model, "drift#", newest_first=True, limit=limit)

    def retrains(self, model: str, since: datetime) -> list[dict[str, Any]]:
        items = self._query(model, "retrain#", newest_first=True)
        return [i for i in items if str(i["sk"]) >= f"retrain#{sort_time(since)}"]

    def newest_dataset(self, model: str) -> dict[str, Any] | None:
        datasets = self._query(model, "dataset#", newest_first=False)
        return max(datasets, key=lambda d: str(d.get("received_at", "")), default=None)

    def put(self, model: str, sk: str, fields: Mapping[str, Any]) -> None:
        item = {"pk": model_pk(model), "sk": sk, **{k: v for k, v in fields.items() if v is not None}}
        self._dynamodb.put_item(
            TableName=self._table, Item={k: self._to.serialize(_dynamo(v)) for k, v in item.items()}
        )


def _dynamo(value: Any) -> Any:
    """DynamoDB takes no floats: numbers go in as text-exact Decimals."""
    from decimal import Decimal

    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _dynamo(v) for k, v in value.items()}
    return value


class PowertoolsDriftMetrics:
    """One EMF document per metric: per feature scores carry the dimensions Model and Feature."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace

    def _put(self, name: str, value: float, unit: MetricUnit, **dimensions: str) -> None:
        with single_metric(name=name, unit=unit, value=value, namespace=self._namespace) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)

    def publish(self, model: str, result: DriftResult) -> None:
        self._put("DriftedFeatures", float(len(result.drifted_features)), MetricUnit.Count, Model=model)
        for feature in result.features:
            if feature.psi is not None:
                self._put("FeaturePSI", feature.psi, MetricUnit.NoUnit, Model=model, Feature=feature.name)
            if feature.ks_statistic is not None:
                self._put(
                    "FeatureKS", feature.ks_statistic, MetricUnit.NoUnit, Model=model, Feature=feature.name
                )

    def rows(self, model: str, rows: int) -> None:
        self._put("DriftCheckRows", float(rows), MetricUnit.Count, Model=model)


class StepFunctionsTraining:
    def __init__(self, sfn: Any, machines: Mapping[str, str]) -> None:
        self._sfn = sfn
        self._machines = machines

    def start(self, model: str, name: str, payload: str) -> str:
        machine = self._machines[model]
        try:
            return str(
                self._sfn.start_execution(stateMachineArn=machine, name=name, input=payload)["executionArn"]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
