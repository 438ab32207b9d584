"""Two accounts behind one gated moto, as a plane whose stages live in several accounts serves them: model
package groups created from a template with their resource policy, Put-/Get-/DeleteModelPackageGroupPolicy
(seams/sagemaker_policies.py), the policy letting another account read a group's versions (seams/iam.py),
DescribeScalingActivities answering the caller's account, and training jobs of one name in both accounts
each run as its own account's."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from headrace.local.aws import LOCAL_REGION, Clients, PlaneCredentials
from headrace.local.cloudformation import ProvisionError
from headrace.local.cloudformation.api_requests import model_package_group_requests
from headrace.local.cloudformation.deferred import DeferredResources
from headrace.local.cloudformation.intrinsics import StackReferences
from headrace.local.network import free_port
from headrace.local.sagemaker.containers import ImageRegistry
from headrace.local.sagemaker.training import TrainingCompute
from headrace.local.seams.authn import Authenticator
from headrace.local.seams.autoscaling import activities_answered
from headrace.local.seams.iam import LocalIam
from headrace.local.seams.sagemaker import MotoSageMakerRecords, training_installed
from headrace.local.seams.sagemaker_policies import group_policies_installed
from headrace.local.seams.server import start_server

DEV, PROD = "111111111111", "222222222222"
STACK = "headrace-dev-registry"
GROUP_TYPE = "AWS::SageMaker::ModelPackageGroup"
WHERE = {"Fn::Sub": "arn:aws:sagemaker:${AWS::Region}:${AWS::AccountId}"}


@dataclass
class TwoAccounts:
    dev: Clients
    prod: Clients


@pytest.fixture(scope="module")
def accounts() -> Iterator[TwoAccounts]:
    dev_key, prod_key = PlaneCredentials.generate(), PlaneCredentials.generate()
    authenticator = Authenticator(dev_key, account=DEV, accounts={PROD: prod_key})
    iam = LocalIam(DEV, LOCAL_REGION, {dev_key.access_key_id: DEV, prod_key.access_key_id: PROD})
    authenticator.trust(iam.sessions.issued)
    port = free_port()
    stop = start_server(port, guard=authenticator.wsgi)
    endpoint = f"http://127.0.0.1:{port}"

    def activities(account: str, resource_id: str | None) -> list[dict[str, Any]]:
        return [{"ActivityId": f"scaled-in-{account}", "ResourceId": resource_id or f"endpoint/{account}"}]

    try:
        with group_policies_installed(), iam.installed(), activities_answered(activities):
            yield TwoAccounts(
                Clients(endpoint, LOCAL_REGION, DEV, dev_key), Clients(endpoint, LOCAL_REGION, PROD, prod_key)
            )
    finally:
        stop()


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    response: Any = error.value.response
    return response["Error"]["Code"], response["Error"]["Message"]


def _read_grant(group: str, reader: str) -> dict[str, Any]:
    """What stacks/promotion.py grants the stages that promote from a group: its versions' reads."""
    principal = {"AWS": f"arn:aws:iam::{reader}:root"}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": principal,
                "Action": ["sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"],
                "Resource": {"Fn::Join": ["", [WHERE, f":model-package-group/{group}"]]},
            },
            {
                "Effect": "Allow",
                "Principal": principal,
                "Action": "sagemaker:DescribeModelPackage",
                "Resource": {"Fn::Join": ["", [WHERE, f":model-package/{group}/*"]]},
            },
        ],
    }


def _template(*groups: tuple[str, dict[str, Any] | None]) -> dict[str, Any]:
    resources = {}
    for index, (name, policy) in enumerate(groups):
        properties: dict[str, Any] = {"ModelPackageGroupName": name, "ModelPackageGroupDescription": "churn"}
        if policy:
            properties["ModelPackageGroupPolicy"] = policy
        resources[f"Group{index}"] = {"Type": GROUP_TYPE, "Properties": properties}
    return {"Resources": resources}


def _references(account: str) -> StackReferences:
    pseudo = {"AWS::AccountId": account, "AWS::Region": LOCAL_REGION, "AWS::Partition": "aws"}
    return StackReferences(physical_ids={}, pseudo_parameters=pseudo)


# --- from a template (deferred.py, api_requests.py) ---------------------------------------------------------


def test_a_template_s_group_becomes_a_create_and_a_put_request_with_its_policy_resolved() -> None:
    template = _template(("headrace-dev-a", _read_grant("headrace-dev-a", PROD)), ("headrace-dev-b", None))
    template["Resources"]["Group0"]["Properties"]["Tags"] = [{"Key": "headrace:stage", "Value": "dev"}]
    [(create, put), (bare, no_policy)] = model_package_group_requests(template, STACK, _references(DEV))
    assert create == {
        "ModelPackageGroupName": "headrace-dev-a",
        "ModelPackageGroupDescription": "churn",
        "Tags": [{"Key": "headrace:stage", "Value": "dev"}],
    }
    assert put is not None and put["ModelPackageGroupName"] == "headrace-dev-a"
    statements = json.loads(put["ResourcePolicy"])["Statement"]
    assert (
        statements[0]["Resource"]
        == f"arn:aws:sagemaker:{LOCAL_REGION}:{DEV}:model-package-group/headrace-dev-a"
    )
    assert bare == {"ModelPackageGroupName": "headrace-dev-b", "ModelPackageGroupDescription": "churn"}
    assert no_policy is None


