"""The local plane's `PolicyStore` (headrace/local/iam/authorizer.py) on moto's backends in this process:
a role's identity policies from IAM, a resource's own policy from S3, KMS, Lambda, SQS, SNS or a SageMaker
model package group, and the implicit checks AWS makes beside a call (iam:PassRole, KMS behind S3, SQS and
SageMaker endpoints). Each is read in the account that owns it: the one its ARN names (an S3 bucket's, from
moto's record of who created it), which is how the plane serves stages in several accounts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from moto.awslambda.models import lambda_backends
from moto.iam.access_control import PermissionResult
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.s3.models import FakeBucket, s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from headrace.local.iam import Policy
from headrace.local.iam.actions import Call, Check

# Where the plane keeps a model package group's resource policy on moto's group (moto 5.2.5 has no
# PutModelPackageGroupPolicy; seams/sagemaker_policies.py adds it).
GROUP_POLICY_ATTRIBUTE = "headrace_resource_policy"

# Who receives a role passed to each create call (iam:PassedToService).
_PASSED_ROLES: dict[tuple[str, str], tuple[str, str]] = {
    ("sagemaker", "CreateTrainingJob"): ("RoleArn", "sagemaker.amazonaws.com"),
    ("sagemaker", "CreateModel"): ("ExecutionRoleArn", "sagemaker.amazonaws.com"),
    ("lambda", "CreateFunction"): ("Role", "lambda.amazonaws.com"),
    ("states", "CreateStateMachine"): ("roleArn", "states.amazonaws.com"),
}


def _via_s3(region: str) -> dict[str, list[str]]:
    """What AWS sets as kms:ViaService when S3 uses a key on a caller's behalf (AWS KMS developer guide,
    "kms:ViaService": https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html)."""
    return {"kms:ViaService": [f"s3.{region}.amazonaws.com"]}


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4].isdigit() else None


class MotoPolicyStore:
    """`PolicyStore` on moto's backends in this process (`account`: where a resource named without an
    account is looked for)."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def owner(self, resource_arn: str) -> str | None:
        if resource_arn.startswith("arn:aws:s3:::"):
            bucket = resource_arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
            owned = s3_backends.bucket_accounts.get(bucket)
            return str(owned[1]) if owned else None
        return _arn_account(resource_arn)

    def identity_policies(self, role_arn: str) -> list[Policy]:
        backend = iam_backends[_arn_account(role_arn) or self.account]["aws"]
        try:
            role = backend.get_role_by_arn(role_arn)
        except Exception:
            return []  # a role that does not exist allows nothing
        policies = [Policy.parse(document, name) for name, document in role.policies.items()]
        for arn, managed in role.managed_policies.items():
            document = next((v.document for v in managed.versions if v.is_default), None)
            if document:
                policies.append(Policy.parse(document, arn))
        return policies

    def trust_policy(self, role_arn: str) -> Policy | None:
        """The role's trust policy (AssumeRolePolicyDocument); None for a role that does not exist."""
        try:
            role = iam_backends[_arn_account(role_arn) or self.account]["aws"].get_role_by_arn(role_arn)
        except Exception:
            return None
        return Policy.parse(role.assume_role_policy_document, "trust")

    def resource_policy(self, resource_arn: str) -> tuple[Policy | None, bool]:
        parts = resource_arn.split(":", 5)
        if len(parts) != 6:
            return None, False
        service, resource = parts[2], parts[5]
        account, region = parts[4] or self.account, parts[3] or self.region
        with contextlib.suppress(Exception):
            if service == "s3":
                bucket = s3_backends[self.account]["aws"].get_bucket(resource.split("/", 1)[0])
                return (Policy.parse(bucket.policy.decode()) if bucket.policy else None), False
            if service == "kms" and resource.startswith("key/"):
                key = kms_backends[account][region].describe_key(resource.removeprefix("key/"))
                return Policy.parse(key.policy), True
            if service == "sagemaker" and resource.startswith(("model-package-group/", "model-package/")):
                # A model package group's policy covers the group and its versions (SageMaker developer guide,
                # "Cross-account model registry": https://docs.aws.amazon.com/sagemaker/latest/dg/
                # model-registry-ram.html; API_PutModelPackageGroupPolicy).
                group = resource.split("/")[1]
                found = sagemaker_backends[account][region].model_package_groups.get(group)
                document = getattr(found, GROUP_POLICY_ATTRIBUTE, None)
                return (Policy.parse(document) if document else None), False
            if service == "lambda":
                function = lambda_backends[account][region].get_function(resource_arn)
                # moto keeps AddPermission's statements (and CloudFormation's AWS::Lambda::Permission)
                # already in policy form; get_policy() raises when there are none.
                statements = function.policy.statements if function.policy else []
                return (Policy.parse({"Statement": statements}) if statements else None), False
            if service == "sns":
                topic = sns_backends[account][region].get_topic(resource_arn)
                return (Policy.parse(topic._policy_json) if topic._policy_json else None), False
            if service == "sqs":
                queue = sqs_backends[account][region].get_queue(resource)
                return (Policy.parse(queue.policy) if queue.policy else None), False
        return None, False

    def key_arn(self, key_id: str | None, account: str | None = None) -> str | None:
        """The ARN of a key named by id, alias or ARN, in `account` (default: the store's)."""
        if not key_id:
            return None
        if key_id.startswith("arn:") and ":key/" in key_id:
            return key_id
        with contextlib.suppress(Exception):
            return str(kms_backends[account or self.account][self.region].describe_key(key_id).arn)
        return None

    def implied_checks(self, call: Call) -> list[Check]:
        checks: list[Check] = []
        passed = _PASSED_ROLES.get((call.prefix, call.operation))
        if passed and (role := call.params.get(passed[0])):
            checks.append(Check("iam:PassRole", str(role), {"iam:PassedToService": [passed[1]]}))
        if (call.prefix, call.operation) == ("sagemaker", "CreateHyperParameterTuningJob"):
            # The trials run as the job definition's RoleArn ("the IAM role associated with the training jobs
            # that the tuning job launches", API_HyperParameterTrainingJobDefinition), so creating the tuning
            # job passes that role, which takes iam:PassRole
            # (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
            definitions = [call.params.get("TrainingJobDefinition") or {}]
            definitions += call.params.get("TrainingJobDefinitions") or []
            for role in sorted({str(d["RoleArn"]) for d in definitions if d.get("RoleArn")}):
                checks.append(
                    Check("iam:PassRole", role, {"iam:PassedToService": ["sagemaker.amazonaws.com"]})
                )
        if call.prefix == "s3":
            checks += self._s3_kms(call)
        if call.prefix == "sqs" and call.operation in ("SendMessage", "SendMessageBatch"):
            checks += self._sqs_kms(call)
        if (call.prefix, call.operation) in (
            ("sagemaker", "CreateEndpoint"),
            ("sagemaker", "UpdateEndpoint"),
        ):
            checks += self._endpoint_kms(call)
        return checks

    def _s3_kms(self, call: Call) -> list[Check]:
        """SSE-KMS: writing needs kms:GenerateDataKey and reading kms:Decrypt on the key, copying an
        encrypted object kms:Decrypt on the source's key too (S3 user guide, "Using server-side encryption
        with AWS KMS keys": https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
        S3 uses the key on the caller's behalf: kms:ViaService names S3. A bucket's key is its owner's."""
        bucket_name = str(call.params.get("Bucket"))
        via = _via_s3(call.region)
        checks: list[Check] = []
        with contextlib.suppress(Exception):
            backend = s3_backends[self.account]["aws"]
            if call.operation == "CopyObject":
                checks += self._decrypt(backend, *_copy_source(call.params.get("CopySource")), via)
            if call.operation in ("PutObject", "CreateMultipartUpload", "CopyObject"):
                key_id = call.params.get("SSEKMSKeyId")
                if not key_id and call.params.get("ServerSideEncryption") != "AES256":
                    bucket = backend.get_bucket(bucket_name)
                    for rule in (bucket.encryption or {}).get("Rule", []):
                        default = rule.get("ApplyServerSideEncryptionByDefault", {})
                        if default.get("SSEAlgorithm") == "aws:kms":
                            key_id = default.get("KMSMasterKeyID")
                if arn := self.key_arn(key_id, self.owner(f"arn:aws:s3:::{bucket_name}")):
                    checks.append(Check("kms:GenerateDataKey", arn, via))
            if call.operation == "GetObject":
                checks += self._decrypt(
                    backend, bucket_name, str(call.params.get("Key")), call.params.get("VersionId"), via
                )
        return checks

    def _decrypt(
        self, backend: Any, bucket: str, key: str, version: str | None, via: dict[str, list[str]]
    ) -> list[Check]:
        stored = backend.get_object(bucket, key, version_id=version)
        if (
            stored is not None
            and stored.encryption == "aws:kms"
            and (arn := self.key_arn(stored.kms_key_id, self.owner(f"arn:aws:s3:::{bucket}")))
        ):
            return [Check("kms:Decrypt", arn, via)]
        return []

    def _sqs_kms(self, call: Call) -> list[Check]:
        """An SSE-KMS queue: producers need kms:GenerateDataKey and kms:Decrypt (SQS developer guide,
        "Key management")."""
        with contextlib.suppress(Exception):
            name = str(call.params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
            queue = sqs_backends[call.account][self.region].get_queue(name)
            if arn := self.key_arn(getattr(queue, "kms_master_key_id", None)):
                return [Check("kms:GenerateDataKey", arn), Check("kms:Decrypt", arn)]
        return []

    def _endpoint_kms(self, call: Call) -> list[Check]:
        """An endpoint config with KmsKeyId: CreateEndpoint needs kms:CreateGrant (SageMaker API
        permissions reference, CreateEndpoint)."""
        with contextlib.suppress(Exception):
            config = sagemaker_backends[call.account][self.region].describe_endpoint_config(
                call.params["EndpointConfigName"]
            )
            if arn := self.key_arn(config.get("KmsKeyId"), call.account):
                return [Check("kms:CreateGrant", arn, {"kms:GrantIsForAWSResource": ["true"]})]
        return []


def _copy_source(source: Any) -> tuple[str, str, str | None]:
    """CopyObject's x-amz-copy-source (`bucket/key[?versionId=...]`, URL-encoded) as bucket, key, version."""
    if isinstance(source, dict):
        return str(source.get("Bucket")), str(source.get("Key")), source.get("VersionId")
    path, _, query = unquote(str(source)).lstrip("/").partition("?")
    bucket, _, key = path.partition("/")
    version = query.removeprefix("versionId=") if query.startswith("versionId=") else None
    return bucket, key, version


@contextlib.contextmanager
def bucket_policies_left_to_the_plane() -> Iterator[None]:
    """moto (5.2.5) evaluates a bucket policy on object requests itself, without its conditions: the
    stacks' TLS-only Deny (`aws:SecureTransport` false) reads there as a Deny of everything, for every
    caller. Bucket policies are the plane's IAM's to evaluate (with conditions): moto's stays neutral."""
    original = FakeBucket.get_permission

    def neutral(self: FakeBucket, action: str, resource: str) -> PermissionResult:
        return PermissionResult.NEUTRAL

    FakeBucket.get_permission = neutral  # type: ignore[method-assign]
    try:
        yield
    finally:
        FakeBucket.get_permission = original  # type: ignore[method-assign]
