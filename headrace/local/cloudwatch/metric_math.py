"""Metric math, as far as the local plane evaluates it: + - * / and parentheses over query ids and numbers.

Parsed into a small tree (no eval); a missing operand or a division by zero leaves that period missing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from headrace.local.cloudwatch.alarm import Unsupported


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Reference:
    id: str


@dataclass(frozen=True)
class Negation:
    operand: Expression


@dataclass(frozen=True)
class Binary:
    operator: str
    left: Expression
    right: Expression


Expression: TypeAlias = Number | Reference | Negation | Binary
_OPERATORS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/()]))"
)


def tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs, kind one of number, name, op."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if not match:
            raise Unsupported(f"metric math {text!r}: cannot read {text[position:].strip()!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """expression := term (+|- term)*;  term := unary (*|/ unary)*;  unary := -unary | +unary | atom;
    atom := number | id | ( expression )."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = tokenize(text)
        self._position = 0

    def parse(self) -> Expression:
        expression = self._sum()
        if self._position != len(self._tokens):
            raise self._error(f"unexpected {self._tokens[self._position][1]!r}")
        return expression

    def _peek(self) -> str | None:
        return self._tokens[self._position][1] if self._position < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        if self._position >= len(self._tokens):
            raise self._error("it ends too early")
        self._position += 1
        return self._tokens[self._position - 1]

    def _sum(self) -> Expression:
        left = self._product()
        while self._peek() in ("+", "-"):
            left = Binary(self._take()[1], left, self._product())
        return left

    def _product(self) -> Expression:
        left = self._unary()
        while self._peek() in ("*", "/"):
            left = Binary(self._take()[1], left, self._unary())
        return left

    def _unary(self) -> Expression:
        if self._peek() in ("-", "+"):
            sign = self._take()[1]
            operand = self._unary()
            return Negation(operand) if sign == "-" else operand
        return self._atom()

    def _atom(self) -> Expression:
        kind, text = self._take()
        if text == "(":
            inner = self._sum()
            if self._take()[1] != ")":
                raise self._error("a parenthesis is not closed")
            return inner
        if kind == "number":
            return Number(float(text))
        if kind == "name" and self._peek() == "(":
            raise Unsupported(f"metric math {self._text!r}: function {text}() is not supported locally")
        if kind == "name":
            return Reference(text)
        raise self._error(f"unexpected {text!r}")

    def _error(self, problem: str) -> Unsupported:
        return Unsupported(f"metric math {self._text!r}: {problem}")


def parse_expression(text: str) -> Expression:
    """Arithmetic over query ids and numbers: + - * / and parentheses (no eval)."""
    return _Parser(text).parse()


def references(expression: Expression) -> set[str]:
    if isinstance(expression, Reference):
        return {expression.id}
    if isinstance(expression, Negation):
        return references(expression.operand)
    if isinstance(expression, Binary):
        return references(expression.left) | references(expression.right)
    return set()


def evaluate_expression(expression: Expression, operands: Mapping[str, float | None]) -> float | None:
    """The expression's value for one period; None (missing) when an operand is missing or it divides by 0."""
    if isinstance(expression, Number):
        return expression.value
    if isinstance(expression, Reference):
        return operands.get(expression.id)
    if isinstance(expression, Negation):
        value = evaluate_expression(expression.operand, operands)
        return None if value is None else -value
    left = evaluate_expression(expression.left, operands)
    right = evaluate_expression(expression.right, operands)
    if left is None or right is None or (expression.operator == "/" and right == 0):
        return None
    return _OPERATORS[expression.operator](left, right)
