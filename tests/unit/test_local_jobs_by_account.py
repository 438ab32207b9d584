"""Jobs by (account, name): a tuning job starts and stops its trials in its own account, as SageMaker's tuning
service does, and tuning and transform jobs of one name in two accounts (their names derive from the data, not
the stage) each run as their own account's."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from headrace.local.sagemaker.transform import TransformCompute
from headrace.local.sagemaker.tuning import ApiTrialJobs, TuningCompute

DEV, PROD = "111111111111", "222222222222"
CONFIG = {
    "Strategy": "Random",
    "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
    "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.9"}]},
}
DEFINITION = {
    "AlgorithmSpecification": {"TrainingImage": "trainer", "TrainingInputMode": "File"},
    "RoleArn": f"arn:aws:iam::{PROD}:role/training",
    "OutputDataConfig": {"S3OutputPath": "s3://out/"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
    "StoppingCondition": {"MaxRuntimeInSeconds": 60},
}


def _tuning_record(name: str, account: str) -> Any:
    return SimpleNamespace(
        arn=f"arn:aws:sagemaker:us-east-1:{account}:hyper-parameter-tuning-job/{name}",
        hyper_parameter_tuning_job_config=CONFIG,
        training_job_definition=DEFINITION,
        warm_start_config=None,
    )


class Records:
    """Records by (account, name), as moto's backends keep them; no account: the first holding the name."""

    def __init__(self, *tuning: tuple[str, str]) -> None:
        self.tuning = {(account, name): _tuning_record(name, account) for account, name in tuning}
        self.training: dict[tuple[str, str], Any] = {}

    @staticmethod
    def _find(records: dict[tuple[str, str], Any], name: str, account: str | None) -> Any:
        if account is None:
            return next(r for (_, n), r in records.items() if n == name)
        return records[account, name]

    def tuning_job(self, name: str, account: str | None = None) -> Any:
        return self._find(self.tuning, name, account)

    def training_job(self, name: str, account: str | None = None) -> Any:
        return self._find(self.training, name, account)


class Jobs:
    """CreateTrainingJob as the tuning service calls it: each trial completes at once with an objective."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.created: list[tuple[str, str]] = []

    def create(self, account: str, request: dict[str, Any]) -> None:
        name = request["TrainingJobName"]
        self.created.append((account, name))
        now = datetime.now(UTC)
        self.records.training[account, name] = SimpleNamespace(
            arn=f"arn:aws:sagemaker:us-east-1:{account}:training-job/{name}",
            training_job_status="Completed",
            final_metric_data_list=[{"MetricName": "validation:auc", "Value": 0.8}],
            creation_time=now,
            training_start_time=now,
            training_end_time=now,
        )

    def stop(self, account: str, name: str) -> None:
        raise AssertionError("no trial is stopped here")


def test_a_tuning_job_s_trials_are_created_in_the_tuning_job_s_account() -> None:
    records = Records((PROD, "prod-tuning"))
    jobs = Jobs(records)
    tuning = TuningCompute(records, jobs, poll_s=0.01)
    tuning.start("prod-tuning", account=PROD)
    assert tuning.wait("prod-tuning", timeout_s=30, account=PROD)
    assert [account for account, _ in jobs.created] == [PROD, PROD]
    assert records.tuning[PROD, "prod-tuning"].hyper_parameter_tuning_job_status == "Completed"


def test_tuning_jobs_of_one_name_in_two_accounts_each_run_their_own_trials() -> None:
    # Tuning job names derive from the data and the execution, not the stage (naming.tuning_job_name), and a
    # name is unique "within an Amazon Web Services Region in an Amazon Web Services account"
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html).
    records = Records((DEV, "churn-tuning"), (PROD, "churn-tuning"))
    jobs = Jobs(records)
    tuning = TuningCompute(records, jobs, poll_s=0.01)
    for account in (DEV, PROD):
        tuning.start("churn-tuning", account=account)
    for account in (DEV, PROD):
        assert tuning.wait("churn-tuning", timeout_s=30, account=account)
        record = records.tuning[account, "churn-tuning"]
        assert record.hyper_parameter_tuning_job_status == "Completed"
        assert len(record.trial_summaries) == 2
        assert all(f":{account}:training-job/" in s["TrainingJobArn"] for s in record.trial_summaries)
    assert sorted(account for account, _ in jobs.created) == [DEV, DEV, PROD, PROD]


class SageMaker:
    def __init__(self, account: str, calls: list[tuple[str, str, str]]) -> None:
        self.account, self.calls = account, calls

    def create_training_job(self, **request: Any) -> None:
        self.calls.append((self.account, "create", request["TrainingJobName"]))

    def stop_training_job(self, TrainingJobName: str) -> None:
        self.calls.append((self.account, "stop", TrainingJobName))


def test_trials_go_through_the_clients_of_their_account_and_an_unknown_account_is_refused() -> None:
    calls: list[tuple[str, str, str]] = []
    by_account = {a: SimpleNamespace(client=lambda _, a=a: SageMaker(a, calls)) for a in (DEV, PROD)}
    jobs = ApiTrialJobs(by_account)  # type: ignore[arg-type]
    jobs.create(PROD, {"TrainingJobName": "t-001"})
    jobs.stop(DEV, "t-002")
    assert calls == [(PROD, "create", "t-001"), (DEV, "stop", "t-002")]
    with pytest.raises(KeyError, match="no account 333333333333"):
        jobs.create("333333333333", {"TrainingJobName": "t-003"})


class TransformRecords:
    """Transform jobs by (account, name); every model is missing, so each job fails at once naming its own."""

    def __init__(self, name: str, *accounts: str) -> None:
        self.jobs = {
            (account, name): SimpleNamespace(
                arn=f"arn:aws:sagemaker:us-east-1:{account}:transform-job/{name}",
                model_name=f"model-of-{account}",
                transform_job_status="InProgress",
            )
            for account in accounts
        }

    def transform_job(self, name: str, account: str | None = None) -> Any:
        return Records._find(self.jobs, name, account)

    def model_container(self, name: str) -> dict[str, Any]:
        raise KeyError(f"no model {name}")


def test_transform_jobs_of_one_name_in_two_accounts_each_end_their_own_record(tmp_path: Any) -> None:
    # "The name must be unique within an Amazon Web Services Region in an Amazon Web Services account"
    # (TransformJobName: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html).
    name = "churn-batch-0123abcd-20261206164500"  # naming.transform_job_name: no stage in it
    records = TransformRecords(name, DEV, PROD)
    compute = TransformCompute(None, None, tmp_path, records)  # type: ignore[arg-type]
    for account in (DEV, PROD):
        compute.start(name, account=account)
    for account in (DEV, PROD):
        assert compute.wait(name, timeout_s=30, account=account)
        job = records.jobs[account, name]
        assert job.transform_job_status == "Failed"
        assert f"model-of-{account}" in job.failure_reason
