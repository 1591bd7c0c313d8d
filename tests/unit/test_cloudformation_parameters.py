"""The local cloud refuses parameter values AWS refuses, and trims list members as AWS does.

Source: "Parameters section syntax reference for CloudFormation templates"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html):
AllowedPattern "must match the entire parameter value" of a String and "each value in the list" of
a CommaDelimitedList, AllowedValues likewise, MinLength/MaxLength and MinValue/MaxValue; the answer
"Malformed input-Parameter MyParameter must match pattern [A-Za-z0-9]+", or the
ConstraintDescription in its place; and a CommaDelimitedList's "each member string is space
trimmed". moto checks none of these and keeps the spaces.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import Annotated, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from canaryfleet.models.app_config import (
    APPROVER_EMAIL_MAX_LENGTH,
    APPROVER_EMAIL_PATTERN,
    HOST_NAME_PATTERN,
    SLACK_CHANNEL_ID_MAX_LENGTH,
    SLACK_CHANNEL_ID_PATTERN,
    SLACK_USER_ID_PATTERN,
    Approvers,
)
from canaryfleet.settings import APPROVAL_URL_PATTERN, RequestApprovalSettings
from moto import mock_aws
from pydantic import TypeAdapter, ValidationError

from canaryfleet_local import cloudformation_rules as rules
from canaryfleet_local.parsing import parse_template

ROOT = Path(__file__).resolve().parents[2]
FLEET = parse_template((ROOT / "fleet" / "template.yaml").read_text())
FLEET_PARAMETERS = {"Application": "orders-api", "HostHeaders": "orders.example.com"}


def template(**parameter: Any) -> dict[str, Any]:
    return {"Parameters": {"P": parameter}, "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}


@pytest.mark.parametrize(
    ("parameter", "value", "said"),
    [
        ({"Type": "String", "AllowedPattern": "[a-z]+"}, "abc1", "must match pattern [a-z]+"),
        ({"Type": "String", "AllowedPattern": "[a-z]+"}, "", "must match pattern [a-z]+"),
        (
            {"Type": "String", "AllowedPattern": "[a-z]+", "ConstraintDescription": "must be lowercase"},
            "ABC",
            "must be lowercase",
        ),
        ({"Type": "CommaDelimitedList", "AllowedPattern": "[a-z]+"}, "abc,d1", "must match pattern"),
        ({"Type": "String", "AllowedValues": ["a", "b"]}, "c", "must be one of AllowedValues"),
        ({"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]}, "a,c", "must be one of AllowedValues"),
        ({"Type": "String", "MinLength": 3}, "ab", "at least 3 characters"),
        ({"Type": "String", "MaxLength": 3}, "abcd", "at most 3 characters"),
        ({"Type": "Number", "MinValue": 1}, "0", "must be at least 1"),
        ({"Type": "Number", "MaxValue": 10}, "10.5", "must be at most 10"),
        ({"Type": "Number"}, "ten", "must be a number"),
        # Java's predefined classes are ASCII (java.util.regex.Pattern): no no-break space in \\s,
        # no Arabic-Indic digit in \\d, no accented letter in \\w
        ({"Type": "String", "AllowedPattern": r"a\s+b"}, "a\u00a0b", "must match pattern"),
        ({"Type": "String", "AllowedPattern": r"\d+"}, "\u0663", "must match pattern"),
        ({"Type": "CommaDelimitedList", "AllowedPattern": r"\w+"}, "abc,d\u00e9f", "must match pattern"),
    ],
)
def test_a_value_outside_its_parameters_constraints_is_refused(
    parameter: dict[str, Any], value: str, said: str
) -> None:
    refusals = rules.template_refusals(template(**parameter), {"P": value})

    assert len(refusals) == 1
    assert refusals[0].startswith("Malformed input-Parameter P ")
    assert said in refusals[0]


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ({"Type": "String", "AllowedPattern": "[a-z]+"}, "abc"),
        ({"Type": "CommaDelimitedList", "AllowedPattern": "[a-z]+"}, "abc, d ,ef"),
        ({"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]}, "a, b"),
        ({"Type": "String", "MinLength": 3, "MaxLength": 3}, "abc"),
        ({"Type": "Number", "MinValue": 1, "MaxValue": 10}, "10"),
        ({"Type": "String", "AllowedPattern": r"a\s+b\d\w"}, "a \t\x0bb3_"),
    ],
)
def test_a_value_within_them_is_taken_list_members_trimmed(parameter: dict[str, Any], value: str) -> None:
    assert rules.template_refusals(template(**parameter), {"P": value}) == []


def test_a_default_is_held_to_the_constraints_when_no_value_is_given() -> None:
    declared = template(Type="String", Default="UPPER", AllowedPattern="[a-z]*")

    assert rules.template_refusals(declared, {}) == ["Malformed input-Parameter P must match pattern [a-z]*"]
    assert rules.template_refusals(declared, {"P": "lower"}) == []


# --- the fleet's approvers ------------------------------------------------------------------

# The longest approver address and Slack channel the registry reads (Approvers takes both).
LONGEST_EMAIL = "ana@" + "e" * (APPROVER_EMAIL_MAX_LENGTH - len("ana@.com")) + ".com"
LONGEST_CHANNEL = "C" + "0" * (SLACK_CHANNEL_ID_MAX_LENGTH - 1)


@pytest.mark.parametrize(
    "address", ["ana\u00a0lopez@example.com", "bo\u3000@example.com", "ana\x01@example.com"]
)
def test_the_registry_refuses_the_addresses_the_stack_does(address: str) -> None:
    with pytest.raises(ValidationError):
        Approvers(emails=(address,))


@pytest.mark.parametrize(
    "address", ["ana.lopez@example.com", "ana+ops@b\u00fccher.example", "\u00e5sa@example.se"]
)
def test_the_registry_and_the_stack_take_an_address_in_any_script(address: str) -> None:
    assert Approvers(emails=(address,)).emails == (address,)
    assert rules.template_refusals(FLEET, FLEET_PARAMETERS | {"ApproverEmails": address}) == []


# Every character Unicode or ASCII calls whitespace, and every control character: Java's \\s
# (CloudFormation's) takes the ASCII ones only, pydantic's all of them, and a raw control character
# breaks the JSON the fleet stack writes the address into.
EVERY_SPACE_AND_CONTROL = [
    chr(code)
    for code in range(sys.maxunicode + 1)
    if not 0xD800 <= code <= 0xDFFF and (chr(code).isspace() or unicodedata.category(chr(code)) == "Cc")
]


def test_the_stack_and_the_registry_refuse_every_space_and_control_character_in_an_address() -> None:
    addresses = [f"ana{character}lopez@example.com" for character in EVERY_SPACE_AND_CONTROL]
    taken_by_stack = [
        a for a in addresses if not rules.template_refusals(FLEET, FLEET_PARAMETERS | {"ApproverEmails": a})
    ]
    taken_by_registry = [a for a in addresses if _takes(lambda a=a: Approvers(emails=(a,)))]

    assert len(addresses) > 60
    assert taken_by_stack == [] and taken_by_registry == []


def test_the_platform_stack_and_the_functions_read_the_approval_page_url_alike() -> None:
    platform = parse_template((ROOT / "template.yaml").read_text())
    field = RequestApprovalSettings.model_fields["approval_page_url"]
    url = TypeAdapter(Annotated[str, *field.metadata])

    assert platform["Parameters"]["ApprovalPageUrl"]["AllowedPattern"] == f"^$|{APPROVAL_URL_PATTERN}"
    for good in ("", "https://approve.example.com", "https://approve.example.com/base/"):
        assert rules.parameter_errors(platform, {"ApprovalPageUrl": good}) == []
        assert url.validate_python(good) == good
    for character in EVERY_SPACE_AND_CONTROL:
        bad = f"https://approve.example.com/{character}x"
        assert rules.parameter_errors(platform, {"ApprovalPageUrl": bad}), repr(character)
        assert not _takes(lambda bad=bad: url.validate_python(bad)), repr(character)


def _takes(validate: Any) -> bool:
    try:
        validate()
    except ValidationError:
        return False
    return True


def test_the_longest_address_and_channel_are_ones_the_registry_reads() -> None:
    approvers = Approvers(emails=(LONGEST_EMAIL,), slack_channel=LONGEST_CHANNEL)

    assert len(approvers.emails[0]) == APPROVER_EMAIL_MAX_LENGTH
    assert approvers.slack_channel is not None and len(approvers.slack_channel) == SLACK_CHANNEL_ID_MAX_LENGTH


def test_the_fleets_approver_parameters_allow_what_the_registry_reads_or_nothing() -> None:
    parameters = FLEET["Parameters"]

    # each at most as long as the registry reads: a lookahead for a list's members, which take
    # no MaxLength
    emails = APPROVER_EMAIL_PATTERN.removeprefix("^")
    assert parameters["ApproverEmails"]["AllowedPattern"] == (
        f"^$|^(?=.{{1,{APPROVER_EMAIL_MAX_LENGTH}}}$){emails}"
    )
    assert parameters["ApproverSlackUserIds"]["AllowedPattern"] == f"^$|{SLACK_USER_ID_PATTERN}"
    assert parameters["SlackChannel"]["AllowedPattern"] == f"^$|{SLACK_CHANNEL_ID_PATTERN}"
    assert parameters["SlackChannel"]["MaxLength"] == SLACK_CHANNEL_ID_MAX_LENGTH
    assert parameters["HostHeaders"]["AllowedPattern"] == f"^$|{HOST_NAME_PATTERN}"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("ApproverEmails", "ana@example.com,Bob Smith <bob@example.com>", "addresses like name@example.com"),
        ("ApproverEmails", 'ana"@example.com', "addresses like name@example.com"),
        ("ApproverEmails", "ana@example.com,", "ApproverEmails has an empty member"),
        ("ApproverEmails", "ana@example.com,,bo@example.com", "ApproverEmails has an empty member"),
        ("ApproverSlackUserIds", "U012AB3CD,@ana", "must be Slack user ids"),
        ("ApproverSlackUserIds", "U" + "0" * 21, "must be Slack user ids"),
        ("HostHeaders", "orders.example.com,orders", "must be host names with a domain"),
        ("HostHeaders", "orders.internal1", "must be host names with a domain"),
        ("ApproverSlackUserIds", "U012AB3CD,", "ApproverSlackUserIds has an empty member"),
        ("SlackChannel", "#releases", "must be a Slack channel id"),
        ("ApproverEmails", f"ana@example.com,{LONGEST_EMAIL}x", "at most 200 characters each"),
        ("SlackChannel", f"{LONGEST_CHANNEL}0", "at most 64 characters"),
        # characters Java's \\s does not take (it is ASCII) and the model refuses: a pasted no-break
        # or ideographic space, and a control character that would break the entry's JSON
        ("ApproverEmails", "ana\u00a0lopez@example.com", "addresses like name@example.com"),
        ("ApproverEmails", "ana@example.com,bo\u3000@example.com", "addresses like name@example.com"),
        ("ApproverEmails", "ana\x01@example.com", "addresses like name@example.com"),
    ],
)
def test_an_approver_the_platform_could_not_read_is_refused_before_any_stack(
    name: str, value: str, said: str
) -> None:
    # (Slack approvers with their channel: only the value under test is wrong)
    refusals = rules.template_refusals(FLEET, FLEET_PARAMETERS | {"SlackChannel": "C012AB3CD", name: value})

    assert len(refusals) == 1 and said in refusals[0], refusals


@pytest.mark.parametrize(
    "given",
    [
        {},
        {
            "ApproverEmails": "ana@example.com, bo@example.com",
            "ApproverSlackUserIds": "U012AB3CD , W0ABC",
            "SlackChannel": "C012AB3CD",
        },
        {"SlackChannel": "C012AB3CD"},
        {"ApproverEmails": f"ana@example.com,{LONGEST_EMAIL}", "SlackChannel": LONGEST_CHANNEL},
    ],
)
def test_approvers_given_as_people_type_them_are_taken(given: dict[str, str]) -> None:
    assert rules.template_refusals(FLEET, FLEET_PARAMETERS | given) == []


def test_host_names_the_load_balancer_matches_are_taken_wildcards_included() -> None:
    hosts = "orders.example.com,*.orders.example.com,orders-v?.example.co"

    assert rules.template_refusals(FLEET, FLEET_PARAMETERS | {"HostHeaders": hosts}) == []


def test_canaryfleets_own_templates_defaults_meet_their_constraints() -> None:
    platform = parse_template((ROOT / "template.yaml").read_text())

    assert rules.parameter_errors(platform, {}) == []
    assert rules.parameter_errors(FLEET, FLEET_PARAMETERS) == []


# --- the hook on CreateStack ----------------------------------------------------------------


@mock_aws
def test_create_stack_refuses_a_value_outside_its_constraints_and_trims_list_members() -> None:
    # Given a CloudFormation client with the local cloud's checks on CreateStack
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    rules.refuse_what_cloudformation_refuses(cfn)
    declared = {
        "Parameters": {"Names": {"Type": "CommaDelimitedList", "AllowedPattern": "[a-z]+"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"Second": {"Value": {"Fn::Select": [1, {"Ref": "Names"}]}}},
    }
    body = json.dumps(declared)

    # When one stack is given a member the pattern refuses, and another a list typed with spaces
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(
            StackName="refused",
            TemplateBody=body,
            Parameters=[{"ParameterKey": "Names", "ParameterValue": "a,B"}],
        )
    cfn.create_stack(
        StackName="taken",
        TemplateBody=body,
        Parameters=[{"ParameterKey": "Names", "ParameterValue": "a, b"}],
    )

    # Then the first is refused as AWS answers, and no stack is left of it
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert (
        refused.value.response["Error"]["Message"]
        == "Malformed input-Parameter Names must match pattern [a-z]+"
    )
    names = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]]
    assert names == ["taken"]
    # And the second's members reach the template trimmed, as CloudFormation's Ref gives them
    [stack] = cfn.describe_stacks(StackName="taken")["Stacks"]
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == {"Second": "b"}
