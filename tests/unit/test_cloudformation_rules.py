"""The local cloud refuses the templates AWS refuses (canaryfleet_local.cloudformation_rules).

Sources: "Rule functions", AWS CloudFormation Template Reference
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html);
SSM CreateAssociation in botocore's ssm model (ApplyOnlyAtCronInterval: "This parameter isn't
supported for rate expressions"); "Reference: Cron and rate expressions for Systems Manager"
(https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from canaryfleet_local import cloudformation_rules as rules
from canaryfleet_local.parsing import parse_template

FLEET = parse_template((Path(__file__).resolve().parents[2] / "fleet" / "template.yaml").read_text())
FLEET_PARAMETERS = {"Application": "orders-api", "HostHeaders": "orders.example.com"}

# fleet/template.yaml's two deploy-time defects as they were (issue 15, items 1 and 3).
OLD_RULE_ASSERT = {
    "Fn::Or": [
        {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "HostHeaders"}]}, ""]}]},
        {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "PathPatterns"}]}, ""]}]},
    ]
}
OLD_SCHEDULE = "rate(1 hour)"


def the_old_fleet_template() -> dict[str, Any]:
    old = copy.deepcopy(FLEET)
    old["Rules"]["RuleNeedsACondition"]["Assertions"][0]["Assert"] = OLD_RULE_ASSERT
    old["Resources"]["LogSyncAssociation"]["Properties"]["ScheduleExpression"] = OLD_SCHEDULE
    return old


def association(**properties: Any) -> dict[str, Any]:
    return {
        "Name": "canaryfleet-drain",
        "Targets": [{"Key": "tag:application", "Values": ["a"]}],
    } | properties


# --- the fleet template ---------------------------------------------------------------------


def test_the_fleet_template_is_one_aws_accepts() -> None:
    # Given fleet/template.yaml with an application and a host header
    # When the local cloud checks it as AWS would
    refusals = rules.template_refusals(FLEET, FLEET_PARAMETERS)

    # Then nothing is refused
    assert refusals == []


def test_the_old_fleet_template_is_refused_for_both_defects() -> None:
    # Given the fleet template with Fn::Join in its rule and a rate schedule applied only at cron intervals
    # When the local cloud checks it
    refusals = rules.template_refusals(the_old_fleet_template(), FLEET_PARAMETERS)

    # Then both defects are named, as AWS would refuse them
    assert len(refusals) == 2
    assert "rule RuleNeedsACondition uses Fn::Join" in refusals[0]
    assert refusals[1] == (
        "LogSyncAssociation (AWS::SSM::Association): ApplyOnlyAtCronInterval isn't supported for "
        "rate expressions (ScheduleExpression 'rate(1 hour)')"
    )


@pytest.mark.parametrize(
    ("host_headers", "path_patterns", "accepted"),
    [
        ("orders.example.com", "", True),
        ("", "/orders/*", True),
        ("orders.example.com", "/orders/*", True),
        ("", "", False),
    ],
)
def test_the_fleet_rule_still_asks_for_hosts_paths_or_both(
    host_headers: str, path_patterns: str, accepted: bool
) -> None:
    # Given the fleet template's rule written with rule functions only
    parameters = {"Application": "orders-api", "HostHeaders": host_headers, "PathPatterns": path_patterns}

    # When its assertions are evaluated for these parameters
    failed = rules.failed_assertions(FLEET, parameters)

    # Then only a rule with neither hosts nor paths is refused, with the template's description
    assert failed == (
        [] if accepted else [FLEET["Rules"]["RuleNeedsACondition"]["Assertions"][0]["AssertDescription"]]
    )


@pytest.mark.parametrize(
    ("slack_ids", "channel", "accepted"),
    [
        ("", "", True),
        ("", "C0123ABCD", True),
        ("U012AB3CD", "C0123ABCD", True),
        ("U012AB3CD,W0ABC", "", False),
    ],
)
def test_the_fleet_refuses_slack_approvers_without_a_channel_to_ask_them_in(
    slack_ids: str, channel: str, accepted: bool
) -> None:
    parameters = {
        "Application": "orders-api",
        "HostHeaders": "orders.example.com",
        "ApproverSlackUserIds": slack_ids,
        "SlackChannel": channel,
    }

    failed = rules.failed_assertions(FLEET, parameters)

    rule = FLEET["Rules"]["RuleSlackApproversNeedAChannel"]["Assertions"][0]["AssertDescription"]
    assert failed == ([] if accepted else [rule])


# --- Rules functions ------------------------------------------------------------------------


@pytest.mark.parametrize("function", sorted(rules.RULE_FUNCTIONS - {"Ref"}))
def test_each_rule_function_is_accepted(function: str) -> None:
    # Given a rule asserting with one of the functions CloudFormation lists for Rules
    template = {"Rules": {"R": {"Assertions": [{"Assert": {function: ["a", "b"]}}]}}}

    # Then its function is not refused
    assert rules.rule_function_errors(template) == []


@pytest.mark.parametrize("function", ["Fn::Join", "Fn::Select", "Fn::Sub", "Fn::If", "Condition"])
def test_a_function_rules_do_not_take_is_refused_in_a_condition_or_an_assertion(function: str) -> None:
    # Given rules that use a function outside the rule-specific list, nested under Fn::Not
    in_assert = {"Rules": {"R": {"Assertions": [{"Assert": {"Fn::Not": [{function: ["", ["a"]]}]}}]}}}
    in_condition = {"Rules": {"R": {"RuleCondition": {function: ["a"]}, "Assertions": []}}}

    # Then each is refused, naming the rule and the function
    for template in (in_assert, in_condition):
        (error,) = rules.rule_function_errors(template)
        assert f"rule R uses {function}," in error


def test_a_rule_whose_condition_is_false_is_not_asserted() -> None:
    # Given a rule that asserts only in production
    template = {
        "Parameters": {"Env": {"Type": "String"}, "Size": {"Type": "String"}},
        "Rules": {
            "R": {
                "RuleCondition": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                "Assertions": [
                    {
                        "Assert": {"Fn::Contains": [["large", "xlarge"], {"Ref": "Size"}]},
                        "AssertDescription": "prod runs large instances",
                    }
                ],
            }
        },
    }

    # When it is evaluated outside and inside production
    # Then only production is held to it
    assert rules.failed_assertions(template, {"Env": "test", "Size": "small"}) == []
    assert rules.failed_assertions(template, {"Env": "prod", "Size": "small"}) == [
        "prod runs large instances"
    ]


def test_each_member_in_compares_a_list_parameter_member_by_member() -> None:
    # Given a list parameter that must draw from allowed values
    template = {
        "Parameters": {"Zones": {"Type": "CommaDelimitedList"}},
        "Rules": {
            "R": {"Assertions": [{"Assert": {"Fn::EachMemberIn": [{"Ref": "Zones"}, ["a", "b"]]}}]},
        },
    }

    # Then one member outside them fails the rule
    assert rules.failed_assertions(template, {"Zones": "a,b"}) == []
    assert rules.failed_assertions(template, {"Zones": "a,c"}) == ["rule R failed"]


def test_an_assertion_that_reads_account_resources_is_not_evaluated_locally() -> None:
    # Given an assertion on a VPC's tags (Fn::ValueOf), which the local cloud cannot read
    template = {
        "Parameters": {"Vpc": {"Type": "AWS::EC2::VPC::Id"}},
        "Rules": {
            "R": {"Assertions": [{"Assert": {"Fn::Equals": [{"Fn::ValueOf": ["Vpc", "Tags.env"]}, "prod"]}}]}
        },
    }

    # Then it is neither refused as a function nor failed
    assert rules.template_refusals(template, {"Vpc": "vpc-1"}) == []


# --- SSM association parameters -------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["rate(30 minutes)", "rate(1 hour)", "rate(2 days)"])
def test_apply_only_at_cron_interval_is_refused_with_a_rate_expression(schedule: str) -> None:
    # Given an association on a rate schedule that asks to run only at its cron interval
    props = association(ScheduleExpression=schedule, ApplyOnlyAtCronInterval=True)

    # Then CreateAssociation's documented rule refuses it
    (error,) = rules.association_errors("Sync", props, {})
    assert "ApplyOnlyAtCronInterval isn't supported for rate expressions" in error


@pytest.mark.parametrize(
    "schedule",
    [
        # The association examples of "Reference: Cron and rate expressions for Systems Manager"
        "cron(0/30 * * * ? *)",
        "cron(0 0/1 * * ? *)",
        "cron(0 0/12 * * ? *)",
        "cron(15 13 ? * * *)",
        "cron(30 23 ? * TUE#3 *)",
        "cron(0 0 ? * 3L *)",
        "cron(0 2 ? * SUN *)",
        "cron(0 0 30 * * ? *)",
        "at(2026-07-07T15:55:00)",
        "rate(30 minutes)",
        "rate(1 hour)",
        "rate(30 days)",
    ],
)
def test_a_cron_rate_or_at_schedule_is_accepted(schedule: str) -> None:
    # Given an association on a schedule of each documented form (cron with ApplyOnlyAtCronInterval)
    props = association(ScheduleExpression=schedule, ApplyOnlyAtCronInterval=schedule.startswith("cron("))

    # Then nothing is refused
    assert rules.association_errors("Sync", props, {}) == []


@pytest.mark.parametrize("schedule", ["every hour", "hourly()", "0 * * * *", ""])
def test_a_schedule_of_no_documented_form_is_refused(schedule: str) -> None:
    # Given an association whose schedule is not a cron(), rate() or at() expression
    errors = rules.association_errors("Sync", association(ScheduleExpression=schedule), {})

    # Then it is refused
    assert errors and any("ScheduleExpression" in e for e in errors)


@pytest.mark.parametrize(
    ("schedule", "said"),
    [
        # Not among the documented intervals (every 1/2, 1, 2, 4, 8 or 12 hours) nor a set time
        ("cron(0 * * * ? *)", "every 1/2, 1, 2, 4, 8 or 12 hours"),
        ("cron(0 0/3 * * ? *)", "every 1/2, 1, 2, 4, 8 or 12 hours"),
        ("cron(0/15 * * * ? *)", "every 1/2, 1, 2, 4, 8 or 12 hours"),
        ("cron(0 2 ? JAN MON *)", "doesn't support specifying months"),
        ("cron(30 0 2 * * ? *)", "Seconds field can only be 0"),
        ("cron(0 2 * *)", "six fields"),
        ("rate(15 minutes)", "30 minutes to under 31 days"),
        ("rate(31 days)", "30 minutes to under 31 days"),
    ],
)
def test_a_schedule_state_manager_does_not_take_for_an_association_is_refused(
    schedule: str, said: str
) -> None:
    errors = rules.association_errors("Sync", association(ScheduleExpression=schedule), {})

    assert len(errors) == 1 and said in errors[0], errors


def test_a_schedule_offset_needs_a_cron_schedule_applied_only_at_its_interval() -> None:
    # Given offsets on a rate schedule, and on a cron schedule without ApplyOnlyAtCronInterval
    on_rate = association(ScheduleExpression="rate(1 day)", ScheduleOffset=2)
    without_flag = association(ScheduleExpression="cron(0 0 ? * THU#2 *)", ScheduleOffset=3)
    documented = association(
        ScheduleExpression="cron(0 0 ? * THU#2 *)", ScheduleOffset=3, ApplyOnlyAtCronInterval=True
    )

    # Then the first two are refused and the documentation's own example is accepted
    assert any("cron expressions only" in e for e in rules.association_errors("Sync", on_rate, {}))
    assert rules.association_errors("Sync", without_flag, {}) == [
        "Sync (AWS::SSM::Association): ScheduleOffset needs ApplyOnlyAtCronInterval"
    ]
    assert rules.association_errors("Sync", documented, {}) == []


@pytest.mark.parametrize(
    ("member", "value", "why"),
    [
        ("AssociationName", "a b", "does not match"),
        ("AssociationName", "ab", "does not match"),
        ("Name", "x", "does not match"),
        ("MaxConcurrency", "0", "does not match"),
        ("MaxConcurrency", "150%", "does not match"),
        ("MaxErrors", "101%", "does not match"),
        ("ScheduleExpression", "cron(" + "1 " * 130 + ")", "characters"),
    ],
)
def test_the_ssm_models_limits_on_the_members_the_fleet_sets_are_enforced(
    member: str, value: str, why: str
) -> None:
    # Given an association with one member outside botocore's ssm model limits
    errors = rules.association_errors("Sync", association(**{member: value}), {})

    # Then it is refused, naming the member
    assert any(e.startswith(f"Sync (AWS::SSM::Association): {member} ") and why in e for e in errors)


def test_limits_apply_to_values_given_through_parameters() -> None:
    # Given an association name built with Fn::Sub from a parameter
    props = association(AssociationName={"Fn::Sub": "${Application} log sync"})

    # Then the rendered name is checked against the model's pattern
    (error,) = rules.association_errors("Sync", props, {"Application": "orders"})
    assert "'orders log sync' does not match" in error


def test_more_targets_or_target_values_than_the_model_allows_are_refused() -> None:
    # Given six targets, and one target with 51 values
    six = association(Targets=[{"Key": f"tag:k{i}", "Values": ["v"]} for i in range(6)])
    wide = association(Targets=[{"Key": "InstanceIds", "Values": [f"i-{n:08x}" for n in range(51)]}])

    # Then both are refused
    assert rules.association_errors("Sync", six, {}) == [
        "Sync (AWS::SSM::Association): Targets has 6 entries, at most 5"
    ]
    assert rules.association_errors("Sync", wide, {}) == [
        "Sync (AWS::SSM::Association): a target has 51 values, at most 50"
    ]


# --- the hook on CreateStack ----------------------------------------------------------------


@mock_aws
def test_create_stack_answers_a_refused_template_with_cloudformations_validation_error() -> None:
    # Given a CloudFormation client with the local cloud's checks on CreateStack
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    rules.refuse_what_cloudformation_refuses(cfn)
    template = {
        "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": ""}},
        "Rules": {
            "R": {
                "Assertions": [
                    {"Assert": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Names"}]}, ""]}]}}
                ]
            }
        },
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }

    # When a stack is created from the template
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName="refused", TemplateBody=json.dumps(template))

    # Then CreateStack fails as AWS answers, and no stack is left
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "rule R uses Fn::Join" in refused.value.response["Error"]["Message"]
    assert cfn.list_stacks()["StackSummaries"] == []
