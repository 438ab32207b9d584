"""IAM on moto: every call a deployed resource makes is authorized as its role (headrace/local/iam/).

Three places carry a role's identity into its calls:
- a Lambda function runs with its role's session credentials in its environment (lambda_runtime.py);
- moto's ASL interpreter builds its clients with `boto_client_for`: replaced here so that a state machine's
  task calls (`lambda:invoke`, the SageMaker integration and its `.sync` polling) sign as its role;
- SageMaker's compute reads channels, writes models and logs as the job's or the model's execution role.
Calls are authorized where botocore makes them (`BaseClient._make_api_call`): a call signed with a role
session's key is checked against that role's policies, the resource's policy and the implicit permissions
AWS checks beside it, and a denied call raises the ClientError AWS would answer (AccessDenied naming the
action and the resource) without reaching moto. The plane's own clients (CLI, tests, provisioning) use
other keys and stay admin.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.awslambda.models import lambda_backends
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.settings import moto_server_port
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client

from headrace.local.aws import Clients
from headrace.local.iam import AccessDenied, Authorizer, Policy, Principal, RoleSessions
from headrace.local.iam.actions import Call, Check

log = logging.getLogger("headrace.local.iam")

# IAM's error code by API protocol family: S3 and the query APIs say AccessDenied, JSON APIs ...Exception.
_ACCESS_DENIED_CODE = {
    "s3": "AccessDenied",
    "iam": "AccessDenied",
    "sts": "AccessDenied",
    "monitoring": "AccessDenied",
    "sns": "AuthorizationError",
}
# Step Functions' `.sync` for SageMaker training watches the job through this managed rule (Step Functions
# developer guide, "IAM policies for Amazon SageMaker AI": the events actions on this rule).
SAGEMAKER_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
# Who receives a role passed to each create call (iam:PassedToService).
_PASSED_ROLES: dict[tuple[str, str], tuple[str, str]] = {
    ("sagemaker", "CreateTrainingJob"): ("RoleArn", "sagemaker.amazonaws.com"),
    ("sagemaker", "CreateModel"): ("ExecutionRoleArn", "sagemaker.amazonaws.com"),
    ("lambda", "CreateFunction"): ("Role", "lambda.amazonaws.com"),
    ("states", "CreateStateMachine"): ("roleArn", "states.amazonaws.com"),
}


def access_denied_error(prefix: str, operation: str, denied: AccessDenied) -> ClientError:
    code = _ACCESS_DENIED_CODE.get(prefix, "AccessDeniedException")
    status = 403 if prefix == "s3" else 400
    return ClientError(
        {"Error": {"Code": code, "Message": str(denied)}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


# Services that answer errors in XML (S3 and the query protocol); the others answer JSON.
_XML_ERRORS = {"s3", "iam", "sts", "sns", "monitoring"}


class _XmlAccessDenied(AccessDeniedError):
    def __init__(self, code: str, message: str) -> None:
        super(AccessDeniedError, self).__init__(code, message)  # HTTP 403, the code and message given


def access_denied_response(prefix: str, denied: AccessDenied) -> Exception:
    """The error AWS answers, in the service's own protocol."""
    code = _ACCESS_DENIED_CODE.get(prefix, "AccessDeniedException")
    if prefix in _XML_ERRORS:
        return _XmlAccessDenied(code, str(denied))
    return JsonRESTError(code, str(denied))


def _parameters(response: Any) -> dict[str, Any]:
    """The request's parameters under botocore's names, parsed as moto parses them."""
    try:
        response.parse_parameters(response.normalized_request)
        return dict(response.params)
    except Exception:
        try:
            body = json.loads(response.body or "{}")
            return body if isinstance(body, dict) else {}
        except (TypeError, ValueError):
            return {}


# S3's IAM action names (moto's ACTION_MAP) back to an operation actions.py knows.
_S3_OPERATIONS = {"ListBucket": "ListObjectsV2", "HeadBucket": "HeadBucket"}


