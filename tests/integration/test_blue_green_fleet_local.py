"""A blue/green fleet stack on the local cloud, and the Auto Scaling launches it relies on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from canaryfleet.adapters.fleet import AutoScaling
from canaryfleet.models.app_config import GroupCapacity

from canaryfleet_local.standins.autoscaling_launches import SPOT_SHORTAGE_MESSAGE
from tests.integration.helpers import DeployedFleet, deployed_fleet

# Each color's capacity as the stack left it, before any test of the module scaled it.
_AT_DEPLOY: dict[str, GroupCapacity] = {}


@pytest.fixture(scope="module")
def fleet() -> Iterator[DeployedFleet]:
    with deployed_fleet("hello-app", {"Strategy": "blue_green", "LiveMinSize": "2"}) as deployed:
        for group in (deployed.config.live.auto_scaling_group, deployed.config.canary.auto_scaling_group):
            _AT_DEPLOY[group] = AutoScaling().capacity(group)
        yield deployed


def test_the_registry_entry_says_blue_green_and_both_colors_start_empty(fleet: DeployedFleet) -> None:
    app = fleet.config

    blue, green = _AT_DEPLOY[app.live.auto_scaling_group], _AT_DEPLOY[app.canary.auto_scaling_group]

    assert (app.strategy, app.scale_down_delay_seconds, app.capacity_timeout_seconds) == (
        "blue_green",
        1800,
        600,
    )
    assert app.color_capacity == 2, "the stack's LiveMinSize"
    assert (blue.desired, blue.instances, green.desired, green.instances) == (0, 0, 0, 0)
    assert app.live.alarms[0] == "hello-app-blue-5xx-rate"


def test_a_scale_out_fills_the_whole_desired_capacity_on_demand_and_spot_alike(fleet: DeployedFleet) -> None:
    group = fleet.config.canary.auto_scaling_group

    AutoScaling().set_desired(group, 3)  # 50% On-Demand: moto alone launches 2 of 3
    capacity = AutoScaling().capacity(group)

    assert (capacity.desired, capacity.instances, capacity.healthy, capacity.launch_failures) == (3, 3, 3, ())


def test_short_spot_capacity_launches_the_on_demand_share_and_records_why_the_rest_failed(
    fleet: DeployedFleet,
) -> None:
    group = fleet.config.live.auto_scaling_group
    AutoScaling().set_desired(group, 2)  # two On-Demand instances first: the next two are Spot
    fleet.cloud.fleet_operations.launches.spot_available[group] = 0

    since = datetime.now(UTC)
    AutoScaling().set_desired(group, 4)
    capacity = AutoScaling().capacity(group, since)
    activities = fleet.cloud.client("autoscaling").describe_scaling_activities(AutoScalingGroupName=group)

    assert (capacity.desired, capacity.healthy) == (4, 2)
    assert capacity.launch_failures[0] == SPOT_SHORTAGE_MESSAGE
    assert activities["Activities"][0]["StatusCode"] == "Failed"
