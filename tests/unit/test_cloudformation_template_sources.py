"""CreateStack reads its template from the request or from S3, within AWS's limits.

Sources: botocore's cloudformation model (2010-05-15), CreateStack's ``TemplateBody`` ("a
maximum length of 51,200 bytes"; "You must specify either TemplateBody or TemplateURL, but not
both") and ``TemplateURL`` ("max size: 1 MB"; "must start with https://"); "Understand
CloudFormation quotas"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws

from canaryfleet_local import cloudformation_rules as rules
from canaryfleet_local.fleet import FLEET_TEMPLATE
from canaryfleet_local.parsing import parse_template
from canaryfleet_local.template import DEFAULT_TEMPLATE, prepare

BUCKET = "templates-bucket"
A_FALSE_RULE = {
    "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": ""}},
    "Rules": {"R": {"Assertions": [{"Assert": {"Fn::Join": ["", {"Ref": "Names"}]}}]}},
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
}


def template_of(size: int, pad: str = "x") -> str:
    """A template that creates one topic, padded (in its Metadata) to exactly ``size`` bytes."""
    resources = {"Topic": {"Type": "AWS::SNS::Topic"}}
    room = size - len(json.dumps({"Metadata": {"Pad": ""}, "Resources": resources}).encode())
    assert room >= 0 and room % len(pad.encode()) == 0
    padding = pad * (room // len(pad.encode()))
    text = json.dumps({"Metadata": {"Pad": padding}, "Resources": resources}, ensure_ascii=False)
    assert len(text.encode()) == size
    return text


@pytest.fixture
def cfn() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("cloudformation", region_name="us-east-1")
        rules.refuse_what_cloudformation_refuses(client)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield client


def upload(key: str, text: str) -> None:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key=key, Body=text.encode())


def refusal(cfn: Any, **source: str) -> str:
    """CreateStack's ValidationError message for this template source; no stack may be left."""
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName="refused", **source)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert cfn.list_stacks()["StackSummaries"] == []
    return str(refused.value.response["Error"]["Message"])


def created(cfn: Any, name: str, **source: Any) -> bool:
    cfn.create_stack(StackName=name, **source)
    return bool(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE")


# --- the template in the request ------------------------------------------------------------


def test_a_template_body_of_51200_bytes_is_taken_and_one_byte_more_is_refused(cfn: Any) -> None:
    # Given templates of exactly the limit and one byte over it
    # When each is given as CreateStack's TemplateBody
    message = refusal(cfn, TemplateBody=template_of(51_201))

    # Then the larger is refused with AWS's constraint message, and the other creates its stack
    assert "at 'templateBody' failed to satisfy constraint" in message
    assert "less than or equal to 51200" in message
    assert created(cfn, "at-the-limit", TemplateBody=template_of(51_200))


def test_the_body_limit_counts_bytes_not_characters(cfn: Any) -> None:
    # Given a template of 51,202 bytes but fewer than 51,200 characters ("é" is two bytes)
    body = template_of(51_202, pad="é")
    assert len(body) < 51_200

    # When it is given as TemplateBody
    # Then it is refused: the model states the limit in bytes
    assert "51200" in refusal(cfn, TemplateBody=body)


def test_a_body_and_a_url_together_or_neither_are_refused(cfn: Any) -> None:
    upload("t.json", template_of(1_000))
    url = f"https://s3.amazonaws.com/{BUCKET}/t.json"

    assert "either TemplateBody or TemplateURL, but not both" in refusal(
        cfn, TemplateBody=template_of(1_000), TemplateURL=url
    )
    assert "must be specified" in refusal(cfn)


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ("Resources: {Topic: {Type: AWS::SNS::Topic}", "Template format error: YAML not well-formed."),
        ("[1, 2]", "Template format error: unsupported structure."),
        ("just words", "Template format error: unsupported structure."),
    ],
)
def test_a_text_that_is_not_a_template_is_refused_as_a_format_error(cfn: Any, body: str, answer: str) -> None:
    assert refusal(cfn, TemplateBody=body) == answer


