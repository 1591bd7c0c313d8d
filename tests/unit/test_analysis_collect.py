"""What the analyse step judges: each metric's per-interval samples of both sides, from CloudWatch series."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from canaryfleet.logic.analysis.collect import collect, intervals
from canaryfleet.logic.analysis.judge import judge
from canaryfleet.models.analysis import MAX_INTERVALS, MetricQuery, MetricStatQuery
from canaryfleet.models.app_config import AppConfig, FleetGroup
from canaryfleet.models.policy import AnalysisSpec
from pydantic import ValidationError

ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012"
START = datetime(2026, 12, 2, 12, 0, 30, tzinfo=UTC)


def app() -> AppConfig:
    def group(side: str, number: int) -> FleetGroup:
        return FleetGroup(
            deployment_group=f"pay-{side}",
            target_group_arn=f"{ARN}:targetgroup/pay-{side}/{number}",
            auto_scaling_group=f"pay-{side}-asg",
        )

    return AppConfig(
        application="pay",
        codedeploy_application="pay",
        listener_rule_arn=f"{ARN}:listener-rule/app/front/1/2/3",
        canary=group("canary", 1),
        live=group("live", 2),
    )


class SeriesByDimension:
    """CloudWatch as a table: (metric name, a dimension value) -> value at each interval start."""

    def __init__(self, table: dict[tuple[str, str], dict[datetime, float]]) -> None:
        self.table = table
        self.asked: list[tuple[dict[str, MetricQuery], datetime, datetime, int]] = []

    @staticmethod
    def key(metric: MetricStatQuery) -> str:
        return next(iter(sorted(metric.dimensions.values())), "")

    def series(
        self, queries: Mapping[str, MetricQuery], start: datetime, end: datetime, period_seconds: int
    ) -> dict[str, dict[datetime, float]]:
        self.asked.append((dict(queries), start, end, period_seconds))
        found = {}
        for qid, query in queries.items():
            assert query.metric is not None
            found[qid] = self.table.get((query.metric.metric_name, self.key(query.metric)), {})
        return found

    def alarms_in_alarm(self, names: tuple[str, ...]) -> list[dict[str, str]]:
        return []


def minutes(*values: float | None) -> dict[datetime, float]:
    first = START.replace(second=0)
    return {first + timedelta(minutes=i): v for i, v in enumerate(values) if v is not None}


def test_intervals_cover_the_window_on_period_boundaries() -> None:
    grid = intervals(START, START + timedelta(minutes=3), 60)
    assert grid[0] == START.replace(second=0) and len(grid) == 4
    assert intervals(START, START, 60) == []
    assert len(intervals(START.replace(second=0), START.replace(second=0) + timedelta(minutes=3), 60)) == 3


def test_the_load_balancer_metrics_are_read_per_side_and_a_missing_5xx_count_is_zero() -> None:
    # Given requests, 5xx and latency of both target groups; no 5xx datapoint in canary's 2nd minute
    lb = "app/front/1"
    metrics = SeriesByDimension(
        {
            ("RequestCount", lb): minutes(300, 300, 300),  # dimensions sort LoadBalancer first
            ("HTTPCode_Target_5XX_Count", lb): minutes(3, None, 6),
            ("HTTPCode_Target_2XX_Count", lb): minutes(297, 300, 294),
            ("TargetResponseTime", lb): minutes(0.08, 0.09, None),
        }
    )
    # When collected over three minutes
    samples, grid = collect(app(), AnalysisSpec(), metrics, START, START + timedelta(minutes=2, seconds=30))
    # Then the 5xx rate is a ratio with the counts, and latency keeps its missing interval
    rate, latency = samples.metrics
    assert (rate.name, rate.critical, rate.min_count) == ("5xx rate", True, 100)
    assert rate.canary == (0.01, 0.0, 0.02) and rate.canary_counts == (300, 300, 300)
    assert latency.canary == (0.08, 0.09, None) and latency.canary_counts is None
    assert len(grid) == 3
    queries, start, end, period = metrics.asked[0]
    assert (start, end - start, period) == (grid[0], timedelta(minutes=3), 60)
    canary_requests = queries["m0cr"].metric
    assert canary_requests is not None
    assert canary_requests.dimensions == {"LoadBalancer": lb, "TargetGroup": "targetgroup/pay-canary/1"}
    assert queries["m0lr"].metric is not None
    assert queries["m0lr"].metric.dimensions["TargetGroup"] == "targetgroup/pay-live/2"


class SeriesByTargetGroup(SeriesByDimension):
    """CloudWatch's load balancer metrics by (metric name, target group)."""

    @staticmethod
    def key(metric: MetricStatQuery) -> str:
        return metric.dimensions["TargetGroup"]


