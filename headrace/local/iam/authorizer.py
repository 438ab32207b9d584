"""Authorizes calls made on behalf of a deployed resource against the policies AWS would consult.

`PolicyStore` is the port to where the policies live (seams/iam.py: moto's IAM, S3, KMS, Lambda and SQS
backends): a role's identity policies, a resource's own policy. The implicit checks AWS makes beside the
call itself (iam:PassRole, KMS use behind S3 and SageMaker) come from `ImpliedChecks`, the same port.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from headrace.local.iam.actions import Call, Check, checks_for
from headrace.local.iam.policy import ADMINISTRATOR, Decision, Policy, Principal, Request, decide

log = logging.getLogger("headrace.local.iam")


class AccessDenied(Exception):
    """A denied call, worded as AWS words it."""

    def __init__(self, request: Request, decision: Decision) -> None:
        self.request = request
        self.decision = decision
        because = decision.reason.format(action=request.action)
        super().__init__(
            f"User: {request.principal.caller_arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource} because {because}"
        )


class PolicyStore(Protocol):
    def identity_policies(self, role_arn: str) -> list[Policy]:
        """The role's inline and attached managed policies (empty for a role that does not exist)."""

    def resource_policy(self, resource_arn: str) -> tuple[Policy | None, bool]:
        """The resource's own policy if it has one, and whether it is a KMS key policy."""

    def implied_checks(self, call: Call) -> list[Check]:
        """What AWS checks beside the call's own action: PassRole, KMS behind S3 and SageMaker."""

    def owner(self, resource_arn: str) -> str | None:
        """The account the resource belongs to; None when unknown (`*`, a resource that does not exist)."""


@dataclass
class Authorizer:
    store: PolicyStore
    # Every denial, for the tests and for `headrace local` diagnostics.
    denials: list[AccessDenied] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(
        self, principal: Principal, action: str, resource: str, context: dict[str, list[str]] | None = None
    ) -> None:
        owner = None if principal.service else self.store.owner(resource)
        cross_account = owner is not None and owner != principal.account
        if principal.admin and not cross_account:
            return  # an account's root, in its own account
        request = Request(principal, action, resource, context or {})
        policy, is_key = self.store.resource_policy(resource)
        if principal.service:
            identity = []
        else:
            identity = [ADMINISTRATOR] if principal.admin else self.store.identity_policies(principal.arn)
        decision = decide(request, identity, policy, key_policy=is_key, cross_account=cross_account)
        if not decision.allowed:
            denied = AccessDenied(request, decision)
            with self._lock:
                self.denials.append(denied)
            log.warning("denied: %s", denied)
            raise denied

    def authorize(self, principal: Principal, call: Call) -> None:
        """Raises AccessDenied for the first check of the call that the policies do not allow."""
        for check in self._checks(call):
            self.check(principal, check.action, check.resource, dict(check.context))

    def _checks(self, call: Call) -> Iterable[Check]:
        yield from checks_for(call)
        yield from self.store.implied_checks(call)
