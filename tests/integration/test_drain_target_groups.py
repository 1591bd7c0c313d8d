"""The drain's target group adapter on moto: a group's deregistration delay, as a drain reads it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from canaryfleet.adapters.drains import ElbTargetGroups

from tests.integration.state_tables import moto_tables


@pytest.fixture
def elbv2() -> Iterator[Any]:
    with moto_tables():
        yield boto3.client("elbv2")


def _group(elbv2: Any, name: str, delay: str | None) -> str:
    vpc = boto3.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    arn: str = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"
    ]
    if delay is not None:
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": delay}]
        )
    return arn


@pytest.mark.parametrize(
    ("set_to", "read"), [("45", 45), ("0", 0), (None, 300)], ids=["set", "zero", "default"]
)
def test_the_delay_is_the_groups_attribute(elbv2: Any, set_to: str | None, read: int) -> None:
    arn = _group(elbv2, "orders-live", set_to)

    assert ElbTargetGroups().deregistration_delay(arn) == read


def test_a_group_that_cannot_be_read_has_no_delay_and_raises_nothing(elbv2: Any) -> None:
    missing = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gone/0123456789abcdef"

    assert ElbTargetGroups().deregistration_delay(missing) is None