def test_requests_the_load_balancer_answered_for_the_canary_count_as_failed() -> None:
    # Given a canary that resets or leaves unanswered a third of its requests (crashing workers, a
    # hang past the idle timeout): the load balancer answers them 502 or 504 itself, which no
    # target group metric of their own counts, but the group's RequestCount does
    canary, live = "targetgroup/pay-canary/1", "targetgroup/pay-live/2"
    metrics = SeriesByTargetGroup(
        {
            ("RequestCount", canary): minutes(300, 300, 300),
            ("HTTPCode_Target_2XX_Count", canary): minutes(200, 200, 200),
            ("HTTPCode_Target_5XX_Count", canary): minutes(1, None, None),
            ("HTTPCode_Target_4XX_Count", canary): minutes(None, 10, None),
            ("RequestCount", live): minutes(900, 900, 900),
            ("HTTPCode_Target_2XX_Count", live): minutes(880, 890, 870),
            ("HTTPCode_Target_3XX_Count", live): minutes(19, 10, 28),
            ("HTTPCode_Target_5XX_Count", live): minutes(1, None, 2),
        }
    )

    samples, _ = collect(app(), AnalysisSpec(), metrics, START, START + timedelta(minutes=2, seconds=30))

    # Then the canary's failed requests are those its targets did not answer 2xx to 4xx (its own
    # 5xx among them, counted once); live's its own
    rate = samples.metrics[0]
    assert rate.canary == pytest.approx((1 / 3, 90 / 300, 1 / 3))
    assert rate.live == pytest.approx((1 / 900, 0.0, 2 / 900))
    queries = metrics.asked[0][0]
    answered = queries["m0ca0"].metric
    assert answered is not None and answered.metric_name == "HTTPCode_Target_2XX_Count"
    assert answered.dimensions["TargetGroup"] == canary
    # And the analysis fails the build, which counting target 5xx alone would have passed
    verdict = judge(samples)
    assert verdict.result == "fail"


def test_a_policy_metric_has_its_dimensions_filled_in_for_each_side() -> None:
    spec = AnalysisSpec.model_validate(
        {
            "alb_metrics": [],
            "metrics": [
                {
                    "name": "payment success",
                    "direction": "decrease",
                    "critical": True,
                    "value": {
                        "metric": {
                            "namespace": "Pay",
                            "metric_name": "Succeeded",
                            "dimensions": {"AutoScalingGroupName": "{auto_scaling_group}"},
                            "stat": "Sum",
                        }
                    },
                    "requests": {
                        "metric": {
                            "namespace": "Pay",
                            "metric_name": "Attempts",
                            "dimensions": {"AutoScalingGroupName": "{auto_scaling_group}"},
                            "stat": "Sum",
                        }
                    },
                }
            ],
        }
    )
    metrics = SeriesByDimension(
        {
            ("Succeeded", "pay-canary-asg"): minutes(90, 90),
            ("Attempts", "pay-canary-asg"): minutes(100, 100),
            ("Succeeded", "pay-live-asg"): minutes(970, 970),
            ("Attempts", "pay-live-asg"): minutes(1000, 1000),
        }
    )
    samples, _ = collect(app(), spec, metrics, START, START + timedelta(minutes=1))
    [payments] = samples.metrics
    assert payments.canary == (0.9, 0.9) and payments.live == (0.97, 0.97)
    assert (payments.direction, payments.critical) == ("decrease", True)


