"""Policy documents and how one request fares against them (IAM User Guide, "Policy evaluation logic").

A statement applies when its Action (or NotAction), Resource (or NotResource), Principal (resource-based
policies) and Condition all match the request. Within one account: an explicit Deny anywhere wins; otherwise
an Allow in an identity-based policy or in the resource's own policy allows, except that a KMS key policy
must allow the principal itself or delegate to IAM through the account principal.

Across accounts (a principal of one account, a resource of another) both sides must allow: the principal's
identity-based policies in its own account AND the resource's policy in the resource's account, which names
the principal or its account (IAM User Guide, "Cross-account policy evaluation logic":
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
A resource without a policy, or whose policy does not name the caller, refuses every other account.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from headrace.local.iam.conditions import conditions_hold
from headrace.local.iam.patterns import action_matches, resource_matches


class Effect(Enum):
    NONE = "none"  # no statement applies: an implicit deny
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class Principal:
    """Who makes the call: a role session, or an AWS service acting on its own behalf (no role)."""

    arn: str  # arn:aws:iam::<account>:role/<name>, or the service's name for a service principal
    account: str
    service: str | None = None  # e.g. events.amazonaws.com
    session: str = "headrace-local"
    # The plane's own key for the account (aws.py): its root user, whom no policy of its own account limits;
    # another account's resources it reaches only as their policies allow.
    admin: bool = False

    @classmethod
    def account_admin(cls, account: str) -> Principal:
        return cls(arn=f"arn:aws:iam::{account}:root", account=account, admin=True)

    @property
    def caller_arn(self) -> str:
        """The ARN AWS names in AccessDenied: the assumed-role session, the account's root, or the service."""
        if self.service:
            return self.service
        if self.admin:
            return self.arn
        return f"arn:aws:sts::{self.account}:assumed-role/{self.arn.rsplit('/', 1)[-1]}/{self.session}"


