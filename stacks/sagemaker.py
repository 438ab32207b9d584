"""What the training and deploy workflows share of SageMaker: the role its jobs and endpoint containers run
as, and the Step Functions state that calls one of its APIs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from headrace.stages import NetworkSettings
from headrace.training.instances import has_instance_storage
from stacks import nag
from stacks.data_store import DataStore
from stacks.network import grant_vpc_access

# Only SageMaker's genuinely transient errors are retried: the common errors a client should retry
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html: ThrottlingException,
# ServiceUnavailable, InternalFailure), which Step Functions names `SageMaker.<error>`
# (https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html). Not the catch-all
# SageMaker.AmazonSageMakerException, which also carries AccessDenied and validation errors: those fail fast
# into the workflow's failure step, as does a job or endpoint that fails (States.TaskFailed), with the reason.
SAGEMAKER_TRANSIENT = [
    "SageMaker.ThrottlingException",
    "SageMaker.ServiceUnavailable",
    "SageMaker.InternalFailure",
]


def sagemaker_task(
    scope: Construct,
    construct_id: str,
    *,
    action: str,
    parameters: Mapping[str, Any],
    comment: str,
    result_path: str,
) -> sfn.CustomState:
    """A task state calling SageMaker's `action` (`createTrainingJob.sync`, `updateEndpoint`, ...) with the
    request written out, retried on SageMaker's transient errors.

    A CustomState because CDK's SageMaker tasks (2.275) cannot render every field Headrace sets: no
    EnableManagedSpotTraining, CheckpointConfig or MaxWaitTimeInSeconds on CreateTrainingJob, no
    DeploymentConfig on UpdateEndpoint (aws-cdk issue 23152).
    """
    state = sfn.CustomState(
        scope,
        construct_id,
        state_json={
            "Type": "Task",
            "Comment": comment,
            "Resource": f"arn:{Stack.of(scope).partition}:states:::sagemaker:{action}",
            "Parameters": dict(parameters),
            "ResultPath": result_path,
        },
    )
    state.add_retry(
        errors=SAGEMAKER_TRANSIENT,
        interval=Duration.seconds(5),
        max_attempts=3,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )
    return state


class SageMakerServiceRole(iam.Role):
    """The role a model's SageMaker jobs or endpoint containers run as: the data bucket's objects under the
    given keys only, the data key, the image, the stage's network. Callers add the logs they write.

    A role itself rather than a construct around one, so the role keeps its place (and logical ID) in the
    workflow construct that owns it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        store: DataStore,
        read: Sequence[str],
        put: Sequence[str],
        image: ecr_assets.DockerImageAsset,
        instance_type: str,
        network: NetworkSettings,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=description,
        )
        for keys in read:
            store.bucket.grant_read(self, keys)
        for keys in put:
            store.bucket.grant_put(self, keys)
        nag.accept_object_grants(self, store.bucket, read=list(read), put=list(put))
        nag.accept_key_grants(self)
        if not has_instance_storage(instance_type):
            # The volume is encrypted with the data key through a grant SageMaker creates; instance types
            # with local storage refuse a volume key (their hardware encrypts it).
            self.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:CreateGrant"],
                    resources=[store.key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
        image.repository.grant_pull(self)
        nag.accept_unscoped(self, nag.ECR_TOKEN)
        if network.vpc is not None:
            grant_vpc_access(self, network)
