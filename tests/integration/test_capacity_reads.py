"""A color's capacity, read from Auto Scaling: the launch failures are the release's own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from canaryfleet.adapters.clients import client, reset_clients
from canaryfleet.adapters.fleet import AutoScaling
from moto import mock_aws

from tests.integration.helpers import an_auto_scaling_group

SINCE = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def autoscaling(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        reset_clients()
        made = client("autoscaling")
        an_auto_scaling_group(made, "pay-green", min_size=0, max_size=4, desired=0, zone="eu-west-1a")
        yield made
    reset_clients()


def _failed(at: datetime, message: str) -> dict[str, Any]:
    return {
        "ActivityId": message,
        "AutoScalingGroupName": "pay-green",
        "Cause": "a user request",
        "StartTime": at,
        "StatusCode": "Failed",
        "StatusMessage": message,
        "Progress": 100,
    }


def test_a_failed_launch_before_the_release_asked_for_capacity_is_not_its_reason(autoscaling: Any) -> None:
    # Given a Spot shortage of an earlier release, and an image this release cannot launch
    activities = [
        _failed(SINCE + timedelta(seconds=5), "The image id '[ami-0bad]' does not exist"),
        _failed(SINCE - timedelta(hours=2), "There is no Spot capacity available that matches your request."),
    ]
    with mock.patch.object(
        autoscaling, "describe_scaling_activities", return_value={"Activities": activities}
    ):
        # When the release reads its color's capacity
        capacity = AutoScaling().capacity("pay-green", SINCE)
        everything = AutoScaling().capacity("pay-green")

    # Then only this release's failure is its reason
    assert capacity.launch_failures == ("The image id '[ami-0bad]' does not exist",)
    assert capacity.max_size == 4
    assert len(everything.launch_failures) == 2
