"""Role sessions: the temporary credentials a resource runs with, as if STS AssumeRole had issued them.

Lambda functions get them in their environment, state machines and SageMaker jobs in their clients; a call
signed with one of these access keys is authorized as the role. Any other key is the plane's own (admin).

A service assumes a resource's role only if the role's trust policy lets that service principal perform
sts:AssumeRole (with the aws:SourceArn / aws:SourceAccount it sends), as AWS refuses otherwise:
- Lambda: https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html
- SageMaker: https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html
- Step Functions: https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html
- EventBridge Scheduler: https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html
- EventBridge rule targets: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from headrace.local.iam.authorizer import AccessDenied
from headrace.local.iam.policy import Decision, Policy, Principal, Request, decide

# What the service itself answers when it cannot assume the role (its API reference's error for the call
# that passes the role); the services without one report the sts:AssumeRole denial on their failure path.
_REFUSALS = {
    "lambda.amazonaws.com": "The role defined for the function cannot be assumed by Lambda.",
    "sagemaker.amazonaws.com": "Could not assume role {role}. Please ensure that the role exists and allows "
    "principal 'sagemaker.amazonaws.com' to assume the role.",
    "states.amazonaws.com": "Neither the global service principal states.amazonaws.com, nor the regional "
    "one is authorized to assume the provided role.",
}


class UntrustedRole(AccessDenied):
    """The service may not assume the role: a denial of sts:AssumeRole by the role's trust policy."""

    def __init__(self, request: Request, decision: Decision) -> None:
        super().__init__(request, decision)
        refusal = _REFUSALS.get(request.principal.service or "")
        if refusal:
            self.args = (f"{refusal.format(role=request.resource)} ({self.args[0]})",)


# A role's trust policy (AssumeRolePolicyDocument); None when the role does not exist.
TrustPolicies = Callable[[str], Policy | None]


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    # The role's account: the session acts there (an assumed role's session belongs to the role's account).
    account: str = ""

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


def account_of(role_arn: str, default: str) -> str:
    """The account an IAM ARN names (arn:aws:iam::<account>:role/...); `default` when it names none."""
    parts = role_arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else default


def check_trust(
    trust_policy: Policy | None, role_arn: str, service: str, account: str, source_arn: str | None = None
) -> None:
    """Raises UntrustedRole unless the trust policy lets `service` assume the role, for `source_arn`."""
    context = {"aws:SourceAccount": [account]}
    if source_arn:
        context["aws:SourceArn"] = [source_arn]
    principal = Principal(arn=service, account=account, service=service)
    request = Request(principal, "sts:AssumeRole", role_arn, context)
    decision = decide(request, [], trust_policy or Policy(()))
    if not decision.allowed:
        raise UntrustedRole(request, decision)


class RoleSessions:
    """Sessions of the roles of every account the plane serves: each role's in its own account (`account`:
    where a role named without one is)."""

    def __init__(self, account: str, trust: TrustPolicies | None = None) -> None:
        self.account = account
        self._trust = trust
        self._by_key: dict[str, Principal] = {}
        self._issued: dict[str, Credentials] = {}
        # Per plane: without it, anyone who knows a role's ARN could derive its sessions' secrets.
        self._salt = secrets.token_hex(16)
        self._lock = threading.Lock()

    def credentials(self, role_arn: str, session: str = "headrace-local") -> Credentials:
        """Stable per role and session name, so clients cached across invocations stay valid."""
        digest = hashlib.sha256(f"{self._salt}|{role_arn}|{session}".encode()).hexdigest().upper()
        key = f"ASIA{digest[:16]}"  # temporary credentials' access keys start with ASIA
        account = account_of(role_arn, self.account)
        credentials = Credentials(key, digest[16:56], f"headrace-local-session-{digest[24:48]}", account)
        with self._lock:
            self._by_key[key] = Principal(arn=role_arn, account=account, session=session[:64])
            self._issued[key] = credentials
        return credentials

    def assume(self, role_arn: str, service: str, session: str, source_arn: str | None = None) -> Credentials:
        """The session `service` gets for a resource's role; UntrustedRole when the role's trust policy
        does not let it assume the role (without a trust lookup every role is trusted: unit tests)."""
        self.check(role_arn, service, source_arn)
        return self.credentials(role_arn, session)

    def check(self, role_arn: str, service: str, source_arn: str | None = None) -> None:
        if self._trust is not None:
            account = account_of(role_arn, self.account)
            check_trust(self._trust(role_arn), role_arn, service, account, source_arn)

    def issued(self, access_key_id: str) -> Credentials | None:
        """The credentials issued under an access key, for verifying its signatures (seams/authn.py)."""
        return self._issued.get(access_key_id)

    def principal(self, access_key_id: str) -> Principal | None:
        """The role session behind an access key; None for the plane's own credentials."""
        return self._by_key.get(access_key_id)
