"""IAM on moto: every call a deployed resource makes is authorized as its role (headrace/local/iam/).

Three places carry a role's identity into its calls:
- a Lambda function runs with its role's session credentials in its environment (lambda_runtime.py);
- moto's ASL interpreter builds its clients with `boto_client_for`: replaced here so that a state machine's
  task calls (`lambda:invoke`, the SageMaker integration and its `.sync` polling) sign as its role;
- SageMaker's compute reads channels, writes models and logs as the job's or the model's execution role.
Calls are authorized where moto's server authenticates every request (`ActionAuthenticatorMixin`): a request
signed with a role session's key is checked against that role's policies, the resource's policy and the
implicit permissions AWS checks beside it (iam_policies.py), and a denied one is answered as AWS answers it
(iam_errors.py: AccessDenied naming the action and the resource) without reaching moto's backend. The
plane's own clients (CLI, tests, provisioning) sign with an account's admin key: admin in that account.

Stages in several accounts: a request reaching a resource of another account than its caller's (an S3
object of another account's bucket, a model package named by its ARN) is allowed only when the caller's
identity policies AND the resource's policy in its own account allow it, whoever the caller is (IAM User
Guide, "Cross-account policy evaluation logic": https://docs.aws.amazon.com/IAM/latest/UserGuide/
reference_policies_evaluation-logic-cross-account.html; policy.py). moto serves a request from its caller's
account; an allowed SageMaker request on another account's model package (group) is served from that
account's backend, as SageMaker serves a version shared through its group's policy. What EventBridge and
Scheduler check before they deliver to a target is in iam_targets.py.
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
from moto.core.authorization import ActionAuthenticatorMixin
from moto.sagemaker.models import sagemaker_backends
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from headrace.local.aws import Clients
from headrace.local.iam import AccessDenied, Authorizer, Principal, RoleSessions
from headrace.local.iam.actions import Call, checks_for
from headrace.local.iam.sessions import account_of
from headrace.local.seams.iam_errors import access_denied_error, access_denied_response
from headrace.local.seams.iam_policies import MotoPolicyStore

log = logging.getLogger("headrace.local.iam")

# Step Functions' `.sync` for SageMaker watches the job through a managed rule per kind of job (Step Functions
# developer guide, "IAM policies for Amazon SageMaker AI": the events actions on this rule).
SAGEMAKER_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
SAGEMAKER_SYNC_RULES = {
    "createtrainingjob": SAGEMAKER_SYNC_RULE,
    "createtransformjob": "StepFunctionsGetEventsForSageMakerTransformJobsRule",
}


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


# S3's IAM action names (moto's ACTION_MAP) back to an operation actions.py knows; a versioned read is
# GetObject with a VersionId there (moto names a HEAD with versionId GetObject).
_S3_OPERATIONS = {
    "ListBucket": "ListObjectsV2",
    "HeadBucket": "HeadBucket",
    "GetObjectVersion": "GetObject",
    "ListMultipartUploadParts": "ListParts",
}


def _s3_call(response: Any, resource: str, region: str, account: str) -> Call:
    action = str(response.data.get("Action") or response._get_action())
    if action == "GetObject" and response.method == "HEAD":
        action = "HeadObject"  # checked as s3:GetObject too, but reads no data: no kms:Decrypt
    path = resource.removeprefix("arn:aws:s3:::")
    bucket, _, key = path.partition("/")
    params: dict[str, Any] = {"Bucket": bucket}
    if key:
        params["Key"] = key
    query = response.querystring
    if "prefix" in query:
        params["Prefix"] = query["prefix"][0]
    if key and query.get("versionId"):
        params["VersionId"] = query["versionId"][0]
    if response.headers.get("x-amz-server-side-encryption-aws-kms-key-id"):
        params["SSEKMSKeyId"] = response.headers["x-amz-server-side-encryption-aws-kms-key-id"]
    if response.headers.get("x-amz-copy-source"):
        params["CopySource"] = response.headers["x-amz-copy-source"]
        action = "CopyObject"
    return Call("s3", _S3_OPERATIONS.get(action, action), params, region, account)


class RoleClients(Clients):
    """The plane's clients, signed as a role session: SageMaker's calls on behalf of an execution role."""

    def __init__(
        self,
        endpoint: str,
        sessions: RoleSessions,
        role_arn: str,
        session: str,
        service: str = "sagemaker.amazonaws.com",
    ) -> None:
        super().__init__(endpoint)
        self._credentials = sessions.assume(role_arn, service, session)  # UntrustedRole: trust policy

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


def _signature_of(response: Any) -> tuple[str, str, str] | None:
    """(access key, region, signing name) of a request: its Authorization header's credential scope, or a
    presigned URL's (S3's SigV2 ones carry only the key: S3 in the request's region)."""
    credential = str(response.headers.get("Authorization", "")).partition("Credential=")[2]
    credential = credential.partition(",")[0]
    query = response.querystring
    if not credential and query.get("X-Amz-Credential"):
        credential = str(query["X-Amz-Credential"][0])
    scope = credential.split("/")  # key/date/region/service/aws4_request
    if len(scope) == 5:
        return scope[0], scope[2], scope[3]
    if query.get("AWSAccessKeyId"):
        return str(query["AWSAccessKeyId"][0]), str(response.region), "s3"
    return None


