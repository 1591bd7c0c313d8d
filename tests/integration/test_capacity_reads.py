"""A color's capacity, read from Auto Scaling: the launch failures are the release's own, found
on whichever page of the group's scaling activities they are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from canaryfleet.adapters.clients import client, reset_clients
from canaryfleet.adapters.fleet import AutoScaling
from moto import mock_aws

from canaryfleet_local.standins.autoscaling_launches import AutoScalingLaunches
from tests.integration.helpers import an_auto_scaling_group

SINCE = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
SPOT_SHORTAGE = "There is no Spot capacity available that matches your request."


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> Iterator[AutoScalingLaunches]:
    """A group, on moto with the local cloud's scaling activities (filtered and paged as AWS does)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    stand_in = AutoScalingLaunches()
    with mock_aws(), stand_in.installed():
        reset_clients()
        an_auto_scaling_group(
            client("autoscaling"), "pay-green", min_size=0, max_size=4, desired=0, zone="eu-west-1a"
        )
        yield stand_in
    reset_clients()


def _activity(at: datetime, status: str, message: str) -> dict[str, Any]:
    return {
        "ActivityId": message,
        "AutoScalingGroupName": "pay-green",
        "Cause": "a user request",
        "StartTime": at,
        "StatusCode": status,
        "StatusMessage": message,
        "Progress": 100,
    }


def test_a_failed_launch_before_the_release_asked_for_capacity_is_not_its_reason(
    launches: AutoScalingLaunches,
) -> None:
    # Given a Spot shortage of an earlier release, and since this release asked, launches that
    # succeeded and an image it cannot launch (newest first, as Auto Scaling lists them)
    launches.activities["pay-green"] = [
        _activity(SINCE + timedelta(seconds=30), "Successful", "Launching a new EC2 instance"),
        _activity(SINCE + timedelta(seconds=5), "Failed", "The image id '[ami-0bad]' does not exist"),
        _activity(SINCE - timedelta(hours=2), "Failed", SPOT_SHORTAGE),
    ]

    # When the release reads its color's capacity, and a read that asks for no failures
    capacity = AutoScaling().capacity("pay-green", SINCE)
    sized = AutoScaling().capacity("pay-green")

    # Then only this release's failure is its reason
    assert capacity.launch_failures == ("The image id '[ami-0bad]' does not exist",)
    assert capacity.max_size == 4
    assert sized.launch_failures == ()


def test_a_failed_launch_behind_a_page_of_launches_under_way_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Auto Scaling answering with a first page that holds none of the failures (it lists
    # activities in progress first, and "a response can contain fewer items than the value
    # specified by MaxRecords, even when more items are available"), then the Spot shortage
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    reset_clients()
    autoscaling = client("autoscaling")
    group = {
        "AutoScalingGroupName": "pay-green",
        "DesiredCapacity": 300,
        "MaxSize": 400,
        "MinSize": 0,
        "Instances": [],
        "DefaultCooldown": 300,
        "AvailabilityZones": ["eu-west-1a"],
        "HealthCheckType": "ELB",
        "CreatedTime": SINCE - timedelta(days=30),
    }
    with Stubber(autoscaling) as stub:
        stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [group]})
        asked = {
            "AutoScalingGroupName": "pay-green",
            "Filters": [
                {"Name": "Status", "Values": ["Failed", "Cancelled"]},
                {"Name": "StartTimeLowerBound", "Values": [(SINCE - timedelta(seconds=60)).isoformat()]},
            ],
        }
        stub.add_response("describe_scaling_activities", {"Activities": [], "NextToken": "page-2"}, asked)
        stub.add_response(
            "describe_scaling_activities",
            {"Activities": [_activity(SINCE + timedelta(minutes=5), "Failed", SPOT_SHORTAGE)]},
            {**asked, "NextToken": "page-2"},
        )

        # When the release reads its color's capacity
        capacity = AutoScaling().capacity("pay-green", SINCE)

    reset_clients()

    # Then the shortage is its reason
    assert capacity.launch_failures == (SPOT_SHORTAGE,)
    assert capacity.desired == 300 and capacity.healthy == 0