def _s3_call(response: Any, resource: str, region: str, account: str) -> Call:
    action = str(response.data.get("Action") or response._get_action())
    path = resource.removeprefix("arn:aws:s3:::")
    bucket, _, key = path.partition("/")
    params: dict[str, Any] = {"Bucket": bucket}
    if key:
        params["Key"] = key
    query = response.querystring
    if "prefix" in query:
        params["Prefix"] = query["prefix"][0]
    if response.headers.get("x-amz-server-side-encryption-aws-kms-key-id"):
        params["SSEKMSKeyId"] = response.headers["x-amz-server-side-encryption-aws-kms-key-id"]
    if response.headers.get("x-amz-copy-source"):
        params["CopySource"] = response.headers["x-amz-copy-source"]
        action = "CopyObject"
    return Call("s3", _S3_OPERATIONS.get(action, action), params, region, account)


class MotoPolicyStore:
    """`PolicyStore` on moto's backends in this process."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def identity_policies(self, role_arn: str) -> list[Policy]:
        backend = iam_backends[self.account]["aws"]
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

    def resource_policy(self, resource_arn: str) -> tuple[Policy | None, bool]:
        parts = resource_arn.split(":", 5)
        if len(parts) != 6:
            return None, False
        service, resource = parts[2], parts[5]
        with contextlib.suppress(Exception):
            if service == "s3":
                bucket = s3_backends[self.account]["aws"].get_bucket(resource.split("/", 1)[0])
                return (Policy.parse(bucket.policy.decode()) if bucket.policy else None), False
            if service == "kms" and resource.startswith("key/"):
                key = kms_backends[self.account][self.region].describe_key(resource.removeprefix("key/"))
                return Policy.parse(key.policy), True
            if service == "lambda":
                function = lambda_backends[self.account][self.region].get_function(resource_arn)
                # moto keeps AddPermission's statements (and CloudFormation's AWS::Lambda::Permission)
                # already in policy form; get_policy() raises when there are none.
                statements = function.policy.statements if function.policy else []
                return (Policy.parse({"Statement": statements}) if statements else None), False
            if service == "sqs":
                queue = sqs_backends[self.account][self.region].get_queue(resource)
                return (Policy.parse(queue.policy) if queue.policy else None), False
        return None, False

    def key_arn(self, key_id: str | None) -> str | None:
        if not key_id:
            return None
        with contextlib.suppress(Exception):
            return str(kms_backends[self.account][self.region].describe_key(key_id).arn)
        return None

    def implied_checks(self, call: Call) -> list[Check]:
        checks: list[Check] = []
        passed = _PASSED_ROLES.get((call.prefix, call.operation))
        if passed and (role := call.params.get(passed[0])):
            checks.append(Check("iam:PassRole", str(role), {"iam:PassedToService": [passed[1]]}))
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
        """SSE-KMS: writing needs kms:GenerateDataKey and reading kms:Decrypt on the key (S3 user guide,
        "Using server-side encryption with AWS KMS keys")."""
        bucket_name = call.params.get("Bucket")
        with contextlib.suppress(Exception):
            backend = s3_backends[self.account]["aws"]
            if call.operation in ("PutObject", "CreateMultipartUpload", "CopyObject"):
                key_id = call.params.get("SSEKMSKeyId")
                if not key_id and call.params.get("ServerSideEncryption") != "AES256":
                    bucket = backend.get_bucket(str(bucket_name))
                    for rule in (bucket.encryption or {}).get("Rule", []):
                        default = rule.get("ApplyServerSideEncryptionByDefault", {})
                        if default.get("SSEAlgorithm") == "aws:kms":
                            key_id = default.get("KMSMasterKeyID")
                if arn := self.key_arn(key_id):
                    return [Check("kms:GenerateDataKey", arn)]
            if call.operation == "GetObject":
                stored = backend.get_object(str(bucket_name), str(call.params.get("Key")))
                if (
                    stored is not None
                    and stored.encryption == "aws:kms"
                    and (arn := self.key_arn(stored.kms_key_id))
                ):
                    return [Check("kms:Decrypt", arn)]
        return []

    def _sqs_kms(self, call: Call) -> list[Check]:
        """An SSE-KMS queue: producers need kms:GenerateDataKey and kms:Decrypt (SQS developer guide,
        "Key management")."""
        with contextlib.suppress(Exception):
            name = str(call.params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
            queue = sqs_backends[self.account][self.region].get_queue(name)
            if arn := self.key_arn(getattr(queue, "kms_master_key_id", None)):
                return [Check("kms:GenerateDataKey", arn), Check("kms:Decrypt", arn)]
        return []

    def _endpoint_kms(self, call: Call) -> list[Check]:
        """An endpoint config with KmsKeyId: CreateEndpoint needs kms:CreateGrant (SageMaker API
        permissions reference, CreateEndpoint)."""
        with contextlib.suppress(Exception):
            config = sagemaker_backends[self.account][self.region].describe_endpoint_config(
                call.params["EndpointConfigName"]
            )
            if arn := self.key_arn(config.get("KmsKeyId")):
                return [Check("kms:CreateGrant", arn, {"kms:GrantIsForAWSResource": ["true"]})]
        return []


class RoleClients(Clients):
    """The plane's clients, signed as a role session: SageMaker's calls on behalf of an execution role."""

    def __init__(self, endpoint: str, sessions: RoleSessions, role_arn: str, session: str) -> None:
        super().__init__(endpoint)
        self._credentials = sessions.credentials(role_arn, session)

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self._credentials.access_key_id,
            aws_secret_access_key=self._credentials.secret_access_key,
            aws_session_token=self._credentials.session_token,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )


class LocalIam:
    """The plane's IAM: role sessions, the authorizer, and the patches that apply them."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self.sessions = RoleSessions(account)
        self.authorizer = Authorizer(MotoPolicyStore(account, region))

    def role_clients(self, endpoint: str, role_arn: str, session: str = "SageMaker") -> Clients:
        return RoleClients(endpoint, self.sessions, role_arn, session)

    def function_credentials(self, role_arn: str, function_name: str) -> dict[str, str]:
        """What a Lambda function's environment carries: its role's session, named after the function."""
        return self.sessions.credentials(role_arn, function_name).environment()

    def authorize_service(self, service: str, action: str, resource: str, source_arn: str) -> None:
        """A call an AWS service makes on its own behalf (EventBridge invoking a function, sending to a
        dead-letter queue): only the resource's policy can allow it."""
        principal = Principal(arn=service, account=self.account, service=service)
        context = {"aws:SourceArn": [source_arn], "aws:SourceAccount": [self.account]}
        self.authorizer.check(principal, action, resource, context)

    def model_role(self, model_name: str) -> str:
        return str(
            sagemaker_backends[self.account][self.region].describe_model(model_name).execution_role_arn
        )

    def model_clients(self, endpoint: str, model_name: str) -> Clients:
        return self.role_clients(endpoint, self.model_role(model_name))

    def authorize_role(self, role_arn: str, action: str, resource: str, session: str) -> None:
        self.authorizer.check(
            Principal(arn=role_arn, account=self.account, session=session), action, resource
        )

    def _authorized(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """moto's request authentication hook (every service's requests pass it, S3's with the bucket or
        object ARN): a request signed with a role session's key is authorized as that role."""
        iam = self

        def authenticate_and_authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:
            credential = str(response.headers.get("Authorization", "")).partition("Credential=")[2]
            scope = credential.partition(",")[0].split("/")  # key/date/region/service/aws4_request
            principal = iam.sessions.principal(scope[0]) if len(scope) == 5 else None
            if principal is None:
                original(response, iam_request_cls, resource)  # the plane's own clients: admin
                return
            prefix, region = scope[3], scope[2]
            call = (
                _s3_call(response, resource, region, iam.account)
                if prefix == "s3"
                else Call(prefix, response._get_action(), _parameters(response), region, iam.account)
            )
            try:
                iam.authorizer.authorize(principal, call)
            except AccessDenied as denied:
                raise access_denied_response(prefix, denied) from None

        return authenticate_and_authorize

    def _state_machine_client(self, region: str, service: str, state_credentials: Any = None) -> BaseClient:
        """moto's `boto_client_for`, signed as the state machine's role (the task's Credentials, else the
        execution's role)."""
        role_arn = getattr(state_credentials, "role_arn", None)
        credentials = self.sessions.credentials(role_arn, "StepFunctions") if role_arn else None
        return boto3.client(
            service_name=service,
            region_name=region,
            endpoint_url=f"http://localhost:{moto_server_port()}",
            aws_access_key_id=credentials.access_key_id if credentials else "ak",
            aws_secret_access_key=credentials.secret_access_key if credentials else "sk",
            aws_session_token=credentials.session_token if credentials else None,
            config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}),
        )

    def _sync_authorized(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """`.sync` manages an EventBridge rule as the state machine's role before it watches the job."""
        iam = self

        def build_sync_resolver(
            service: Any, env: Any, runtime_part: Any, parameters: Any, credentials: Any
        ) -> Any:
            role_arn = getattr(credentials, "role_arn", None)
            if role_arn:
                rule = f"arn:aws:events:{runtime_part.region}:{iam.account}:rule/{SAGEMAKER_SYNC_RULE}"
                for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
                    try:
                        iam.authorize_role(role_arn, action, rule, "StepFunctions")
                    except AccessDenied as denied:
                        raise access_denied_error("events", action.split(":")[1], denied) from None
            return original(service, env, runtime_part, parameters, credentials)

        return build_sync_resolver

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from headrace.local.seams.sfn_sagemaker import StateTaskServiceSageMaker

        original_call: Callable[..., Any] = ActionAuthenticatorMixin._authenticate_and_authorize_action
        original_sync: Callable[..., Any] = StateTaskServiceSageMaker._build_sync_resolver
        original_for = moto_boto_client.boto_client_for
        patched = [
            module
            for name, module in list(sys.modules.items())
            if name.startswith(("moto.stepfunctions.parser", "headrace.local.seams"))
            and getattr(module, "boto_client_for", None) is original_for
        ]
        ActionAuthenticatorMixin._authenticate_and_authorize_action = self._authorized(original_call)  # type: ignore[method-assign]
        StateTaskServiceSageMaker._build_sync_resolver = self._sync_authorized(original_sync)  # type: ignore[method-assign]
        for module in patched:
            module.boto_client_for = self._state_machine_client  # type: ignore[attr-defined]
        try:
            yield
        finally:
            ActionAuthenticatorMixin._authenticate_and_authorize_action = original_call  # type: ignore[method-assign]
            StateTaskServiceSageMaker._build_sync_resolver = original_sync  # type: ignore[method-assign]
            for module in patched:
                module.boto_client_for = original_for  # type: ignore[attr-defined]


class RuleTargets:
    """What EventBridge checks before it delivers a rule's match: a state machine target through the
    target's role (states:StartExecution), a function through the function's resource policy
    (events.amazonaws.com, aws:SourceArn the rule). A denied delivery is not retried: it goes to the
    target's dead-letter queue, which must allow EventBridge itself (queue policy, and the queue's key)."""

    def __init__(self, iam: LocalIam) -> None:
        self._iam = iam

    def denial(self, rule_arn: str, target: dict[str, Any]) -> AccessDenied | None:
        arn = str(target["Arn"])
        try:
            if arn.split(":")[2] == "states":
                role = str(target.get("RoleArn") or "")
                self._iam.authorize_role(role, "states:StartExecution", arn, "EventBridge")
            else:
                self._iam.authorize_service("events.amazonaws.com", "lambda:InvokeFunction", arn, rule_arn)
        except AccessDenied as denied:
            return denied
        return None

    def dead_letter(
        self, rule_arn: str, target: dict[str, Any], event: dict[str, Any], denied: AccessDenied
    ) -> None:
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue_arn:
            log.error("event to %s dropped (no dead-letter queue): %s", target["Arn"], denied)
            return
        try:
            self._iam.authorize_service("events.amazonaws.com", "sqs:SendMessage", queue_arn, rule_arn)
            queue = sqs_backends[self._iam.account][self._iam.region].get_queue(queue_arn.rsplit(":", 1)[-1])
            if key := self._iam.authorizer.store.key_arn(getattr(queue, "kms_master_key_id", None)):  # type: ignore[attr-defined]
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    self._iam.authorize_service("events.amazonaws.com", action, key, rule_arn)
        except AccessDenied as undeliverable:
            log.error(
                "event to %s dropped: its dead-letter queue refused it: %s", target["Arn"], undeliverable
            )
            return
        from headrace.local.seams.targets import MotoTargets

        attributes = {
            "ERROR_CODE": "NO_PERMISSIONS",
            "ERROR_MESSAGE": str(denied)[:1000],
            "RULE_ARN": rule_arn,
            "TARGET_ARN": str(target["Arn"]),
        }
        MotoTargets().send_message(queue_arn, json.dumps(event), attributes)