@dataclass(frozen=True)
class Request:
    principal: Principal
    action: str
    resource: str
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def full_context(self) -> dict[str, Sequence[str]]:
        """The global keys AWS adds to every request; the local plane is loopback, so TLS holds."""
        keys: dict[str, Sequence[str]] = {
            "aws:SecureTransport": ["true"],
            "aws:PrincipalAccount": [self.principal.account],
        }
        if self.principal.service:
            keys["aws:PrincipalServiceName"] = [self.principal.service]
        else:
            keys["aws:PrincipalArn"] = [self.principal.arn]
        keys.update(self.context)
        return keys


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(element: Any, principal: Principal, cross_account: bool = False) -> bool:
    """A resource-based policy's Principal element against the caller. Across accounts, naming the caller's
    account (`arn:aws:iam::<account>:root` or the bare id) trusts every principal of that account whose own
    identity policies allow the action (IAM User Guide, "AWS JSON policy elements: Principal", AWS account
    principals: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html)."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    if principal.service:
        return principal.service in _listed(element.get("Service", []))
    for entry in _listed(element.get("AWS", [])):
        entry = str(entry)
        if entry == "*" or entry == principal.arn or entry == principal.caller_arn:
            return True
        if cross_account and entry in (principal.account, f"arn:aws:iam::{principal.account}:root"):
            return True
    return False


def _names_account(element: Any, account: str) -> bool:
    """Whether a Principal names the account itself (`arn:aws:iam::<account>:root` or the bare id)."""
    if not isinstance(element, Mapping):
        return False
    return any(
        str(entry) in (account, f"arn:aws:iam::{account}:root") for entry in _listed(element.get("AWS", []))
    )


@dataclass(frozen=True)
class Statement:
    raw: Mapping[str, Any]

    @property
    def effect(self) -> Effect:
        return Effect(self.raw["Effect"])

    def _action_applies(self, action: str) -> bool:
        if "NotAction" in self.raw:
            return not any(action_matches(p, action) for p in _listed(self.raw["NotAction"]))
        return any(action_matches(p, action) for p in _listed(self.raw.get("Action", [])))

    def _resource_applies(self, resource: str) -> bool:
        if "NotResource" in self.raw:
            return not any(resource_matches(p, resource) for p in _listed(self.raw["NotResource"]))
        if "Resource" not in self.raw:  # resource-based policies may leave it out: the resource itself
            return True
        return any(resource_matches(p, resource) for p in _listed(self.raw["Resource"]))

    def applies(
        self,
        request: Request,
        context: Mapping[str, Sequence[str]],
        resource_based: bool,
        cross_account: bool = False,
    ) -> bool:
        if resource_based and not _principal_matches(
            self.raw.get("Principal"), request.principal, cross_account
        ):
            return False
        return (
            self._action_applies(request.action)
            and self._resource_applies(request.resource)
            and conditions_hold(self.raw.get("Condition"), context)
        )

    def delegates_to_account(self, request: Request, context: Mapping[str, Sequence[str]]) -> bool:
        """A key policy statement allowing the account principal: IAM policies then decide."""
        return (
            self.effect is Effect.ALLOW
            and _names_account(self.raw.get("Principal"), request.principal.account)
            and self._action_applies(request.action)
            and self._resource_applies(request.resource)
            and conditions_hold(self.raw.get("Condition"), context)
        )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    name: str = ""

    @classmethod
    def parse(cls, document: str | Mapping[str, Any], name: str = "") -> Policy:
        parsed = json.loads(document) if isinstance(document, str) else document
        return cls(tuple(Statement(s) for s in _listed(parsed.get("Statement", []))), name)

    def effect(
        self,
        request: Request,
        context: Mapping[str, Sequence[str]],
        resource_based: bool,
        cross_account: bool = False,
    ) -> Effect:
        applying = [
            s.effect for s in self.statements if s.applies(request, context, resource_based, cross_account)
        ]
        if Effect.DENY in applying:
            return Effect.DENY
        return Effect.ALLOW if Effect.ALLOW in applying else Effect.NONE


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # AWS's wording after "because": which kind of policy decided

    @property
    def explicit_deny(self) -> bool:
        return self.reason.startswith("with an explicit deny")


# What the plane's admin key (an account's root user) is allowed in its own account's identity terms.
ADMINISTRATOR = Policy.parse({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, "root")


def _both_accounts(identity_allows: bool, resource_effect: Effect) -> Decision:
    """Across accounts both must allow: the caller's identity-based policies and the resource's own policy
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html);
    for a key, its key policy is that resource policy
    (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html)."""
    if not identity_allows:
        return Decision(False, "no identity-based policy allows the {action} action")
    if resource_effect is not Effect.ALLOW:
        return Decision(False, "no resource-based policy allows the {action} action")
    return Decision(True, "allowed by both accounts' policies")


def decide(
    request: Request,
    identity: Iterable[Policy],
    resource_policy: Policy | None = None,
    key_policy: bool = False,
    cross_account: bool = False,
) -> Decision:
    """The decision AWS makes for one action on one resource: within one account, or (`cross_account`) by a
    principal of another account than the resource's."""
    context = request.full_context()
    identity = list(identity) if not request.principal.service else []
    identity_effects = [p.effect(request, context, resource_based=False) for p in identity]
    resource_effect = (
        resource_policy.effect(request, context, resource_based=True, cross_account=cross_account)
        if resource_policy
        else Effect.NONE
    )
    if Effect.DENY in identity_effects:
        return Decision(False, "with an explicit deny in an identity-based policy")
    if resource_effect is Effect.DENY:
        return Decision(False, "with an explicit deny in a resource-based policy")
    identity_allows = Effect.ALLOW in identity_effects
    if cross_account and not request.principal.service:
        return _both_accounts(identity_allows, resource_effect)
    if key_policy:
        assert resource_policy is not None
        if resource_effect is Effect.ALLOW:
            return Decision(True, "allowed by the key policy")
        delegated = any(s.delegates_to_account(request, context) for s in resource_policy.statements)
        if delegated and identity_allows:
            return Decision(True, "allowed by an identity-based policy")
        if not delegated:
            return Decision(False, "no resource-based policy allows the {action} action")
        return Decision(False, "no identity-based policy allows the {action} action")
    if identity_allows or resource_effect is Effect.ALLOW:
        return Decision(True, "allowed")
    if request.principal.service:
        return Decision(False, "no resource-based policy allows the {action} action")
    return Decision(False, "no identity-based policy allows the {action} action")
