"""IAM for the local plane: every call a deployed resource makes is authorized as its role, as AWS would.

policy.py evaluates documents (Deny over Allow, NotAction/NotResource, conditions.py's operators, resource
and key policies); actions.py says which action and resource a call is checked as; sessions.py issues the
credentials each resource runs with; authorizer.py puts them together. seams/iam.py applies them to moto.
"""

from headrace.local.iam.authorizer import AccessDenied, Authorizer, PolicyStore
from headrace.local.iam.policy import Decision, Policy, Principal, Request, decide
from headrace.local.iam.sessions import Credentials, RoleSessions, UntrustedRole, check_trust

__all__ = [
    "AccessDenied",
    "Authorizer",
    "Credentials",
    "Decision",
    "Policy",
    "PolicyStore",
    "Principal",
    "Request",
    "RoleSessions",
    "UntrustedRole",
    "check_trust",
    "decide",
]
