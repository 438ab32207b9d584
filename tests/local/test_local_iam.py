"""The local plane's IAM evaluator (headrace/local/iam/): documents decided as AWS decides them."""

from __future__ import annotations

from typing import Any

import pytest

from headrace.local.iam import AccessDenied, Authorizer, Policy, Principal, Request, decide
from headrace.local.iam.actions import Call, Check, checks_for

ACCOUNT = "123456789012"
ROLE = Principal(arn=f"arn:aws:iam::{ACCOUNT}:role/ingest", account=ACCOUNT, session="ingest")
BUCKET = "arn:aws:s3:::data"


def _policy(*statements: dict[str, object]) -> Policy:
    return Policy.parse({"Version": "2012-10-17", "Statement": list(statements)})


def test_a_wildcard_action_allows_the_object_read() -> None:
    policy = _policy({"Effect": "Allow", "Action": "s3:GetObject*", "Resource": f"{BUCKET}/*"})
    assert decide(Request(ROLE, "s3:GetObject", f"{BUCKET}/a/b.csv"), [policy]).allowed


def test_an_action_no_statement_names_is_denied_naming_the_action() -> None:
    policy = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"})
    decision = decide(Request(ROLE, "s3:PutObject", f"{BUCKET}/a.csv"), [policy])
    assert not decision.allowed
    assert "no identity-based policy" in decision.reason


def test_an_explicit_deny_wins_over_an_allow() -> None:
    allow = _policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    deny = _policy({"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"})
    assert not decide(Request(ROLE, "s3:PutObject", f"{BUCKET}/a"), [allow, deny]).allowed
    assert decide(Request(ROLE, "s3:GetObject", f"{BUCKET}/a"), [allow, deny]).allowed


def test_the_tls_only_bucket_policy_holds_on_the_loopback_plane() -> None:
    allow = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"})
    bucket_policy = _policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": [BUCKET, f"{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    assert decide(Request(ROLE, "s3:GetObject", f"{BUCKET}/a"), [allow], bucket_policy).allowed


def test_pass_role_holds_only_for_the_service_its_condition_names() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    )
    to_sagemaker = Request(
        ROLE, "iam:PassRole", "arn:aws:iam::1:role/x", {"iam:PassedToService": ["sagemaker.amazonaws.com"]}
    )
    to_lambda = Request(
        ROLE, "iam:PassRole", "arn:aws:iam::1:role/x", {"iam:PassedToService": ["lambda.amazonaws.com"]}
    )
    assert decide(to_sagemaker, [policy]).allowed
    assert not decide(to_lambda, [policy]).allowed


def test_a_key_policy_must_delegate_to_iam_for_an_identity_allow_to_count() -> None:
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
    identity = _policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key})
    delegating = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    closed = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:role/other"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    request = Request(ROLE, "kms:Decrypt", key)
    assert decide(request, [identity], delegating, key_policy=True).allowed
    assert not decide(request, [identity], closed, key_policy=True).allowed


def test_a_service_principal_needs_the_resource_policy_with_its_source_arn() -> None:
    events = Principal(arn="events.amazonaws.com", account=ACCOUNT, service="events.amazonaws.com")
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ingest"
    rule = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/arrival"
    permission = _policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": function,
            "Condition": {"ArnLike": {"AWS:SourceArn": rule}},
        }
    )
    assert decide(
        Request(events, "lambda:InvokeFunction", function, {"aws:SourceArn": [rule]}), [], permission
    ).allowed
    other = {"aws:SourceArn": [rule + "-other"]}
    assert not decide(Request(events, "lambda:InvokeFunction", function, other), [], permission).allowed


def test_calls_are_checked_as_their_iam_actions_and_resources() -> None:
    def checks(prefix: str, operation: str, **params: object) -> list[Check]:
        return checks_for(Call(prefix, operation, params, "us-east-1", ACCOUNT))

    assert checks("s3", "ListObjectsV2", Bucket="data", Prefix="p/") == [
        Check("s3:ListBucket", BUCKET, {"s3:prefix": ["p/"]})
    ]
    assert checks("s3", "HeadObject", Bucket="data", Key="k")[0].action == "s3:GetObject"
    assert checks("lambda", "Invoke", FunctionName="f") == [
        Check("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f")
    ]
    assert checks("sagemaker", "DescribeTrainingJob", TrainingJobName="Job-A")[0].resource.endswith(
        ":training-job/job-a"
    )
    assert checks("sts", "GetCallerIdentity") == []
    # A tuning job's calls, its trials' listing included, are checked on the tuning job
    # (Service Authorization Reference, Amazon SageMaker: hyper-parameter-tuning-job*); other lists on "*".
    tuning = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:hyper-parameter-tuning-job/churn-a"
    for operation in ("CreateHyperParameterTuningJob", "ListTrainingJobsForHyperParameterTuningJob"):
        assert checks("sagemaker", operation, HyperParameterTuningJobName="Churn-A") == [
            Check(f"sagemaker:{operation}", tuning)
        ]
    assert checks("sagemaker", "ListHyperParameterTuningJobs", NameContains="churn") == [
        Check("sagemaker:ListHyperParameterTuningJobs", "*")
    ]