class LocalIam:
    """The plane's IAM: role sessions, the authorizer, and the patches that apply them. `admins`: each
    account's admin access key (aws.py), by key id."""

    def __init__(self, account: str, region: str, admins: dict[str, str] | None = None) -> None:
        self.account = account
        self.region = region
        self.store = MotoPolicyStore(account, region)
        self.sessions = RoleSessions(account, trust=self.store.trust_policy)
        self.authorizer = Authorizer(self.store)
        self._admins = {key: Principal.account_admin(owner) for key, owner in (admins or {}).items()}

    def principal(self, access_key_id: str) -> Principal | None:
        """Who signs with the key: a role session, an account's admin, or None (a key the plane did not
        issue, which seams/authn.py refused before this)."""
        return self.sessions.principal(access_key_id) or self._admins.get(access_key_id)

    def role_clients(self, endpoint: str, role_arn: str, session: str = "SageMaker") -> Clients:
        return RoleClients(endpoint, self.sessions, role_arn, session)

    def function_credentials(self, role_arn: str, function_name: str) -> dict[str, str]:
        """What a Lambda function's environment carries: its role's session, named after the function."""
        try:
            return self.sessions.assume(role_arn, "lambda.amazonaws.com", function_name).environment()
        except AccessDenied as untrusted:  # answered to Invoke, not a server error
            raise access_denied_response("lambda", untrusted) from None

    def authorize_service(self, service: str, action: str, resource: str, source_arn: str) -> None:
        """A call an AWS service makes on its own behalf (EventBridge invoking a function, sending to a
        dead-letter queue): only the resource's policy can allow it."""
        account = source_arn.split(":")[4] if source_arn.count(":") >= 5 else self.account
        principal = Principal(arn=service, account=account, service=service)
        context = {"aws:SourceArn": [source_arn], "aws:SourceAccount": [account]}
        self.authorizer.check(principal, action, resource, context)

    def model_role(self, model_name: str) -> str:
        """The execution role of the model, in whichever account holds it (names carry their stage)."""
        for backends in list(sagemaker_backends.values()):
            backend = backends[self.region]
            if model_name in backend._models:
                return str(backend.describe_model(model_name).execution_role_arn)
        return str(
            sagemaker_backends[self.account][self.region].describe_model(model_name).execution_role_arn
        )

    def model_clients(self, endpoint: str, model_name: str) -> Clients:
        return self.role_clients(endpoint, self.model_role(model_name))

    def authorize_role(self, role_arn: str, action: str, resource: str, session: str) -> None:
        account = account_of(role_arn, self.account)
        self.authorizer.check(Principal(arn=role_arn, account=account, session=session), action, resource)

    def _authorized(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """moto's request authentication hook (every service's requests pass it, S3's with the bucket or
        object ARN): a request signed with a role session's key is authorized as that role."""
        iam = self

        def authenticate_and_authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:
            signature = _signature_of(response)
            principal = iam.principal(signature[0]) if signature else None
            if signature is None or principal is None:
                original(response, iam_request_cls, resource)
                return
            _, region, prefix = signature
            call = (
                _s3_call(response, resource, region, principal.account)
                if prefix == "s3"
                else Call(prefix, response._get_action(), _parameters(response), region, principal.account)
            )
            try:
                iam.authorizer.authorize(principal, call)
            except AccessDenied as denied:
                raise access_denied_response(prefix, denied) from None
            if prefix == "sagemaker" and (owner := iam._other_owner(call)):
                response.current_account = owner  # allowed: served where the version lives

        return authenticate_and_authorize

    def _other_owner(self, call: Call) -> str | None:
        """The one other account whose model package (group) the call names by ARN, if it names one."""
        owners = {
            self.store.owner(check.resource)
            for check in checks_for(call)
            if ":model-package" in check.resource
        } - {None, call.account}
        return owners.pop() if len(owners) == 1 else None

    def _state_machine_client(self, region: str, service: str, state_credentials: Any = None) -> BaseClient:
        """moto's `boto_client_for`, signed as the state machine's role (the task's Credentials, else the
        execution's role)."""
        role_arn = getattr(state_credentials, "role_arn", None)
        credentials = None
        if role_arn:
            try:
                credentials = self.sessions.assume(
                    role_arn, "states.amazonaws.com", "StepFunctions", self._machine_of(role_arn, region)
                )
            except AccessDenied as untrusted:
                raise access_denied_error("sts", "AssumeRole", untrusted) from None
        # Without a role: the plane's own key, from the plane's environment (plane.py sets it; authn.py).
        return boto3.client(
            service_name=service,
            region_name=region,
            endpoint_url=f"http://localhost:{moto_server_port()}",
            aws_access_key_id=credentials.access_key_id if credentials else None,
            aws_secret_access_key=credentials.secret_access_key if credentials else None,
            aws_session_token=credentials.session_token if credentials else None,
            config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}),
        )

    def _machine_of(self, role_arn: str, region: str) -> str:
        """The state machine that runs as the role: the aws:SourceArn Step Functions assumes it with."""
        account = account_of(role_arn, self.account)
        machines = stepfunctions_parser_backends[account][region].state_machines
        arns = sorted(m.arn for m in machines if m.roleArn == role_arn)
        return arns[0] if arns else f"arn:aws:states:{region}:{account}:stateMachine:*"

    def _sync_authorized(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """`.sync` manages an EventBridge rule as the state machine's role before it watches the job."""
        iam = self

        def build_sync_resolver(
            service: Any,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: Any,
            state_credentials: Any,
        ) -> Any:
            runtime_part, credentials = resource_runtime_part, state_credentials
            role_arn = getattr(credentials, "role_arn", None)
            if role_arn:
                name = SAGEMAKER_SYNC_RULES.get(str(service.resource.api_action).lower(), SAGEMAKER_SYNC_RULE)
                account = account_of(role_arn, iam.account)
                rule = f"arn:aws:events:{runtime_part.region}:{account}:rule/{name}"
                for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
                    try:
                        iam.authorize_role(role_arn, action, rule, "StepFunctions")
                    except AccessDenied as denied:
                        raise access_denied_error("events", action.split(":")[1], denied) from None
            return original(service, env, runtime_part, normalised_parameters, credentials)

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