def test_a_group_without_its_name_is_refused_naming_the_stack_and_resource() -> None:
    template = {"Resources": {"Broken": {"Type": GROUP_TYPE, "Properties": {}}}}
    with pytest.raises(ProvisionError, match=f"{STACK}: model package group Broken"):
        model_package_group_requests(template, STACK, _references(DEV))


def test_provisioning_creates_the_groups_with_their_policies_and_again_changes_nothing(
    accounts: TwoAccounts,
) -> None:
    group, bare = "headrace-dev-provisioned", "headrace-dev-unshared"
    template = _template((group, _read_grant(group, PROD)), (bare, None))
    deferred = DeferredResources(accounts.dev, lambda _: None)
    for _ in range(2):  # a restarted plane provisions the same stack again
        deferred.create_model_package_groups(STACK, template, {})
    sagemaker = accounts.dev.client("sagemaker")
    described = sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    assert described["ModelPackageGroupArn"].split(":")[4] == DEV
    policy = json.loads(
        sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"]
    )
    assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{PROD}:root"}
    with pytest.raises(ClientError) as refused:
        sagemaker.get_model_package_group_policy(ModelPackageGroupName=bare)
    assert _code(refused)[0] == "ValidationException"


# --- Put/Get/DeleteModelPackageGroupPolicy (seams/sagemaker_policies.py) -----------------------------------


def _group_with_a_version(clients: Clients, group: str) -> str:
    sagemaker = clients.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    return str(
        sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "serve", "ModelDataUrl": "s3://models/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
    )


def _resolved(policy: dict[str, Any]) -> str:
    return json.dumps(_references(DEV).resolve(policy))


def test_get_of_a_group_without_a_policy_is_the_validation_error_sagemaker_answers(
    accounts: TwoAccounts,
) -> None:
    # GetModelPackageGroupPolicy names no error of its own, only the common ones (ValidationError, 400:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_GetModelPackageGroupPolicy.html,
    # CommonErrors.html); SageMaker answers a group without a policy "ValidationException: Cannot find
    # resource policy ...", the answer terraform-provider-aws reads as "no policy" (internal/service/
    # sagemaker/find.go, FindModelPackageGroupPolicyByName).
    group = "headrace-dev-nopolicy"
    sagemaker = accounts.dev.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    for call in (sagemaker.get_model_package_group_policy, sagemaker.delete_model_package_group_policy):
        with pytest.raises(ClientError) as refused:
            call(ModelPackageGroupName=group)
        code, message = _code(refused)
        assert code == "ValidationException" and message.startswith("Cannot find resource policy")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_put_get_and_delete_keep_the_policy_by_name_or_arn(accounts: TwoAccounts) -> None:
    group = "headrace-dev-roundtrip"
    sagemaker = accounts.dev.client("sagemaker")
    arn = sagemaker.create_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    policy = _resolved(_read_grant(group, PROD))
    put = sagemaker.put_model_package_group_policy(ModelPackageGroupName=group, ResourcePolicy=policy)
    assert put["ModelPackageGroupArn"] == arn
    assert sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"] == policy
    sagemaker.delete_model_package_group_policy(ModelPackageGroupName=group)
    with pytest.raises(ClientError):
        sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)


def test_a_policy_that_is_not_a_json_policy_document_is_refused(accounts: TwoAccounts) -> None:
    group = "headrace-dev-badpolicy"
    sagemaker = accounts.dev.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    for document in ("not json", "[]", '{"Version": "2012-10-17"}'):
        with pytest.raises(ClientError) as refused:
            sagemaker.put_model_package_group_policy(ModelPackageGroupName=group, ResourcePolicy=document)
        assert _code(refused)[0] == "ValidationException"


def test_another_account_reads_the_group_s_versions_only_while_its_policy_grants_it(
    accounts: TwoAccounts,
) -> None:
    group = "headrace-dev-shared"
    version = _group_with_a_version(accounts.dev, group)
    group_arn = f"arn:aws:sagemaker:{LOCAL_REGION}:{DEV}:model-package-group/{group}"
    prod = accounts.prod.client("sagemaker")

    def read() -> list[str]:
        listed = prod.list_model_packages(ModelPackageGroupName=group_arn)["ModelPackageSummaryList"]
        prod.describe_model_package(ModelPackageName=version)
        return [s["ModelPackageArn"] for s in listed]

    # Across accounts, the group's own policy must allow it (IAM User Guide, "Cross-account policy evaluation
    # logic": https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
    with pytest.raises(ClientError) as refused:
        read()
    assert _code(refused)[0] == "AccessDeniedException"
    assert f"arn:aws:iam::{PROD}:root is not authorized" in _code(refused)[1]
    dev = accounts.dev.client("sagemaker")
    dev.put_model_package_group_policy(
        ModelPackageGroupName=group, ResourcePolicy=_resolved(_read_grant(group, PROD))
    )
    assert read() == [version]
    dev.delete_model_package_group_policy(ModelPackageGroupName=group)
    with pytest.raises(ClientError) as refused_again:
        read()
    assert _code(refused_again)[0] == "AccessDeniedException"


