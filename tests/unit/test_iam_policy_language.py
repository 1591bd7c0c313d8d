"""The local cloud's IAM reads a statement as the IAM User Guide says IAM does.

Each rule is quoted in `canaryfleet_local/standins/iam_policy.py`; these hold them, including
where moto's own check differs (its Action and Resource read as regular expressions, its
conditions ignored).
"""

from __future__ import annotations

from typing import Any

import pytest

from canaryfleet_local.standins.iam_policy import (
    RequestContext,
    UnsupportedConditionError,
    condition_holds,
    conditions_hold,
    evaluate,
    wildcard_match,
)

GROUP = "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1a2b:autoScalingGroupName/pay-live"
GROUPS = "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/*"
TAGGED = {"StringLike": {"autoscaling:ResourceTag/canaryfleet:application": "?*"}}
# A request whose resource's tags were read: a tag not among them is absent.
NOTHING = RequestContext()


def _tags(values: dict[str, str]) -> RequestContext:
    return RequestContext(values, ("aws:resourcetag/", "autoscaling:resourcetag/"))


def _allow(
    action: Any, resource: Any, condition: dict[str, Any] | None = None, effect: str = "Allow"
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect, "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("canaryfleet-*.*", "canaryfleet-pay.r1", True),
        # A "." is a dot: moto's regular expression took it for any character.
        ("canaryfleet-*.*", "canaryfleet-pay-r1", False),
        ("?*", "x", True),
        ("?*", "", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        # Brackets, "+" and "$" are characters, not a class or quantifiers.
        ("table/[a]+$", "table/[a]+$", True),
        ("table/[a]+$", "table/a", False),
    ],
)
def test_wildcards_are_star_and_question_mark_only(pattern: str, value: str, matches: bool) -> None:
    assert wildcard_match(pattern, value) is matches


def test_an_action_matches_without_regard_to_case_and_a_resource_with_it() -> None:
    statements = [_allow("AutoScaling:setdesired*", GROUP)]

    assert evaluate(statements, "autoscaling:SetDesiredCapacity", GROUP, NOTHING)
    assert not evaluate(
        statements, "autoscaling:SetDesiredCapacity", GROUP.replace("pay-live", "Pay-live"), {}
    )


def test_a_tag_condition_holds_only_for_a_resource_carrying_the_tag_with_some_value() -> None:
    statements = [_allow("autoscaling:SetDesiredCapacity", GROUPS, TAGGED)]
    key = "autoscaling:ResourceTag/canaryfleet:application"

    assert evaluate(statements, "autoscaling:SetDesiredCapacity", GROUP, _tags({key: "pay"}))
    assert not evaluate(statements, "autoscaling:SetDesiredCapacity", GROUP, _tags({key: ""}))
    # "If the key that you specify in a policy condition is not present in the request context,
    # the values do not match and the condition is false."
    assert not evaluate(statements, "autoscaling:SetDesiredCapacity", GROUP, _tags({}))
    # "Context key names are not case-sensitive."
    assert evaluate(statements, "autoscaling:SetDesiredCapacity", GROUP, _tags({key.upper(): "pay"}))


def test_an_unknown_resource_weighs_neither_the_resource_nor_the_conditions() -> None:
    # The stand-in's check of an action alone, for a call whose resource it cannot read.
    statements = [_allow("autoscaling:SetDesiredCapacity", GROUPS, TAGGED)]

    assert evaluate(statements, "autoscaling:SetDesiredCapacity", None, NOTHING)
    assert not evaluate(statements, "autoscaling:DescribeAutoScalingGroups", None, NOTHING)


def test_a_deny_overrides_any_allow_and_nothing_allowed_is_denied() -> None:
    allow = _allow("cloudwatch:*", "*")
    deny = _allow("cloudwatch:DeleteAlarms", "arn:aws:cloudwatch:*:*:alarm:payments-*", effect="Deny")
    alarm = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:payments-latency"

    assert evaluate([allow], "cloudwatch:DeleteAlarms", alarm, NOTHING)
    assert not evaluate([allow, deny], "cloudwatch:DeleteAlarms", alarm, NOTHING)
    assert evaluate([allow, deny], "cloudwatch:PutMetricAlarm", alarm, NOTHING)
    assert not evaluate([deny], "cloudwatch:PutMetricAlarm", alarm, NOTHING)
    assert not evaluate([], "cloudwatch:PutMetricAlarm", alarm, NOTHING)


