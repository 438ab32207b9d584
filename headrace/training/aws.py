"""Training's own ports implemented with boto3, and `connect`, which bundles them with the shared adapters
(headrace.aws). Nothing runs at import: the handlers connect on their first invocation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import boto3
from aws_lambda_powertools import Metrics
from botocore.exceptions import ClientError

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.errors import is_already_existing, is_missing_resource
from headrace.aws.events import publisher_for
from headrace.aws.metrics import PowertoolsMetrics
from headrace.aws.s3 import S3Store
from headrace.lambda_env import FunctionSettings
from headrace.ledger import DynamoLedger
from headrace.training.lineage import decode_metrics
from headrace.training.payloads import ApprovalStatus, ChampionInfo
from headrace.training.ports import PackageVersion, TrainingPorts


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SageMakerRegistry:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def champion(self, group: str) -> ChampionInfo | None:
        try:
            summaries = self._sagemaker.list_model_packages(
                ModelPackageGroupName=group,
                ModelApprovalStatus="Approved",
                SortBy="CreationTime",
                SortOrder="Descending",
                MaxResults=1,
            )["ModelPackageSummaryList"]
        except ClientError as exc:
            if is_missing_resource(exc):
                return None
            raise
        if not summaries:
            return None
        package = self._sagemaker.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])
        containers = package.get("InferenceSpecification", {}).get("Containers", [])
        return ChampionInfo(
            version=int(package["ModelPackageVersion"]),
            arn=package["ModelPackageArn"],
            metrics=decode_metrics(package.get("CustomerMetadataProperties", {}).get("metrics", "")),
            model_data_url=containers[0].get("ModelDataUrl") if containers else None,
        )

    def ensure_group(self, group: str, description: str, tags: Mapping[str, str]) -> None:
        try:
            self._sagemaker.describe_model_package_group(ModelPackageGroupName=group)
            return
        except ClientError as exc:
            if not is_missing_resource(exc):
                raise
        try:
            self._sagemaker.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=description[:1024],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        except ClientError as exc:
            # Two runs of one model registering at once: the other one created it first.
            if not is_already_existing(exc):
                raise

    def _newest_first(self, group: str) -> Iterator[dict[str, Any]]:
        pages = self._sagemaker.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
        )
        for page in pages:
            yield from page["ModelPackageSummaryList"]

    def find_version(self, group: str, training_job: str, created_after: datetime) -> str | None:
        try:
            for summary in self._newest_first(group):
                if _utc(summary["CreationTime"]) < _utc(created_after):
                    return None
                arn = str(summary["ModelPackageArn"])
                package = self._sagemaker.describe_model_package(ModelPackageName=arn)
                if package.get("CustomerMetadataProperties", {}).get("training_job") == training_job:
                    return arn
        except ClientError as exc:
            if is_missing_resource(exc):
                return None
            raise
        return None

    def create_version(self, request: Mapping[str, Any]) -> str:
        return str(self._sagemaker.create_model_package(**request)["ModelPackageArn"])

    def describe_version(self, arn: str) -> PackageVersion:
        package = self._sagemaker.describe_model_package(ModelPackageName=arn)
        return PackageVersion(
            arn=package["ModelPackageArn"],
            group=package["ModelPackageGroupName"],
            version=int(package["ModelPackageVersion"]),
            approval_status=cast(ApprovalStatus, package["ModelApprovalStatus"]),
        )


class SageMakerTuningJobs:
    """TuningJobs over boto3's SageMaker client."""

    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def describe(self, name: str) -> Mapping[str, Any]:
        return cast(
            Mapping[str, Any],
            self._sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        )

    def training_jobs(self, name: str) -> Iterator[Mapping[str, Any]]:
        # Ten summaries a page by default, 100 at most (ListTrainingJobsForHyperParameterTuningJob).
        pages = self._sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=name, PaginationConfig={"PageSize": 100}
        )
        for page in pages:
            yield from page["TrainingJobSummaries"]

    def describe_training_job(self, name: str) -> Mapping[str, Any]:
        return cast(Mapping[str, Any], self._sagemaker.describe_training_job(TrainingJobName=name))

    def newest_completed(self, name_contains: str) -> list[str]:
        summaries = self._sagemaker.list_hyper_parameter_tuning_jobs(
            NameContains=name_contains,
            StatusEquals="Completed",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=10,
        )["HyperParameterTuningJobSummaries"]
        return [str(s["HyperParameterTuningJobName"]) for s in summaries]


def connect(
    settings: FunctionSettings, metrics: Metrics, session: boto3.Session | None = None
) -> TrainingPorts:
    """The training steps' ports; each client is made when a step first uses it."""
    sagemaker = lazy_client("sagemaker", session)
    return TrainingPorts(
        store=S3Store(lazy_client("s3", session)),
        ledger=DynamoLedger(lazy_client("dynamodb", session), settings.ledger_table),
        registry=SageMakerRegistry(sagemaker),
        events=publisher_for(settings, session),
        metrics=PowertoolsMetrics(metrics, settings.stage),
        clock=now,
        tuning=SageMakerTuningJobs(sagemaker),
    )
