"""IAM's policy language, as the local cloud's IAM stand-in evaluates an identity policy's statement.

moto matches a statement's Action and Resource as regular expressions ("*" made ".*", any other
character taken as the expression's: "canaryfleet-*.*" then matched "canaryfleet-x-y") and
ignores every condition operator but ``StringEquals``, which it holds true when the request
gives no value. What is played here instead, from the IAM User Guide:

- "IAM JSON policy elements: Action": the action's prefix and name are matched without regard to
  case, "*" matching any run of characters and "?" any one; ``NotAction`` matches every other.
- "IAM JSON policy elements: Resource": an ARN matched with the same wildcards, with regard to case
  ("Resource ARNs are case sensitive" in "IAM identifiers"); ``NotResource`` every other.
- "IAM JSON policy elements: Condition": "Context key names are not case-sensitive"; the operators
  of a block and the keys under an operator must all hold, a key's values are alternatives.
- "IAM JSON policy elements: Condition operators": the string operators (``StringLike``'s "*" and
  "?" wildcards, case-sensitive; the ``IgnoreCase`` ones), ``Bool``, ``Null`` and the
  ``...IfExists`` suffix; "If the key that you specify in a policy condition is not present in the
  request context, the values do not match and the condition is false. If the policy condition
  requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key is
  not present, the condition is true."
- "Policy evaluation logic": an explicit Deny overrides any Allow; without an Allow, the request is
  denied.

A condition this module does not play (another operator, or a ``ForAnyValue:``/``ForAllValues:``
set operator), or one on a context key the stand-in does not know for the request (its
:class:`RequestContext` names the key families it knows whole, such as a resource's tags), raises
:class:`UnsupportedConditionError`: the stand-in says it cannot judge the statement rather than
judge it wrong.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


class UnsupportedConditionError(Exception):
    """A statement's condition uses an operator the local cloud's IAM does not evaluate, or a
    context key it does not know for the request."""

    def __init__(self, operator: str, key: str | None = None) -> None:
        what = f"the condition operator {operator!r}" if key is None else f"the condition key {key!r}"
        super().__init__(
            f"the local cloud's IAM does not evaluate {what} for this request; add it to"
            " canaryfleet_local/standins/iam_policy.py or iam_resources.py (with its AWS source) first"
        )
        self.operator = operator
        self.key = key


@dataclass(frozen=True)
class RequestContext:
    """What the stand-in knows of a request's context: its keys' values, and the key families it
    knows whole (lower case, e.g. "aws:resourcetag/" for a resource whose tags it read). A key of
    such a family that has no value is absent from the request (the resource lacks that tag); a
    key of no known family cannot be judged, and a condition on it is refused, not judged."""

    values: Mapping[str, str] = field(default_factory=dict)
    families: tuple[str, ...] = ()

    def value(self, key: str) -> str | None:
        """The key's value (names matched without regard to case); None if it is absent."""
        wanted = key.lower()
        found = next((v for k, v in self.values.items() if k.lower() == wanted), None)
        if found is None and not wanted.startswith(self.families):
            raise UnsupportedConditionError("", key)
        return found


class Effect(enum.Enum):
    """What one statement says about one request."""

    ALLOW = "Allow"
    DENY = "Deny"
    NOT_APPLICABLE = "NotApplicable"


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches ``pattern``, "*" standing for any run of characters and "?" for one."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _listed(element: Any) -> list[str]:
    return [str(item) for item in element] if isinstance(element, list) else [str(element)]


def _string_holds(base: str, expected: list[str], value: str) -> bool:
    """A positive string operator's test of one present value against the policy's values."""
    if base == "StringEquals":
        return value in expected
    if base == "StringEqualsIgnoreCase":
        return value.casefold() in {e.casefold() for e in expected}
    if base == "Bool":
        return value.lower() in {e.lower() for e in expected}
    return any(wildcard_match(e, value) for e in expected)  # StringLike


# Each operator the module plays: its positive base, and whether it is the negated form.
_OPERATORS = {
    "StringEquals": ("StringEquals", False),
    "StringNotEquals": ("StringEquals", True),
    "StringEqualsIgnoreCase": ("StringEqualsIgnoreCase", False),
    "StringNotEqualsIgnoreCase": ("StringEqualsIgnoreCase", True),
    "StringLike": ("StringLike", False),
    "StringNotLike": ("StringLike", True),
    "Bool": ("Bool", False),
}


def condition_holds(operator: str, expected: Any, value: str | None) -> bool:
    """Whether ``operator`` with the policy's ``expected`` value(s) holds for a request whose
    context has ``value`` for the key (None: the key is not in the request context)."""
    values = _listed(expected)
    if operator == "Null":
        return (value is None) == (values[0].lower() == "true")
    if_exists = operator.endswith("IfExists")
    base_name = operator.removesuffix("IfExists")
    if base_name not in _OPERATORS:
        raise UnsupportedConditionError(operator)
    base, negated = _OPERATORS[base_name]
    if value is None:
        return if_exists or negated
    return _string_holds(base, values, value) != negated


def conditions_hold(block: Mapping[str, Any], context: RequestContext) -> bool:
    """Whether every condition of a statement's Condition block holds for the request context."""
    return all(
        condition_holds(operator, expected, context.value(key))
        for operator, keys in block.items()
        for key, expected in keys.items()
    )


def statement_effect(
    statement: Mapping[str, Any],
    action: str,
    resource: str | None,
    context: RequestContext,
) -> Effect:
    """What ``statement`` says about ``action`` on ``resource`` (None: the resource is not known,
    so the statement's Resource and Condition are not weighed) in the request ``context``."""
    if "NotAction" in statement:
        concerned = not any(
            wildcard_match(a, action, ignore_case=True) for a in _listed(statement["NotAction"])
        )
    else:
        concerned = any(
            wildcard_match(a, action, ignore_case=True) for a in _listed(statement.get("Action", []))
        )
    if not concerned:
        return Effect.NOT_APPLICABLE
    if resource is not None:
        if "NotResource" in statement:
            named = not any(wildcard_match(r, resource) for r in _listed(statement["NotResource"]))
        else:
            named = any(wildcard_match(r, resource) for r in _listed(statement.get("Resource", [])))
        if not named or not conditions_hold(statement.get("Condition") or {}, context):
            return Effect.NOT_APPLICABLE
    return Effect.DENY if statement.get("Effect") == "Deny" else Effect.ALLOW


def evaluate(
    statements: Sequence[Mapping[str, Any]], action: str, resource: str | None, context: RequestContext
) -> bool:
    """Whether the statements allow the request: an Allow among them and no Deny."""
    effects = {statement_effect(s, action, resource, context) for s in statements}
    return Effect.ALLOW in effects and Effect.DENY not in effects