def test_the_authorizer_raises_access_denied_naming_action_and_resource() -> None:
    class Store:
        def identity_policies(self, role_arn: str) -> list[Policy]:
            return [_policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})]

        def resource_policy(self, resource_arn: str) -> tuple[Policy | None, bool]:
            return None, False

        def implied_checks(self, call: Call) -> list[Check]:
            return []

        def owner(self, resource_arn: str) -> str | None:
            return ACCOUNT

    authorizer = Authorizer(Store())
    with pytest.raises(
        AccessDenied, match=r"not authorized to perform: s3:PutObject on resource: arn:aws:s3:::data/k"
    ):
        authorizer.authorize(
            ROLE, Call("s3", "PutObject", {"Bucket": "data", "Key": "k"}, "us-east-1", ACCOUNT)
        )
    assert len(authorizer.denials) == 1


def test_queue_topic_and_bucket_policies_become_api_requests_with_intrinsics_resolved() -> None:
    from headrace.local.cloudformation.api_requests import (
        bucket_policy_requests,
        queue_policy_requests,
        topic_policy_requests,
    )
    from headrace.local.cloudformation.intrinsics import StackReferences

    document = {"Statement": [{"Effect": "Allow", "Resource": {"Fn::GetAtt": ["Queue", "Arn"]}}]}
    template = {
        "Resources": {
            "QueuePolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {"PolicyDocument": document, "Queues": [{"Ref": "Queue"}]},
            },
            "TopicPolicy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {"PolicyDocument": document, "Topics": [{"Ref": "Topic"}]},
            },
            "BucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"PolicyDocument": document, "Bucket": {"Ref": "Bucket"}},
            },
        }
    }
    references = StackReferences(
        physical_ids={"Queue": "https://q/1/q", "Topic": "arn:aws:sns:r:1:t", "Bucket": "b"},
        pseudo_parameters={},
        attribute=lambda logical_id, name: f"arn:aws:sqs:r:1:{logical_id.lower()}",
    )
    resolved = '{"Statement": [{"Effect": "Allow", "Resource": "arn:aws:sqs:r:1:queue"}]}'
    assert queue_policy_requests(template, "s", references) == [
        {"QueueUrl": "https://q/1/q", "Attributes": {"Policy": resolved}}
    ]
    assert topic_policy_requests(template, "s", references) == [
        {"TopicArn": "arn:aws:sns:r:1:t", "AttributeName": "Policy", "AttributeValue": resolved}
    ]
    assert bucket_policy_requests(template, "s", references) == [{"Bucket": "b", "Policy": resolved}]


def test_a_schedule_is_authorized_as_its_target_role() -> None:
    from datetime import UTC, datetime

    from headrace.local.scheduler.schedule import Schedule, ScheduleTarget
    from headrace.local.seams.iam_targets import ScheduleTargets

    class Sessions:
        trusted: list[tuple[str, str, str | None]] = []

        def check(self, role_arn: str, service: str, source_arn: str | None = None) -> None:
            self.trusted.append((role_arn, service, source_arn))

    class Iam:
        checked: list[tuple[str, str, str]] = []
        sessions = Sessions()

        def authorize_role(self, role_arn: str, action: str, resource: str, session: str) -> None:
            self.checked.append((role_arn, action, resource))

    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:drift"
    role = f"arn:aws:iam::{ACCOUNT}:role/schedule"
    schedule = Schedule(
        "s",
        "default",
        "arn:s",
        "ENABLED",
        "rate(1 hour)",
        None,
        datetime.now(UTC),
        ScheduleTarget(machine, role_arn=role),
    )
    iam = Iam()
    ScheduleTargets(iam).authorize(schedule)  # type: ignore[arg-type]
    assert iam.checked == [(role, "states:StartExecution", machine)]
    assert iam.sessions.trusted == [(role, "scheduler.amazonaws.com", "arn:s")]  # assumed before it acts


# --- trust policies: which service may assume a resource's role -------------------------------------------


def _trust(service: str, **condition: dict[str, str]) -> Policy:
    statement: dict[str, object] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return _policy(statement)


