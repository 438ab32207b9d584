"""Deploy: an Approved registry version rolls out to the model's endpoint, guarded by alarms, and is verified.

    Approved event -> Plan --skip--> Skipped
                        |--create--> CreateEndpoint --\
                        \\--update--> UpdateEndpoint ---> Wait <-> DescribeEndpoint -> Verify -> Deployed
    any task's error -> DeployFailed -> Failed

Plan (a Lambda) decides, and creates the version's Model and EndpointConfig (data capture on). UpdateEndpoint
carries the blue/green DeploymentConfig (canary or linear, the guard alarms, the bake) written out here from
the model config: CDK's SageMakerUpdateEndpoint has no DeploymentConfig (aws-cdk issue 23152). Verify fails
the run when SageMaker rolled back, because the endpoint then reports InService on the old config.
`headrace rollback` starts the same state machine with `{"rollback": {"version": N}}`.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack, Tags
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names
from headrace.promotion.package import promoted_artifact_keys
from headrace.serving import autoscaling, rollout
from headrace.serving.deploy import (
    BUSY,
    SAGEMAKER_ERROR,
    UPDATE_REFUSED_BUSY,
    EndpointBusy,
    update_retries,
)
from headrace.serving.payloads import PACKAGE_STATE_CHANGE
from headrace.serving.runtime import DeploySettings
from headrace.stages import StageSettings
from stacks import checkov, nag
from stacks.assets import managed_layers
from stacks.data_store import DataStore
from stacks.endpoint_guards import EndpointGuards
from stacks.functions import (
    FunctionFactory,
    StepFunction,
    dead_letter_queue,
    execution_payload,
    invoke_step,
)
from stacks.sagemaker import SAGEMAKER_TRANSIENT, SageMakerServiceRole, sagemaker_task
from stacks.stage import logged_state_machine
from stacks.wiring import DEFAULT_EVENT_BUS

ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints"


class DeploySteps(Construct):
    """The three Lambda functions every model's deploy workflow calls, and a queue for undelivered events."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        store: DataStore,
        factory: FunctionFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        layers = managed_layers(self)

        def function(construct_id: str, folder: str, name: str, description: str) -> lambda_.Function:
            return factory.function(
                self,
                StepFunction(
                    construct_id=construct_id,
                    folder=folder,
                    settings=DeploySettings,
                    function_name=name,
                    description=description,
                    memory_mb=256,
                    timeout=Duration.minutes(1),
                    needs_pandas=False,
                ),
                layers,
            )

        self.plan = function(
            "Plan",
            "deploy_plan",
            names.deploy_plan_function,
            "Decides whether and how an approved version rolls out; creates its Model and EndpointConfig",
        )
        self.verify = function(
            "Verify",
            "deploy_verify",
            names.deploy_verify_function,
            "Checks that the endpoint really runs the deployed config (a rollback is a failure)",
        )
        self.failed = function(
            "Failed",
            "deploy_failed",
            names.deploy_failed_function,
            "Records why a deployment failed or was rolled back and announces it on the event bus",
        )
        for fn in (self.plan, self.verify, self.failed):
            store.ledger.grant_read_write_data(fn)
            nag.accept_key_grants(fn)
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_EVENT_BUS)
        default_bus.grant_put_events_to(self.verify)
        default_bus.grant_put_events_to(self.failed)
        # ListModelPackages has no resource-level permissions: it is allowed on "*" or not at all.
        self.plan.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        nag.accept_unscoped(self.plan, nag.LIST_MODEL_PACKAGES)

        self._grant_autoscaling()

        self.undelivered_events = dead_letter_queue(self, "UndeliveredApprovals", store.key)
        nag.accept(self.undelivered_events, "SQS3", nag.DEAD_LETTER_QUEUE)

    def _grant_autoscaling(self) -> None:
        """Plan deregisters an endpoint's variant before a blue/green update; Verify (and DeployFailed, after
        a rollback) registers it with the model's target-tracking policy (headrace/serving/autoscaling.py)."""
        for fn in (self.plan, self.verify, self.failed):
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "application-autoscaling:DescribeScalableTargets",
                        "application-autoscaling:DescribeScalingPolicies",
                        "application-autoscaling:RegisterScalableTarget",
                        "application-autoscaling:PutScalingPolicy",
                        "application-autoscaling:DeleteScalingPolicy",
                        "application-autoscaling:DeregisterScalableTarget",
                    ],
                    resources=["*"],
                )
            )
            nag.accept_unscoped(fn, nag.SCALABLE_TARGETS)
            # checkov flags the same statement (write actions on "*"), for the same reason.
            assert fn.role is not None
            checkov.accept(fn.role.node.find_child("DefaultPolicy"), "CKV_AWS_111", nag.SCALABLE_TARGETS)
        # The first RegisterScalableTarget for a SageMaker variant creates Application Auto Scaling's
        # service-linked role, which the caller must be allowed to create, for that service only
        # (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html).
        linked_role = Stack.of(self).format_arn(
            service="iam",
            region="",
            resource="role",
            resource_name=(
                f"aws-service-role/{autoscaling.SERVICE_LINKED_PRINCIPAL}/{autoscaling.SERVICE_LINKED_ROLE}"
            ),
        )
        for fn in (self.verify, self.failed):
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["iam:CreateServiceLinkedRole"],
                    resources=[linked_role],
                    conditions={"StringLike": {"iam:AWSServiceName": autoscaling.SERVICE_LINKED_PRINCIPAL}},
                )
            )


