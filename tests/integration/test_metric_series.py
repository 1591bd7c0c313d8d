"""The metrics adapter reads per-interval series with GetMetricData (on moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from canaryfleet.adapters.clients import client, reset_clients
from canaryfleet.adapters.fleet import Metrics
from canaryfleet.errors import TransientAwsError
from canaryfleet.models.analysis import MetricQuery, MetricStatQuery
from canaryfleet.models.app_config import AppConfig, FleetGroup
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


def _results(*results: tuple[str, str, list[float]]) -> dict[str, object]:
    return {
        "MetricDataResults": [
            {
                "Id": qid,
                "Timestamps": [START + timedelta(minutes=i) for i in range(len(values))],
                "Values": values,
                "StatusCode": code,
            }
            for qid, code, values in results
        ]
    }


@pytest.mark.parametrize(
    "code", ["InternalError", "PartialData"], ids=["an internal error", "partial data with no next page"]
)
def test_a_result_cloudwatch_did_not_complete_is_an_error_to_retry_not_missing_intervals(
    cloudwatch: None, code: str
) -> None:
    # Given CloudWatch answers one query without all its data points and no NextToken to go on
    # (botocore cloudwatch, MetricDataResult.StatusCode): a math expression has no NextToken
    queries = {
        "m0cv": MetricQuery(metric=stat("Succeeded", "pay-canary")),
        "m0cr": MetricQuery(metric=stat("Attempts", "pay-canary")),
    }
    with Stubber(client("cloudwatch")) as stub:
        stub.add_response(
            "get_metric_data", _results(("m0cv", code, []), ("m0cr", "Complete", [100.0, 100.0, 100.0]))
        )
        # Then the read fails as transient (the state machine retries the analysis), naming the
        # query: read as they are, a canary's missing 5xx counts would be taken for none
        with pytest.raises(TransientAwsError, match=rf"m0cv \({code}\)"):
            Metrics().series(queries, START, START + timedelta(minutes=3), 60)


def test_partial_data_followed_by_its_next_page_is_complete(cloudwatch: None) -> None:
    queries = {"m0cr": MetricQuery(metric=stat("Attempts", "pay-canary"))}
    with Stubber(client("cloudwatch")) as stub:
        stub.add_response(
            "get_metric_data", {**_results(("m0cr", "PartialData", [100.0])), "NextToken": "page-2"}
        )
        later = _results(("m0cr", "Complete", [0.0, 100.0, 100.0]))
        later["MetricDataResults"][0]["Timestamps"] = [START + timedelta(minutes=i) for i in (1, 2)]  # type: ignore[index]
        later["MetricDataResults"][0]["Values"] = [100.0, 100.0]  # type: ignore[index]
        stub.add_response("get_metric_data", later)

        series = Metrics().series(queries, START, START + timedelta(minutes=3), 60)

    assert series["m0cr"] == {START + timedelta(minutes=i): 100.0 for i in range(3)}


def test_a_request_asks_for_no_more_data_points_than_getmetricdata_returns(cloudwatch: None) -> None:
    # Given a day of one-minute intervals (1,440, the most one analysis judges) and 80 expressions
    # of two inputs each: 240 queries, which one request would take, but 345,840 data points
    # (moto evaluates an expression that names one id: the other input is only asked for)
    queries = {
        f"m{i}cv": MetricQuery(
            expression="a", inputs={"a": stat("Succeeded", "pay-canary"), "b": stat("Attempts", "pay-canary")}
        )
        for i in range(80)
    }
    asked: list[int] = []
    real = client("cloudwatch").get_metric_data

    def counting(**request: object) -> object:
        asked.append(len(request["MetricDataQueries"]))  # type: ignore[arg-type]
        return real(**request)  # type: ignore[arg-type]

    client("cloudwatch").get_metric_data = counting  # type: ignore[method-assign]
    series = Metrics().series(queries, START, START + timedelta(days=1), 60)

    # Then each request asks for at most 100,800 (botocore cloudwatch, GetMetricData), inputs
    # counted, since an expression's result has no NextToken to page by; every query is answered
    assert max(asked) * 1_441 <= 100_800
    assert sum(asked) == 240
    assert set(series) == set(queries)
    assert series["m79cv"][START] == 90.0


def test_a_charts_errors_count_the_requests_the_load_balancer_answered_itself(cloud_alb: None) -> None:
    # Given a canary minute of 100 requests: 2 target 5xx, 75 answered 2xx and 3 4xx, so 20 the
    # load balancer answered itself (connections refused or reset: 502s)
    group, app = _pay_app()

    [sample] = Metrics().samples(app, group, ALB_MINUTE, ALB_MINUTE + timedelta(minutes=1))

    assert (sample.requests, sample.errors) == (100.0, 22.0)


ALB_MINUTE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)


_ALB_DIMENSIONS = [
    {"Name": "LoadBalancer", "Value": "app/front/1"},
    {"Name": "TargetGroup", "Value": "targetgroup/pay-canary/1"},
]


def _pay_app() -> tuple[FleetGroup, AppConfig]:
    """The canary group and the application whose load balancer metrics the tests publish."""
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    group = FleetGroup(
        deployment_group="pay-canary",
        target_group_arn=f"{arn}:targetgroup/pay-canary/1",
        auto_scaling_group="a",
    )
    live = group.model_copy(update={"target_group_arn": f"{arn}:targetgroup/pay-live/2"})
    app = AppConfig(
        application="pay",
        codedeploy_application="pay",
        listener_rule_arn=f"{arn}:listener-rule/app/front/1/2/3",
        canary=group,
        live=live,
    )
    return group, app


def test_a_chart_sample_of_one_minute_data_stands_for_a_minute_even_with_minutes_missing() -> None:
    # Given a quiet canary: one-minute load balancer datapoints (what AWS publishes) at minutes 0,
    # 2 and 4 of a five-minute window, none in the minutes between (no request, no datapoint)
    group, app = _pay_app()
    with mock_aws():
        reset_clients()
        boto3.client("cloudwatch").put_metric_data(
            Namespace="AWS/ApplicationELB",
            MetricData=[
                {"MetricName": "RequestCount", "Dimensions": _ALB_DIMENSIONS, "Timestamp": at, "Value": 10.0}
                for at in (ALB_MINUTE, ALB_MINUTE + timedelta(minutes=2), ALB_MINUTE + timedelta(minutes=4))
            ],
        )

        # When the chart's samples are read for the window (a period under a minute asked for)
        samples = Metrics().samples(app, group, ALB_MINUTE, ALB_MINUTE + timedelta(minutes=5))
    reset_clients()

    # Then each stands for its minute, not for the two minutes between datapoints
    assert [(s.at, s.seconds) for s in samples] == [
        (ALB_MINUTE + timedelta(minutes=m), 60) for m in (0, 2, 4)
    ]


@pytest.fixture
def cloud_alb() -> Iterator[None]:
    with mock_aws():
        reset_clients()
        dims = _ALB_DIMENSIONS
        boto3.client("cloudwatch").put_metric_data(
            Namespace="AWS/ApplicationELB",
            MetricData=[
                {"MetricName": name, "Dimensions": dims, "Timestamp": ALB_MINUTE, "Value": value}
                for name, value in (
                    ("RequestCount", 100.0),
                    ("HTTPCode_Target_5XX_Count", 2.0),
                    ("HTTPCode_Target_2XX_Count", 75.0),
                    ("HTTPCode_Target_4XX_Count", 3.0),
                    ("TargetResponseTime", 0.1),
                )
            ],
        )
        yield
    reset_clients()