def test_an_empty_body_is_refused_by_the_client_before_anything_is_sent(cfn: Any) -> None:
    with pytest.raises(ParamValidationError):
        cfn.create_stack(StackName="empty", TemplateBody="")
    with pytest.raises(ParamValidationError):
        cfn.create_stack(StackName="not-text", TemplateBody=b"{}")


def test_a_template_object_that_is_not_utf8_is_a_format_error(cfn: Any) -> None:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key="latin1.json", Body=b"{\xff}")

    message = refusal(cfn, TemplateURL=f"https://s3.amazonaws.com/{BUCKET}/latin1.json")

    assert message == "Template format error: unsupported structure."


# --- the template in S3 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"https://s3.amazonaws.com/{BUCKET}/big/t.json",
        f"https://s3.us-east-1.amazonaws.com/{BUCKET}/big/t.json",
        f"https://s3-us-east-1.amazonaws.com/{BUCKET}/big/t.json",
        f"https://{BUCKET}.s3.amazonaws.com/big/t.json",
        f"https://{BUCKET}.s3.us-east-1.amazonaws.com/big/t.json",
    ],
)
def test_a_template_over_the_body_limit_is_created_from_its_s3_url(cfn: Any, url: str) -> None:
    # Given a template too large for the request, uploaded to S3
    upload("big/t.json", template_of(200_000))

    # When the stack is created from its URL, path-style or virtual-hosted
    # Then CloudFormation reads it from S3 and creates the stack
    assert created(cfn, "from-s3", TemplateURL=url)


def test_an_s3_template_of_1_mb_is_taken_and_one_byte_more_is_refused(cfn: Any) -> None:
    upload("limit.json", template_of(1_048_576))
    upload("over.json", template_of(1_048_577))

    message = refusal(cfn, TemplateURL=f"https://s3.amazonaws.com/{BUCKET}/over.json")

    assert message == "Template may not exceed 1048576 bytes in size."
    assert created(cfn, "at-the-limit", TemplateURL=f"https://s3.amazonaws.com/{BUCKET}/limit.json")


@pytest.mark.parametrize(
    ("url", "answer"),
    [
        (f"http://s3.amazonaws.com/{BUCKET}/t.json", "TemplateURL must be a supported URL."),
        (f"s3://{BUCKET}/t.json", "TemplateURL must be a supported URL."),
        (f"https://example.com/{BUCKET}/t.json", "TemplateURL must be an Amazon S3 URL."),
        (f"https://s3.amazonaws.com/{BUCKET}/missing.json", "to which you have access"),
        ("https://s3.amazonaws.com/no-such-bucket/t.json", "to which you have access"),
        (f"https://s3.amazonaws.com/{BUCKET}", "to which you have access"),
        # a long host name that is not S3's is refused at once, not after exponential backtracking
        ("https://s3" + "-a" * 60 + "!.example.com/t.json", "TemplateURL must be an Amazon S3 URL."),
    ],
)
def test_a_url_that_is_not_an_https_s3_object_is_refused(cfn: Any, url: str, answer: str) -> None:
    upload("t.json", template_of(1_000))

    assert answer in refusal(cfn, TemplateURL=url)


def test_a_systems_manager_document_url_is_said_to_be_beyond_the_local_cloud(cfn: Any) -> None:
    # AWS takes it; the local cloud does not pretend AWS refused it
    with pytest.raises(rules.TemplateSourceUnsupportedLocallyError, match="S3 only"):
        cfn.create_stack(
            StackName="ssm", TemplateURL="ssm-doc://arn:aws:ssm:us-east-1:123456789012:document/t"
        )


