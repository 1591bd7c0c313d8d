"""CloudWatch evaluating the fail-fast metric-math alarms on the local cloud (moto and the stand-in)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters.fleet import Metrics
from canaryfleet.logic.analysis.failfast import critical_alarms
from canaryfleet.models.analysis import MetricDefinition, MetricQuery, MetricStatQuery
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.fail_fast import alarm_prefix
from canaryfleet.models.policy import AnalysisSpec
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from canaryfleet_local.standins import cloudwatch_metric_math
from canaryfleet_local.standins.cloudwatch_metric_math import (
    CloudWatchMetricMathAlarms,
    evaluate,
    parse_expression,
)
from tests.unit.fakes import an_app

APP = "hello-app"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
# A period boundary (10-second periods), and a moment just after it: the periods before it have ended.
BOUNDARY = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
NOW = BOUNDARY + timedelta(seconds=0.5)
NAME = "canaryfleet-hello-app.payment-success"


def _app() -> AppConfig:
    return an_app(APP, region="us-east-1")


def _stat(name: str) -> MetricQuery:
    return MetricQuery(
        metric=MetricStatQuery(
            namespace="HelloApp",
            metric_name=name,
            dimensions={"AutoScalingGroupName": "{auto_scaling_group}"},
            stat="Sum",
        )
    )


SPEC = AnalysisSpec(
    interval_seconds=1,
    alb_metrics=(),
    metrics=(
        MetricDefinition(
            name="payment success",
            value=_stat("PaymentsSucceeded"),
            requests=_stat("Requests"),
            direction="decrease",
            critical=True,
        ),
    ),
)


@pytest.fixture
def alarms(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[CloudWatchMetricMathAlarms, list[dict[str, Any]]]]:
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(
        cloudwatch_metric_math, "emit_service_event", lambda _a, _r, event: events.append(event)
    )
    with mock_aws():  # (the runtime's cached clients end with each test: tests/conftest.py)
        region = boto3.client("cloudwatch").meta.region_name
        stand_in = CloudWatchMetricMathAlarms(DEFAULT_ACCOUNT_ID, region)
        with stand_in.installed():
            yield stand_in, events


def _publish(period_start: datetime, canary_share: float, live_share: float = 0.97) -> None:
    """One 10-second period of traffic: 5000 canary requests and 45000 live ones."""
    data = []
    for group, requests, share in (
        (f"{APP}-canary", 5000.0, canary_share),
        (f"{APP}-live", 45000.0, live_share),
    ):
        dims = [{"Name": "AutoScalingGroupName", "Value": group}]
        at = period_start + timedelta(seconds=3)
        data += [
            {"MetricName": "Requests", "Dimensions": dims, "Value": requests, "Timestamp": at},
            {
                "MetricName": "PaymentsSucceeded",
                "Dimensions": dims,
                "Value": requests * share,
                "Timestamp": at,
            },
        ]
    boto3.client("cloudwatch").put_metric_data(Namespace="HelloApp", MetricData=data)


def _put_the_alarm() -> None:
    [alarm], _ = critical_alarms(_app(), SPEC)
    Metrics().put_alarm(alarm)


def _state(name: str = NAME) -> str:
    return str(boto3.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


def test_a_canary_worse_for_two_periods_running_puts_the_alarm_in_alarm_with_the_documented_event(
    alarms: tuple[CloudWatchMetricMathAlarms, list[dict[str, Any]]],
) -> None:
    stand_in, events = alarms
    _publish(BOUNDARY - timedelta(seconds=20), canary_share=0.90)
    _publish(BOUNDARY - timedelta(seconds=10), canary_share=0.90)
    _put_the_alarm()
    assert _state() == "INSUFFICIENT_DATA"  # a new alarm's state

    stand_in.evaluate(NOW)

    assert _state() == "ALARM"
    [event] = events
    assert (event["source"], event["detail-type"]) == ("aws.cloudwatch", "CloudWatch Alarm State Change")
    detail = event["detail"]
    assert detail["alarmName"] == NAME and detail["configuration"]["description"] == "payment success"
    assert detail["state"]["value"] == "ALARM" and detail["previousState"]["value"] == "INSUFFICIENT_DATA"
    assert detail["state"]["reason"].startswith("Threshold Crossed: 2 out of the last 2 datapoints")
    assert detail["state"]["timestamp"].endswith("+0000")


def test_one_bad_period_of_two_is_not_enough(
    alarms: tuple[CloudWatchMetricMathAlarms, list[dict[str, Any]]],
) -> None:
    stand_in, events = alarms
    _publish(BOUNDARY - timedelta(seconds=20), canary_share=0.97)
    _publish(BOUNDARY - timedelta(seconds=10), canary_share=0.90)
    _put_the_alarm()

    stand_in.evaluate(NOW)

    assert _state() == "OK"
    assert [e["detail"]["state"]["value"] for e in events] == ["OK"]


def test_a_period_still_running_is_not_judged_and_a_period_is_judged_once(
    alarms: tuple[CloudWatchMetricMathAlarms, list[dict[str, Any]]],
) -> None:
    stand_in, events = alarms
    _publish(BOUNDARY - timedelta(seconds=10), canary_share=0.97)
    _publish(BOUNDARY, canary_share=0.50)  # the period that runs now
    _put_the_alarm()

    stand_in.evaluate(NOW)
    stand_in.evaluate(NOW + timedelta(seconds=5))

    assert _state() == "OK" and len(events) == 1


def test_a_deleted_alarm_is_no_longer_evaluated_and_deleting_it_again_is_fine(
    alarms: tuple[CloudWatchMetricMathAlarms, list[dict[str, Any]]],
) -> None:
    stand_in, events = alarms
    _publish(BOUNDARY - timedelta(seconds=20), canary_share=0.90)
    _publish(BOUNDARY - timedelta(seconds=10), canary_share=0.90)
    _put_the_alarm()

    assert Metrics().delete_alarms(alarm_prefix(APP)) == [NAME]
    assert Metrics().delete_alarms(alarm_prefix(APP)) == []
    stand_in.evaluate(NOW)

    assert events == []


def _request(**changes: Any) -> dict[str, Any]:
    [alarm], _ = critical_alarms(_app(), SPEC)
    request = alarm.put_request()
    request.update(changes)
    return request


def _metric_stat(qid: str, period: int = 10) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {"Namespace": "HelloApp", "MetricName": "Requests"},
            "Period": period,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {
                "Metrics": [
                    *(_metric_stat(f"m{i}") for i in range(11)),
                    {"Id": "e", "Expression": "m0", "ReturnData": True},
                ]
            },
            "up to 10 with MetricStat",
        ),
        (
            {"Metrics": [_metric_stat("a", period=15), {"Id": "e", "Expression": "a", "ReturnData": True}]},
            "Period",
        ),
        ({"DatapointsToAlarm": 3, "EvaluationPeriods": 2}, "DatapointsToAlarm"),
        ({"Metrics": [_metric_stat("a"), {"Id": "e", "Expression": "a", "ReturnData": False}]}, "ReturnData"),
        ({"Metrics": [_metric_stat("A"), {"Id": "e", "Expression": "A", "ReturnData": True}]}, "Invalid Id"),
        (  # a whole Id: Python's $ alone would take one ending in a newline
            {"Metrics": [_metric_stat("a\n"), {"Id": "e", "Expression": "a", "ReturnData": True}]},
            "Invalid Id",
        ),
        ({"EvaluationPeriods": 8641, "DatapointsToAlarm": 1}, "86,400"),
        (
            {
                "Metrics": [
                    _metric_stat("a", period=3600),
                    {"Id": "e", "Expression": "a", "ReturnData": True},
                ],
                "EvaluationPeriods": 169,
                "DatapointsToAlarm": 1,
            },
            "604,800",
        ),
    ],
)
def test_put_metric_alarm_refuses_what_cloudwatch_refuses(
    alarms: tuple[CloudWatchMetricMathAlarms, list[dict[str, Any]]], changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as refused:
        boto3.client("cloudwatch").put_metric_alarm(**_request(**changes))

    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert message in refused.value.response["Error"]["Message"]
    assert boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix="canaryfleet-")["MetricAlarms"] == []


def test_put_metric_alarm_takes_seven_days_of_hourly_periods_as_cloudwatch_does(
    alarms: tuple[CloudWatchMetricMathAlarms, list[dict[str, Any]]],
) -> None:
    # An hour or longer: up to 604,800 seconds in all; shorter periods stop at a day (86,400 s).
    metrics = [_metric_stat("a", period=3600), {"Id": "e", "Expression": "a", "ReturnData": True}]

    boto3.client("cloudwatch").put_metric_alarm(**_request(Metrics=metrics, EvaluationPeriods=168))

    [alarm] = boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix="canaryfleet-")["MetricAlarms"]
    assert alarm["EvaluationPeriods"] == 168


@pytest.mark.parametrize(
    ("expression", "value"),
    [("2 ^ 3", 8.0), ("16 ^ 0.5", 4.0), ("2 * 3 ^ 2", 18.0), ("(0 - 4) ^ 0.5", None)],
)
def test_the_power_operator_reads_as_metric_math_writes_it(expression: str, value: float | None) -> None:
    assert evaluate(parse_expression(expression), {}) == value


def test_the_local_cloud_refuses_an_expression_it_cannot_evaluate_rather_than_guess(
    alarms: tuple[CloudWatchMetricMathAlarms, list[dict[str, Any]]],
) -> None:
    for function in ("RUNNING_SUM", "SQRT"):  # SQRT: not a metric math function at all
        metrics = [_metric_stat("a"), {"Id": "e", "Expression": f"{function}(a)", "ReturnData": True}]

        with pytest.raises(ClientError) as refused:
            boto3.client("cloudwatch").put_metric_alarm(**_request(Metrics=metrics))

        assert (
            f"the local cloud cannot evaluate e: function {function}"
            in refused.value.response["Error"]["Message"]
        )