def test_not_action_and_not_resource_name_everything_else() -> None:
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secrets/*"}]

    assert evaluate(statements, "s3:GetObject", "arn:aws:s3:::builds/app.zip", NOTHING)
    assert not evaluate(statements, "s3:GetObject", "arn:aws:s3:::secrets/key", NOTHING)
    assert not evaluate(statements, "iam:PassRole", "arn:aws:iam::123456789012:role/x", NOTHING)


@pytest.mark.parametrize(
    ("operator", "expected", "value", "holds"),
    [
        ("StringEquals", ["a", "b"], "b", True),
        ("StringEquals", "a", "A", False),
        ("StringEquals", "a", None, False),
        ("StringNotEquals", "a", "b", True),
        ("StringNotEquals", "a", "a", False),
        # "... requires that the key is not matched ... and the right key is not present, the
        # condition is true."
        ("StringNotEquals", "a", None, True),
        ("StringNotLike", "pay-*", None, True),
        ("StringNotLike", "pay-*", "pay-live", False),
        ("StringEqualsIgnoreCase", "Pay", "PAY", True),
        ("StringNotEqualsIgnoreCase", "Pay", "PAY", False),
        ("StringLike", ["x-*", "pay-?"], "pay-1", True),
        ("StringLike", "pay-*", None, False),
        ("StringLikeIfExists", "pay-*", None, True),
        ("StringLikeIfExists", "pay-*", "other", False),
        ("Bool", "true", "True", True),
        ("Bool", "false", None, False),
        ("Null", "true", None, True),
        ("Null", "true", "x", False),
        ("Null", "false", "x", True),
        ("Null", "false", None, False),
    ],
)
def test_condition_operators(operator: str, expected: Any, value: str | None, holds: bool) -> None:
    assert condition_holds(operator, expected, value) is holds


def test_every_operator_and_key_of_a_block_must_hold() -> None:
    block = {
        "StringLike": {"aws:ResourceTag/app": "pay*", "aws:ResourceTag/role": "live"},
        "Null": {"aws:ResourceTag/frozen": "true"},
    }

    assert conditions_hold(block, _tags({"aws:ResourceTag/app": "payments", "aws:ResourceTag/role": "live"}))
    assert not conditions_hold(
        block, _tags({"aws:ResourceTag/app": "payments", "aws:ResourceTag/role": "canary"})
    )
    assert not conditions_hold(
        block,
        _tags(
            {"aws:ResourceTag/app": "payments", "aws:ResourceTag/role": "live", "aws:ResourceTag/frozen": "1"}
        ),
    )


@pytest.mark.parametrize(
    "operator", ["NumericLessThan", "DateGreaterThan", "IpAddress", "ForAnyValue:StringLike", "ArnLike"]
)
def test_an_operator_not_played_is_refused_rather_than_judged(operator: str) -> None:
    statements = [_allow("autoscaling:SetDesiredCapacity", GROUPS, {operator: {"aws:ResourceTag/x": "1"}})]

    with pytest.raises(UnsupportedConditionError, match=operator):
        evaluate(statements, "autoscaling:SetDesiredCapacity", GROUP, _tags({"aws:ResourceTag/x": "1"}))


@pytest.mark.parametrize("key", ["aws:SourceIp", "s3:prefix", "aws:PrincipalTag/team"])
def test_a_condition_on_a_key_the_stand_in_does_not_know_is_refused_rather_than_judged_absent(
    key: str,
) -> None:
    # The resource's tags are known whole; this key is of no family the stand-in reads, so its
    # absence from the context says nothing about the request AWS would see
    statements = [_allow("autoscaling:SetDesiredCapacity", GROUPS, {"StringNotLike": {key: "10.*"}})]

    with pytest.raises(UnsupportedConditionError, match=key):
        evaluate(statements, "autoscaling:SetDesiredCapacity", GROUP, _tags({"aws:ResourceTag/app": "pay"}))