def test_the_local_clouds_scaling_activities_come_filtered_and_in_pages_of_at_most_100(
    launches: AutoScalingLaunches,
) -> None:
    # Given 150 failed launches since the release asked, then one success
    launches.activities["pay-green"] = [
        _activity(SINCE + timedelta(minutes=3), "Successful", "Launching a new EC2 instance")
    ] + [_activity(SINCE + timedelta(seconds=150 - n), "Failed", f"failure {n}") for n in range(150)]
    autoscaling = client("autoscaling")
    failed = [{"Name": "Status", "Values": ["Failed"]}]

    # When they are asked for, failures only, page by page
    first = autoscaling.describe_scaling_activities(AutoScalingGroupName="pay-green", Filters=failed)
    second = autoscaling.describe_scaling_activities(
        AutoScalingGroupName="pay-green", Filters=failed, NextToken=first["NextToken"]
    )

    # Then AWS's page size and filter hold, and what it refuses is refused
    assert [len(first["Activities"]), len(second["Activities"])] == [100, 50] and "NextToken" not in second
    assert {a["StatusCode"] for a in first["Activities"] + second["Activities"]} == {"Failed"}
    for refused in (
        {"MaxRecords": 101},
        {"Filters": [{"Name": "InstanceType", "Values": ["t3.micro"]}]},
        {"Filters": [{"Name": "StartTimeLowerBound", "Values": ["yesterday"]}]},
    ):
        with pytest.raises(ClientError) as error:
            autoscaling.describe_scaling_activities(AutoScalingGroupName="pay-green", **refused)
        assert error.value.response["Error"]["Code"] == "ValidationError"


def test_the_local_clouds_scaling_activities_refuse_a_bad_request_before_reading_any_activity(
    launches: AutoScalingLaunches,
) -> None:
    # Given a group without a scaling activity, and another group with one
    assert "pay-green" not in launches.activities
    launches.activities["pay-blue"] = [
        _activity(SINCE, "Failed", "failure") | {"AutoScalingGroupName": "pay-blue"}
    ]
    autoscaling = client("autoscaling")

    # When a request AWS refuses names the group with nothing to filter, or no group at all
    for group, refused, code in (
        (
            {"AutoScalingGroupName": "pay-green"},
            {"Filters": [{"Name": "InstanceType", "Values": ["t3"]}]},
            "ValidationError",
        ),
        (
            {"AutoScalingGroupName": "pay-green"},
            {"Filters": [{"Name": "StartTimeUpperBound", "Values": ["soon"]}]},
            "ValidationError",
        ),
        ({}, {"Filters": [{"Name": "Status", "Values": ["Failed"]}]}, "ValidationError"),
        ({"AutoScalingGroupName": "pay-blue"}, {"NextToken": "not-a-token"}, "InvalidNextToken"),
        ({"AutoScalingGroupName": "pay-blue"}, {"NextToken": "7"}, "InvalidNextToken"),
    ):
        with pytest.raises(ClientError) as error:
            autoscaling.describe_scaling_activities(**group, **refused)

        # Then it is refused with AWS's error code, as it would be with activities to read
        assert error.value.response["Error"]["Code"] == code

    # And without a group name the call reads every group's activities (account-wide)
    everything = autoscaling.describe_scaling_activities()["Activities"]
    assert [a["AutoScalingGroupName"] for a in everything] == ["pay-blue"]


def test_the_local_clouds_scaling_activity_filter_values_are_joined_with_or(
    launches: AutoScalingLaunches,
) -> None:
    # Given a failure at the release's request and one two minutes later
    launches.activities["pay-green"] = [
        _activity(SINCE + timedelta(minutes=2), "Failed", "later"),
        _activity(SINCE, "Failed", "at the request"),
    ]

    # When the lower bound is given two values, the later first
    bounds = [
        (SINCE + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        SINCE.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]
    found = client("autoscaling").describe_scaling_activities(
        AutoScalingGroupName="pay-green", Filters=[{"Name": "StartTimeLowerBound", "Values": bounds}]
    )["Activities"]

    # Then an activity matching either value is returned (botocore's Filter.Values: "logically
    # joined with an OR")
    assert [a["StatusMessage"] for a in found] == ["later", "at the request"]