@pytest.mark.parametrize(
    ("service", "wording"),
    [
        ("lambda.amazonaws.com", "The role defined for the function cannot be assumed by Lambda."),
        ("sagemaker.amazonaws.com", "Could not assume role arn:aws:iam::123456789012:role/r."),
        ("states.amazonaws.com", "Neither the global service principal states.amazonaws.com"),
        ("scheduler.amazonaws.com", "User: scheduler.amazonaws.com is not authorized to perform"),
        ("events.amazonaws.com", "User: events.amazonaws.com is not authorized to perform"),
    ],
)
def test_a_service_assumes_only_a_role_that_trusts_it(service: str, wording: str) -> None:
    from headrace.local.iam import RoleSessions, UntrustedRole

    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    trusting = RoleSessions(ACCOUNT, trust=lambda arn: _trust(service))
    trusting.assume(role, service, "s")  # trusted: credentials issued
    other = "ec2.amazonaws.com"
    refusing = RoleSessions(ACCOUNT, trust=lambda arn: _trust(other))
    with pytest.raises(UntrustedRole) as refused:
        refusing.assume(role, service, "s")
    message = str(refused.value)
    assert message.startswith(wording), message
    assert f"is not authorized to perform: sts:AssumeRole on resource: {role}" in message
    missing = RoleSessions(ACCOUNT, trust=lambda arn: None)  # the role does not exist
    with pytest.raises(UntrustedRole):
        missing.assume(role, service, "s")


def test_a_trust_condition_on_the_source_holds_only_for_that_source() -> None:
    """Step Functions assumes with aws:SourceArn the state machine (the stacks' confused-deputy guard)."""
    from headrace.local.iam import UntrustedRole, check_trust

    role = f"arn:aws:iam::{ACCOUNT}:role/machine"
    trust = _trust(
        "states.amazonaws.com",
        ArnLike={"aws:SourceArn": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:*"},
        StringEquals={"aws:SourceAccount": ACCOUNT},
    )
    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:training"
    check_trust(trust, role, "states.amazonaws.com", ACCOUNT, machine)
    with pytest.raises(UntrustedRole):
        check_trust(trust, role, "states.amazonaws.com", ACCOUNT, "arn:aws:states:us-east-1:1:activity:x")
    with pytest.raises(UntrustedRole):
        check_trust(trust, role, "states.amazonaws.com", "999999999999", machine)


def _resolved(node: Any, region: str = "us-east-1") -> Any:
    """A template value with the intrinsics trust policies use resolved (Ref pseudo parameters, Join)."""
    pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": region, "AWS::Partition": "aws", "AWS::URLSuffix": ""}
    if isinstance(node, list):
        return [_resolved(child, region) for child in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in pseudo:
            return pseudo[node["Ref"]]
        if set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            return separator.join(str(_resolved(part, region)) for part in parts)
        return {key: _resolved(child, region) for key, child in node.items()}
    return node


def test_every_synthesized_role_trusts_the_service_that_assumes_it(synthesized: Any) -> None:
    """The roles the plane assumes (sessions.py) trust the service that runs them, with the source the
    service sends: a function's lambda.amazonaws.com, a state machine's states.amazonaws.com (for that
    machine), a training or hosting role sagemaker.amazonaws.com, a schedule's scheduler.amazonaws.com, a
    rule target's events.amazonaws.com (for that rule)."""
    from headrace.local.iam import check_trust

    template = synthesized.pipeline.to_json()["Resources"]
    trust = {
        logical_id: Policy.parse(_resolved(resource["Properties"]["AssumeRolePolicyDocument"]))
        for logical_id, resource in template.items()
        if resource["Type"] == "AWS::IAM::Role"
    }

    def role_of(value: Any) -> str:
        """The logical ID of the role a resource names ({"Fn::GetAtt": [role, "Arn"]})."""
        assert isinstance(value, dict) and "Fn::GetAtt" in value, value
        return str(value["Fn::GetAtt"][0])

    assumed: list[tuple[str, str, str | None]] = []  # role, service, source
    for logical_id, resource in template.items():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::Lambda::Function":
            assumed.append((role_of(properties["Role"]), "lambda.amazonaws.com", None))
        elif kind == "AWS::StepFunctions::StateMachine":
            machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{properties['StateMachineName']}"
            assumed.append((role_of(properties["RoleArn"]), "states.amazonaws.com", machine))
        elif kind == "AWS::Scheduler::Schedule":
            assumed.append((role_of(properties["Target"]["RoleArn"]), "scheduler.amazonaws.com", None))
        elif kind == "AWS::Events::Rule":
            rule = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{logical_id}"
            for target in properties.get("Targets", []):
                if "RoleArn" in target:
                    assumed.append((role_of(target["RoleArn"]), "events.amazonaws.com", rule))
    sagemaker_roles = [r for r in trust if "SageMakerRole" in r or "HostingRole" in r]
    assumed += [(role, "sagemaker.amazonaws.com", None) for role in sagemaker_roles]
    kinds = {service for _, service, _ in assumed}
    assert kinds == {
        "lambda.amazonaws.com",
        "states.amazonaws.com",
        "scheduler.amazonaws.com",
        "events.amazonaws.com",
        "sagemaker.amazonaws.com",
    }, kinds
    for role, service, source in assumed:
        check_trust(trust[role], f"arn:aws:iam::{ACCOUNT}:role/{role}", service, ACCOUNT, source)


def test_creating_a_tuning_job_passes_its_trials_role() -> None:
    from headrace.local.seams.iam_policies import MotoPolicyStore

    role = f"arn:aws:iam::{ACCOUNT}:role/trials"
    call = Call(
        "sagemaker",
        "CreateHyperParameterTuningJob",
        {"HyperParameterTuningJobName": "t", "TrainingJobDefinition": {"RoleArn": role}},
        "us-east-1",
        ACCOUNT,
    )
    assert MotoPolicyStore(ACCOUNT, "us-east-1").implied_checks(call) == [
        Check("iam:PassRole", role, {"iam:PassedToService": ["sagemaker.amazonaws.com"]})
    ]


# --- across accounts (IAM User Guide, "Cross-account policy evaluation logic") ------------------------------

OTHER = "222222222222"
PROMOTER = Principal(arn=f"arn:aws:iam::{OTHER}:role/promote", account=OTHER, session="ci")
GRANT = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
    "Action": "s3:GetObject",
    "Resource": f"{BUCKET}/churn/runs/*/output/*",
}
ALLOW_READ = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})