def test_the_template_rules_hold_for_a_template_read_from_s3(cfn: Any) -> None:
    # Given a template whose rule uses a function Rules do not take, uploaded to S3
    upload("rule.json", json.dumps(A_FALSE_RULE))

    # When a stack is created from its URL
    # Then it is refused for its rule, as from the request
    assert "rule R uses Fn::Join" in refusal(cfn, TemplateURL=f"https://s3.amazonaws.com/{BUCKET}/rule.json")


# --- how much a template declares -----------------------------------------------------------


def declaring(resources: int = 1, outputs: int = 0, parameters: int = 0) -> dict[str, Any]:
    return {
        "Parameters": {f"P{n}": {"Type": "String", "Default": "v"} for n in range(parameters)},
        "Resources": {f"Topic{n}": {"Type": "AWS::SNS::Topic"} for n in range(resources)},
        "Outputs": {f"O{n}": {"Value": "v"} for n in range(outputs)},
    }


def test_a_template_may_declare_500_resources_200_outputs_and_200_parameters() -> None:
    assert rules.quota_errors(declaring(resources=500, outputs=200, parameters=200)) == []


def test_one_more_resource_output_or_parameter_is_refused() -> None:
    assert rules.quota_errors(declaring(resources=501, outputs=201, parameters=201)) == [
        "Template format error: Number of resources, 501, is greater than maximum allowed, 500",
        "Template format error: Outputs count 201 is greater than max allowed 200",
        "Template format error: Parameters count 201 is greater than max allowed 200",
    ]


def test_a_description_over_1024_bytes_and_a_parameter_value_over_4096_bytes_are_refused() -> None:
    template = declaring(parameters=1) | {"Description": "é" * 512}
    assert rules.quota_errors(template, {"P0": "x" * 4_096}) == []

    longer = template | {"Description": "é" * 512 + "."}
    errors = rules.quota_errors(longer, {"P0": "x" * 4_097})

    assert errors == [
        "Template format error: the template's Description is 1025 bytes, more than the 1024 allowed",
        "Parameter P0's value is 4097 bytes, more than the 4096 a parameter value may have",
    ]


def test_create_stack_refuses_a_template_over_a_quota_before_creating_anything(cfn: Any) -> None:
    upload("many.json", json.dumps(declaring(resources=501)))

    message = refusal(cfn, TemplateURL=f"https://s3.amazonaws.com/{BUCKET}/many.json")

    assert message == "Template format error: Number of resources, 501, is greater than maximum allowed, 500"
    assert boto3.client("sns", region_name="us-east-1").list_topics()["Topics"] == []


def test_canaryfleets_templates_are_within_the_quotas(monkeypatch: pytest.MonkeyPatch) -> None:
    # The platform as `sam deploy` sends it (transformed: SAM adds roles, permissions, rules)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    platform = prepare(DEFAULT_TEMPLATE, "code-bucket").cloudformation
    fleet = parse_template(FLEET_TEMPLATE.read_text())

    assert rules.quota_errors(platform) == []
    assert rules.quota_errors(fleet) == []


# --- canaryfleet's own templates --------------------------------------------------------------


def test_the_fleet_template_fits_in_the_request_that_fleet_readme_deploys_it_with() -> None:
    # fleet/README.md deploys it with `aws cloudformation deploy --template-file --s3-bucket`, as
    # the onboarding's printed command does: the AWS CLI uploads the file and sends its TemplateURL
    # (1 MB). Without --s3-bucket it would send the file as TemplateBody (51,200 bytes), which
    # fleet/template.yaml outgrew with the alarms that count the load balancer's own answers.
    readme = (FLEET_TEMPLATE.parent / "README.md").read_text()
    start = readme.index("aws cloudformation deploy")
    command = readme[start : readme.index("```", start)]
    size = len(FLEET_TEMPLATE.read_bytes())

    assert "--s3-bucket" in command
    assert size <= rules.TEMPLATE_OBJECT_LIMIT, f"fleet/template.yaml is {size} bytes"