def test_a_grant_to_another_account_lets_no_third_one_in(accounts: TwoAccounts) -> None:
    group = "headrace-dev-granted-elsewhere"
    _group_with_a_version(accounts.dev, group)
    grant = _resolved(_read_grant(group, "333333333333"))
    accounts.dev.client("sagemaker").put_model_package_group_policy(
        ModelPackageGroupName=group, ResourcePolicy=grant
    )
    group_arn = f"arn:aws:sagemaker:{LOCAL_REGION}:{DEV}:model-package-group/{group}"
    with pytest.raises(ClientError) as refused:
        accounts.prod.client("sagemaker").list_model_packages(ModelPackageGroupName=group_arn)
    assert _code(refused)[0] == "AccessDeniedException"


# --- Application Auto Scaling (seams/autoscaling.py) --------------------------------------------------------


def test_describe_scaling_activities_answers_the_caller_s_account(accounts: TwoAccounts) -> None:
    for clients in (accounts.dev, accounts.prod):
        answer = clients.client("application-autoscaling").describe_scaling_activities(
            ServiceNamespace="sagemaker"
        )
        assert [a["ActivityId"] for a in answer["ScalingActivities"]] == [f"scaled-in-{clients.account}"]


# --- training jobs of one name in two accounts (seams/sagemaker.py records, training.py) --------------------

# A stand-in training image honouring SageMaker's container contract: the model says which stage trained it.
TRAIN_SCRIPT = """
import json, os, pathlib
root = pathlib.Path(os.environ["HEADRACE_OPT_ML"])
hp = json.loads((root / "input/config/hyperparameters.json").read_text())
(root / "model/model.txt").write_text(f"trained for {hp['stage']}")
"""


@pytest.fixture(scope="module")
def training(accounts: TwoAccounts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainingCompute]:
    images = ImageRegistry()
    image_dir = tmp_path_factory.mktemp("image")
    (image_dir / "train").write_text(TRAIN_SCRIPT)
    images.add("fake-trainer", image_dir)
    records = MotoSageMakerRecords(DEV, LOCAL_REGION, [PROD])
    compute = TrainingCompute(accounts.dev, images, tmp_path_factory.mktemp("jobs"), records)
    by_account = {DEV: accounts.dev, PROD: accounts.prod}
    # SageMaker reads the channels and writes the model and logs in the job's account (as its role).
    compute.role_clients = lambda role: by_account[role.split(":")[4]]
    for clients in by_account.values():
        clients.s3.create_bucket(Bucket=_bucket(clients))
        clients.s3.put_object(Bucket=_bucket(clients), Key="in/part.csv", Body=b"a,b\n1,2\n")
    with training_installed(compute):
        yield compute


def _bucket(clients: Clients) -> str:
    return f"headrace-training-{clients.account}"


def _train(clients: Clients, name: str, stage: str) -> None:
    clients.client("sagemaker").create_training_job(
        TrainingJobName=name,
        HyperParameters={"stage": stage},
        AlgorithmSpecification={
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/assets:fake-trainer",
            "TrainingInputMode": "File",
        },
        RoleArn=f"arn:aws:iam::{clients.account}:role/training",
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{_bucket(clients)}/in/"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{_bucket(clients)}/{stage}/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def test_two_accounts_training_jobs_of_one_name_each_run_as_their_own(
    accounts: TwoAccounts, training: TrainingCompute
) -> None:
    # Training job names derive from the data and the execution, not the stage (naming.training_job_name):
    # two stages given one file name their jobs alike, which SageMaker allows across accounts (a name is
    # unique "within an Amazon Web Services Region in an Amazon Web Services account":
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html, TrainingJobName).
    name = "churn-0123456789ab-cdef0123"
    for clients, stage in ((accounts.dev, "dev"), (accounts.prod, "prod")):
        _train(clients, name, stage)
    for clients, stage in ((accounts.dev, "dev"), (accounts.prod, "prod")):
        assert training.wait(name, timeout_s=60, account=clients.account)
        described = clients.client("sagemaker").describe_training_job(TrainingJobName=name)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        artifacts = described["ModelArtifacts"]["S3ModelArtifacts"]
        bucket = _bucket(clients)
        assert artifacts == f"s3://{bucket}/{stage}/{name}/output/model.tar.gz"
        key = artifacts.removeprefix(f"s3://{bucket}/")
        body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            assert archive.extractfile("model.txt").read() == f"trained for {stage}".encode()  # type: ignore[union-attr]
