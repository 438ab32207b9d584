"""IAM condition operators, evaluated as AWS documents them (IAM User Guide, "IAM JSON policy elements:
Condition operators"), for the operators Headrace's templates use and their common relatives.

A key missing from the request context fails a positive operator and satisfies a negated one; `...IfExists`
is satisfied by a missing key; `ForAnyValue:`/`ForAllValues:` apply the operator over multi-valued keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from headrace.local.iam.patterns import arn_like, glob

ContextValues = Mapping[str, Sequence[str]]


class UnsupportedCondition(ValueError):
    """An operator this evaluator does not know: refused loudly rather than guessed."""


def _string_equals(actual: str, expected: str) -> bool:
    return actual == expected


def _string_equals_ignore_case(actual: str, expected: str) -> bool:
    return actual.lower() == expected.lower()


def _string_like(actual: str, expected: str) -> bool:
    return glob(expected, actual)


def _arn_equals(actual: str, expected: str) -> bool:
    return actual == expected or arn_like(expected, actual)


def _arn_like(actual: str, expected: str) -> bool:
    return arn_like(expected, actual)  # the policy's value is the pattern


def _bool(actual: str, expected: str) -> bool:
    return actual.lower() == expected.lower()


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def check(actual: str, expected: str) -> bool:
        try:
            return compare(float(actual), float(expected))
        except ValueError:
            return False

    return check


# operator -> (value test, negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_equals, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_equals, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
}


def _values(raw: object) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    return [str(item).lower() if isinstance(item, bool) else str(item) for item in items]


def _lookup(context: ContextValues, key: str) -> Sequence[str] | None:
    # Condition keys are case-insensitive (the IAM User Guide, "Condition element").
    lowered = key.lower()
    for name, values in context.items():
        if name.lower() == lowered:
            return values
    return None


def condition_holds(operator: str, key: str, expected: object, context: ContextValues) -> bool:
    """One operator/key pair of a Condition block against the request context."""
    expected_values = _values(expected)
    actual = _lookup(context, key)
    if operator == "Null":
        return (actual is None) == (expected_values[0].lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator} is not evaluated by the local plane")
    test, negated = _OPERATORS[base]
    if actual is None:
        return if_exists or negated
    if qualifier == "ForAllValues":
        matched = all(any(test(a, e) for e in expected_values) for a in actual)
    else:  # single-valued keys and ForAnyValue: any actual value matching any expected value
        matched = any(test(a, e) for a in actual for e in expected_values)
    return not matched if negated else matched


def conditions_hold(block: Mapping[str, Mapping[str, object]] | None, context: ContextValues) -> bool:
    """Every operator and every key in the block must hold (AND); values within a key are ORed."""
    return all(
        condition_holds(operator, key, expected, context)
        for operator, keys in (block or {}).items()
        for key, expected in keys.items()
    )


__all__ = ["ContextValues", "UnsupportedCondition", "condition_holds", "conditions_hold"]
