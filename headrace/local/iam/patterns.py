"""Wildcard matching as IAM does it: `*` any run of characters, `?` one character."""

from __future__ import annotations

import re
from functools import lru_cache

ARN_FIELDS = 6  # arn:partition:service:region:account:resource


@lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _compiled(pattern, ignore_case).match(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Actions are case-insensitive: `s3:getobject*` covers `s3:GetObjectTagging`."""
    return glob(pattern, action, ignore_case=True)


def resource_matches(pattern: str, arn: str) -> bool:
    return pattern == "*" or glob(pattern, arn)


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike: each of the six colon-delimited fields matched on its own, wildcards inside a field."""
    wanted = pattern.split(":", ARN_FIELDS - 1)
    actual = arn.split(":", ARN_FIELDS - 1)
    if len(wanted) != ARN_FIELDS or len(actual) != ARN_FIELDS:
        return glob(pattern, arn)
    return all(glob(w, a) for w, a in zip(wanted, actual, strict=True))
