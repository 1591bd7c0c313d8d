"""The metrics adapter reads per-interval series with GetMetricData (on moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from canaryfleet.adapters.clients import reset_clients
from canaryfleet.adapters.fleet import Metrics
from canaryfleet.models.analysis import MetricQuery, MetricStatQuery
from moto import mock_aws

START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def cloudwatch() -> Iterator[None]:
    with mock_aws():
        reset_clients()
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group}],
                "Timestamp": START + timedelta(minutes=minute, seconds=second),
                "Value": requests * share * factor,
            }
            for group, factor in (("pay-canary", 1.0), ("pay-live", 10.0))
            for minute in range(3)
            for second, requests in ((5, 40.0), (35, 60.0))
            for name, share in (("Attempts", 1.0), ("Succeeded", 0.9))
            if minute != 1 or group != "pay-canary" or name != "Succeeded"  # a minute with no datapoint
        ]
        boto3.client("cloudwatch").put_metric_data(Namespace="Pay", MetricData=data)
        yield
    reset_clients()


def stat(name: str, group: str) -> MetricStatQuery:
    return MetricStatQuery(
        namespace="Pay", metric_name=name, dimensions={"AutoScalingGroupName": group}, stat="Sum"
    )


def test_each_query_gets_its_value_per_interval_and_a_missing_one_is_absent(cloudwatch: None) -> None:
    queries = {
        "m0cv": MetricQuery(metric=stat("Succeeded", "pay-canary")),
        "m0cr": MetricQuery(metric=stat("Attempts", "pay-canary")),
        "m0lr": MetricQuery(metric=stat("Attempts", "pay-live")),
    }
    series = Metrics().series(queries, START, START + timedelta(minutes=3), 60)
    minute = [START + timedelta(minutes=i) for i in range(3)]
    assert series["m0cr"] == dict.fromkeys(minute, 100.0)
    assert series["m0lr"] == dict.fromkeys(minute, 1000.0)
    assert series["m0cv"] == {minute[0]: 90.0, minute[2]: 90.0}


def test_an_expressions_inputs_get_ids_of_their_own(cloudwatch: None) -> None:
    # Given two expressions whose inputs share the id "a" (moto evaluates an expression naming one id)
    queries = {
        "m0cv": MetricQuery(expression="a", inputs={"a": stat("Succeeded", "pay-live")}),
        "m1cv": MetricQuery(expression="a", inputs={"a": stat("Attempts", "pay-live")}),
    }
    series = Metrics().series(queries, START, START + timedelta(minutes=3), 60)
    # Then each expression reads its own input, and only the expressions are returned
    assert set(series) == {"m0cv", "m1cv"}
    assert set(series["m0cv"].values()) == {900.0}
    assert set(series["m1cv"].values()) == {1000.0}


def test_an_empty_window_asks_nothing(cloudwatch: None) -> None:
    queries = {"m0cv": MetricQuery(metric=stat("Succeeded", "pay-live"))}
    assert Metrics().series(queries, START, START, 60) == {"m0cv": {}}