def test_another_account_reads_only_where_both_its_identity_and_the_resource_policy_allow() -> None:
    granted = f"{BUCKET}/churn/runs/job-1/output/model.tar.gz"
    read = Request(PROMOTER, "s3:GetObject", granted)
    assert decide(read, [ALLOW_READ], _policy(GRANT), cross_account=True).allowed
    # The resource's account grants it, but the caller's own account does not allow it.
    refused = decide(read, [], _policy(GRANT), cross_account=True)
    assert not refused.allowed and "no identity-based policy" in refused.reason
    # The caller's identity allows it, but the resource's policy does not name it (or there is none).
    elsewhere = Request(PROMOTER, "s3:GetObject", f"{BUCKET}/churn/incoming/data.csv")
    for policy in (_policy(GRANT), None):
        refused = decide(elsewhere, [ALLOW_READ], policy, cross_account=True)
        assert not refused.allowed and "no resource-based policy" in refused.reason


def test_an_account_principal_grants_that_account_across_accounts_only() -> None:
    own_account = _policy(GRANT | {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}})
    within = Request(ROLE, "s3:GetObject", f"{BUCKET}/churn/runs/j/output/m")
    # Within an account, naming the account delegates to its identity policies: it allows nothing alone.
    assert not decide(within, [], own_account).allowed


def test_the_root_of_one_account_is_refused_another_s_resource_without_its_grant() -> None:
    class Store:
        def identity_policies(self, role_arn: str) -> list[Policy]:
            return []

        def resource_policy(self, resource_arn: str) -> tuple[Policy | None, bool]:
            return _policy(GRANT), False

        def implied_checks(self, call: Call) -> list[Check]:
            return []

        def owner(self, resource_arn: str) -> str | None:
            return ACCOUNT

    authorizer = Authorizer(Store())
    root = Principal.account_admin(OTHER)
    authorizer.check(root, "s3:GetObject", f"{BUCKET}/churn/runs/j/output/model.tar.gz")
    with pytest.raises(AccessDenied, match=rf"arn:aws:iam::{OTHER}:root is not authorized .* s3:PutObject"):
        authorizer.check(root, "s3:PutObject", f"{BUCKET}/churn/runs/j/output/model.tar.gz")
    Authorizer(Store()).check(Principal.account_admin(ACCOUNT), "s3:PutObject", f"{BUCKET}/x")  # its own


def test_a_group_named_by_arn_is_listed_as_that_group() -> None:
    group = f"arn:aws:sagemaker:us-east-1:{OTHER}:model-package-group/headrace-dev-churn"
    call = Call("sagemaker", "ListModelPackages", {"ModelPackageGroupName": group}, "us-east-1", ACCOUNT)
    assert checks_for(call) == [Check("sagemaker:ListModelPackages", group)]