def test_no_interval_in_the_window_asks_cloudwatch_nothing() -> None:
    metrics = SeriesByDimension({})
    samples, grid = collect(app(), AnalysisSpec(), metrics, START, START)
    assert grid == [] and metrics.asked == []
    assert all(m.canary == () for m in samples.metrics)


def test_a_window_of_more_intervals_than_one_analysis_judges_is_judged_on_its_latest() -> None:
    # Given a day's bake at one-minute intervals, analysed a few minutes late: 1,440 and more
    start, end = START, START + timedelta(days=1, minutes=3)
    metrics = SeriesByDimension({})

    # When its samples are collected
    samples, grid = collect(app(), AnalysisSpec(), metrics, start, end)

    # Then the latest 1,440 minutes are judged, and CloudWatch is asked for them alone
    assert len(grid) == MAX_INTERVALS and grid[-1] == end.replace(second=0)
    assert all(len(m.canary) == MAX_INTERVALS for m in samples.metrics)
    [(_, asked_from, asked_to, _)] = metrics.asked
    assert (asked_from, asked_to) == (grid[0], grid[-1] + timedelta(minutes=1))


@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        ({"interval_seconds": 45}, "1, 5, 10, 20, 30 or a multiple of 60"),
        ({"alb_metrics": [], "metrics": []}, "at least one metric"),
        ({"metrics": [{"name": "latency", "value": {"expression": "a", "inputs": {"a": {}}}}]}, "namespace"),
        (
            {
                "metrics": [
                    {
                        "name": "x",
                        "value": {
                            "metric": {"namespace": "N", "metric_name": "M", "dimensions": {"D": "{host}"}}
                        },
                    }
                ]
            },
            "unknown placeholder",
        ),
        *(
            # What CloudWatch refuses at the bake and the analysis is refused at the upload.
            (
                {"metrics": [{"name": "x", "value": {"metric": {"metric_name": "M", **metric}}}]},
                message,
            )
            for metric, message in (
                (
                    {"namespace": "N", "dimensions": {"Environment": ""}},
                    "dimension Environment: must be 1 to",
                ),
                ({"namespace": "N", "dimensions": {"Environment": "   "}}, "not a space"),
                ({"namespace": "N", "dimensions": {"": "prod"}}, "a dimension name: must be 1 to"),
                ({"namespace": "N", "dimensions": {"D" * 256: "prod"}}, "1 to 255 characters"),
                ({"namespace": "N", "dimensions": {"Environment": "p" * 1025}}, "1 to 1024 characters"),
                ({"namespace": "N", "dimensions": {"Région": "eu"}}, "printable ASCII"),
                ({"namespace": "N", "dimensions": {"Environment": "prod\n"}}, "printable ASCII"),
                ({"namespace": "N", "dimensions": {":aws": "x"}}, "reserved for AWS"),
                ({"namespace": ":N"}, "namespace: must not start with ':'"),
            )
        ),
        ({"metrics": [{"name": "x", "value": {"expression": "a + b"}}]}, "needs the metrics it names"),
        (
            {
                "metrics": [
                    {
                        "name": "x",
                        "value": {
                            "expression": "a",
                            "inputs": {"a\n": {"namespace": "N", "metric_name": "M"}},
                        },
                    }
                ]
            },
            "input ids must be a lower-case letter",
        ),
        ({"metrics": [{"name": "x", "value": {}}]}, "either metric or expression"),
        (
            {
                "metrics": [
                    {"name": "x", "value": {"metric": {"namespace": "N", "metric_name": "M", "stat": "Mean"}}}
                ]
            },
            "stat",
        ),
    ],
)
def test_a_policy_with_bad_metrics_is_refused_with_a_reason(analysis: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AnalysisSpec.model_validate(analysis)


def test_a_policy_metric_may_not_take_a_built_in_name() -> None:
    metric = {"name": "latency", "value": {"metric": {"namespace": "N", "metric_name": "M"}}}
    with pytest.raises(ValidationError, match="not a built-in's: latency"):
        AnalysisSpec.model_validate({"metrics": [metric]})