class Deployment(Construct):
    """A model's deploy workflow: the hosting role, the guard alarms, the state machine and the rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        model: ModelConfig,
        store: DataStore,
        steps: DeploySteps,
        serving_image: ecr_assets.DockerImageAsset,
        stage: StageSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.endpoint_name = names.endpoint(model.name)
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=self.endpoint_name
        )
        self.role = self._hosting_role(model, store, serving_image, stage)
        # "Default": CDK leaves that id out of its children's logical IDs, so the alarms keep theirs (a new
        # logical ID would make CloudFormation replace alarms whose names are fixed).
        guards = EndpointGuards(self, "Default", names=names, model=model)
        self.alarms = guards.alarms
        self.alarm_arns = guards.alarm_arns
        self._grant_steps(model, names, store, steps)

        plan = invoke_step(
            self,
            "Plan",
            steps.plan,
            {
                "model": model.name,
                "execution": execution_payload(),
                "hosting_role_arn": self.role.role_arn,
                "data_key_arn": store.key.key_arn,
                # Plan creates each version's Model in the stage's network (stages.yaml).
                "network": stage.network.model_dump(mode="json", exclude_none=True),
                "input": sfn.JsonPath.entire_payload,
            },
            "$.plan",
        )
        # Another rollout under way on the endpoint: wait for it rather than fail.
        plan.add_retry(
            errors=[EndpointBusy.__name__],
            interval=Duration.seconds(5),
            max_attempts=30,
            backoff_rate=1.5,
            max_delay=Duration.minutes(2),
        )
        create = self._sagemaker_call(
            "CreateEndpoint",
            "createEndpoint",
            {
                "EndpointName.$": "$.plan.endpoint_name",
                "EndpointConfigName.$": "$.plan.endpoint_config_name",
                "Tags": [
                    {"Key": "headrace:stage", "Value": names.stage},
                    {"Key": "headrace:model", "Value": model.name},
                ],
            },
            "The first version: a new endpoint",
        )
        update = self._sagemaker_call(
            "UpdateEndpoint",
            "updateEndpoint",
            {
                "EndpointName.$": "$.plan.endpoint_name",
                "EndpointConfigName.$": "$.plan.endpoint_config_name",
                "RetainAllVariantProperties": False,
                "DeploymentConfig": rollout.deployment_config(model, names),
            },
            "Blue/green with the model's traffic shifting; SageMaker rolls back when a guard alarm fires",
        )
        wait = sfn.Wait(
            self, "WaitForRollout", time=sfn.WaitTime.seconds_path("$.plan.poll_s"), comment="Between looks"
        )
        describe = self._describe_endpoint("DescribeEndpoint")
        verify = invoke_step(
            self,
            "Verify",
            steps.verify,
            {"model": model.name, "plan": sfn.JsonPath.object_at("$.plan")},
            "$.deployed",
        )
        failed = invoke_step(
            self,
            "DeployFailed",
            steps.failed,
            {"model": model.name, "execution": execution_payload(), "state": sfn.JsonPath.entire_payload},
            "$.failure",
        )
        failed.next(sfn.Fail(self, "Failed", error="DeploymentFailed", cause_path="$.failure.cause"))
        busy = [sfn.Condition.string_equals("$.endpoint.status", status) for status in sorted(BUSY)]
        self._update_again_when_busy(
            update, failed, busy, update_retries(rollout.poll_seconds(model.rollout))
        )
        for task in (plan, create, update, describe, verify):
            task.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.error")

        watch = wait.next(describe).next(
            sfn.Choice(self, "RolloutOver", comment="Still creating, updating or rolling back?")
            .when(sfn.Condition.or_(*busy), wait)
            .otherwise(verify)
        )
        verify.next(sfn.Succeed(self, "Deployed"))
        create.next(watch)
        update.next(watch)
        definition = plan.next(
            sfn.Choice(self, "Action", comment="Plan's decision")
            .when(
                sfn.Condition.string_equals("$.plan.action", "skip"),
                sfn.Succeed(
                    self, "Skipped", comment="Not Approved, superseded or already serving: Plan said why"
                ),
            )
            .when(sfn.Condition.string_equals("$.plan.action", "create"), create)
            .otherwise(update)
        )

        name = names.deploy_state_machine(model.name)
        self.state_machine = logged_state_machine(
            self,
            name,
            definition,
            stage,
            store.key,
            # Creating the fleet, every traffic shift and the bake, with room for a queued rollout.
            timeout=Duration.seconds(2 * rollout.rollout_seconds(model.rollout) + 3 * 3600),
        )
        self._grant_machine(stack, store)
        nag.accept_workflow(self.state_machine, [steps.plan, steps.verify, steps.failed])

        events.Rule(
            self,
            "OnApproval",
            rule_name=f"{name}-on-approval",
            description=f"A version of {model.name} is Approved in the registry -> deploy it",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PACKAGE_STATE_CHANGE],
                detail={
                    "ModelPackageGroupName": [names.model_package_group(model.name)],
                    "ModelApprovalStatus": ["Approved"],
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    dead_letter_queue=steps.undelivered_events,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )
        Tags.of(self).add("headrace:model", model.name)

    def _describe_endpoint(self, construct_id: str) -> tasks.CallAwsService:
        describe = tasks.CallAwsService(
            self,
            construct_id,
            service="sagemaker",
            action="describeEndpoint",
            parameters={"EndpointName": sfn.JsonPath.string_at("$.plan.endpoint_name")},
            iam_resources=[self.endpoint_arn],
            result_selector={
                "status": sfn.JsonPath.string_at("$.EndpointStatus"),
                "config": sfn.JsonPath.string_at("$.EndpointConfigName"),
            },
            result_path="$.endpoint",
        )
        describe.add_retry(errors=SAGEMAKER_TRANSIENT, interval=Duration.seconds(5), max_attempts=3)
        return describe

    def _update_again_when_busy(
        self, update: sfn.CustomState, failed: sfn.IChainable, busy: list[sfn.Condition], retries: int
    ) -> None:
        """UpdateEndpoint refused because the endpoint is busy (a scaling activity that began before Plan
        deregistered the variant, headrace/serving/deploy.py) is sent again poll_s later, at most `retries`
        times; any other refusal fails the rollout, as before. Step Functions names every SageMaker refusal
        alike, so the endpoint's status and the refusal's cause tell (added before the catch-all)."""
        describe = self._describe_endpoint("DescribeRefusedEndpoint")
        describe.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.error")
        update.add_catch(describe, errors=[SAGEMAKER_ERROR], result_path="$.error")
        wait = sfn.Wait(
            self, "WaitToUpdate", time=sfn.WaitTime.seconds_path("$.plan.poll_s"), comment="Busy: again later"
        )
        wait.next(update)
        first = sfn.Pass(
            self, "FirstRefusal", result=sfn.Result.from_object({"count": 1}), result_path="$.update_refusals"
        )
        count = sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.update_refusals.count"), 1)
        again = sfn.Pass(self, "AnotherRefusal", parameters={"count": count}, result_path="$.update_refusals")
        first.next(wait)
        again.next(wait)
        refused_busy = sfn.Condition.or_(
            *busy, sfn.Condition.string_matches("$.error.Cause", UPDATE_REFUSED_BUSY)
        )
        describe.next(
            sfn.Choice(self, "RefusedAsBusy", comment="Refused while a scaling activity runs?")
            .when(sfn.Condition.and_(refused_busy, sfn.Condition.is_not_present("$.update_refusals")), first)
            .when(
                sfn.Condition.and_(
                    refused_busy, sfn.Condition.number_less_than("$.update_refusals.count", retries)
                ),
                again,
            )
            .otherwise(failed)
        )

    def _sagemaker_call(
        self, construct_id: str, action: str, parameters: dict[str, object], comment: str
    ) -> sfn.CustomState:
        return sagemaker_task(
            self,
            construct_id,
            action=action,
            parameters=parameters,
            comment=comment,
            result_path=f"$.{action}",
        )

    def _hosting_role(
        self, model: ModelConfig, store: DataStore, image: ecr_assets.DockerImageAsset, stage: StageSettings
    ) -> iam.Role:
        """What the model's endpoint containers may do: read its versions' artifacts, write captured traffic,
        pull the serving image and log. Nothing outside `<model>/`."""
        role = SageMakerServiceRole(
            self,
            "HostingRole",
            description=f"Endpoint containers of Headrace model {model.name}",
            store=store,
            # Transform jobs run as their Model's role too: they read a batch's input and write its output
            # (CreateTransformJob takes no role; https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html).
            read=[
                f"{model.name}/runs/*/output/*",
                f"{model.name}/batch/input/*",
                # A stage that takes versions from another (`headrace promote`) serves their copies.
                *([promoted_artifact_keys(model.name)] if stage.promote_from else []),
            ],
            put=[f"{rollout.capture_prefix(model.name)}/*", f"{model.name}/batch/output/*"],
            image=image,
            instance_type=model.rollout.instance_type,
            network=stage.network,
        )
        log_group = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{ENDPOINT_LOG_GROUP}/{self.endpoint_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[log_group, f"{log_group}:*"],
            )
        )
        nag.accept_wildcards(role, nag.SAGEMAKER_LOGS, resources=[nag.flat(role, f"{log_group}:*")])
        return role

    def _grant_steps(self, model: ModelConfig, names: Names, store: DataStore, steps: DeploySteps) -> None:
        stack = Stack.of(self)
        group = names.model_package_group(model.name)
        hosted = f"{names.endpoint(model.name)[:44]}-v*"
        versions_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group}/*"
        )
        models_arn = stack.format_arn(service="sagemaker", resource="model", resource_name=hosted)
        configs_arn = stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name=hosted)
        steps.plan.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[versions_arn])
        )
        steps.plan.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeModel", "sagemaker:CreateModel", "sagemaker:AddTags"],
                resources=[models_arn],
            )
        )
        steps.plan.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:AddTags",
                ],
                resources=[configs_arn],
            )
        )
        versioned = [versions_arn, models_arn, configs_arn]
        nag.accept_wildcards(steps.plan, nag.MODEL_VERSIONS, resources=[nag.flat(self, a) for a in versioned])
        for fn in (steps.plan, steps.verify, steps.failed):
            fn.add_to_role_policy(
                iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=[self.endpoint_arn])
            )
        self._grant_scaling(steps, configs_arn)
        steps.plan.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # The endpoint config's volume and capture key: SageMaker uses it through grants made for the caller.
        steps.plan.add_to_role_policy(
            iam.PolicyStatement(actions=["kms:CreateGrant", "kms:DescribeKey"], resources=[store.key.key_arn])
        )
        steps.verify.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=self.alarm_arns)
        )

    def _grant_scaling(self, steps: DeploySteps, configs_arn: str) -> None:
        """What registering the endpoint's variant asks of the caller besides Application Auto Scaling
        (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html): the
        endpoint and its configs, UpdateEndpointWeightsAndCapacities, and the target-tracking alarms."""
        stack = Stack.of(self)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"TargetTracking-{autoscaling.resource_id(self.endpoint_name)}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for fn in (steps.plan, steps.verify, steps.failed):
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:DescribeEndpointConfig",
                        "sagemaker:UpdateEndpointWeightsAndCapacities",
                    ],
                    resources=[self.endpoint_arn, configs_arn],
                )
            )
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "cloudwatch:PutMetricAlarm",
                        "cloudwatch:DescribeAlarms",
                        "cloudwatch:DeleteAlarms",
                    ],
                    resources=[alarms],
                )
            )
            nag.accept_wildcards(fn, nag.TARGET_TRACKING_ALARMS, resources=[nag.flat(self, alarms)])
            nag.accept_wildcards(fn, nag.MODEL_VERSIONS, resources=[nag.flat(self, configs_arn)])

    def _grant_machine(self, stack: Stack, store: DataStore) -> None:
        hosted = f"{self.endpoint_name[:44]}-v*"
        configs_arn = stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name=hosted)
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:AddTags"],
                resources=[self.endpoint_arn, configs_arn],
            )
        )
        nag.accept_wildcards(
            self.state_machine.role, nag.MODEL_VERSIONS, resources=[nag.flat(self, configs_arn)]
        )
        # UpdateEndpoint checks that the caller may read the guard alarms it names.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=self.alarm_arns)
        )
        # Each endpoint config names the data key (KmsKeyId): CreateEndpoint, and UpdateEndpoint onto a
        # new config, then need kms:CreateGrant for the caller, which SageMaker uses to encrypt the volumes
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html). Only grants made
        # for an AWS service; the data key's policy delegates to IAM (stacks/data_store.py).
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[store.key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )


class EndpointInvokeRole(Construct):
    """The role callers assume to call the stage's endpoints: sagemaker:InvokeEndpoint on them, nothing else.

    Trusted by the account, so a principal of the account may assume it only where its own IAM policy allows
    sts:AssumeRole on this role: calling an endpoint takes an explicit grant on both sides.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, names: Names, endpoints: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.endpoint_invoke_role,
            assumed_by=iam.AccountRootPrincipal(),
            description=f"Calls the Headrace {names.stage} endpoints (InvokeEndpoint only)",
            max_session_duration=Duration.hours(1),
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"],
                resources=list(endpoints),
            )
        )
