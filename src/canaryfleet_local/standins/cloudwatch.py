"""CloudWatch: the load balancer's metrics, and alarms from templates."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Self
from unittest import mock

from moto.cloudwatch.models import CloudWatchBackend, Dimension, cloudwatch_backends
from moto.core.common_models import CloudFormationModel

from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.cloudformation import CloudFormationStandIn, cfn_bool


def publish_alb_metrics(account_id: str, region: str, metric_data: list[dict[str, Any]]) -> None:
    """Stands in for the ALB publishing its AWS/ApplicationELB metrics.

    Nobody but AWS may put data in an ``AWS/`` namespace, so this writes to moto's
    CloudWatch backend directly, as the load balancer would.
    """
    # moto keeps metric timestamps as naive UTC, as its API parses them.
    data = [
        {**datum, "Timestamp": datum["Timestamp"].astimezone(UTC).replace(tzinfo=None)}
        if isinstance(datum.get("Timestamp"), datetime)
        else datum
        for datum in metric_data
    ]
    cloudwatch_backends[account_id][region].put_metric_data("AWS/ApplicationELB", data)


_ALARM_INTEGERS = ("EvaluationPeriods", "DatapointsToAlarm", "Period")
_ALARM_PASSED_AS_IS = (
    "AlarmDescription",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "ComparisonOperator",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Unit",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "ThresholdMetricId",
    "Tags",
)


class CloudFormationCloudWatchAlarm(CloudFormationStandIn, CloudFormationModel):
    """Stands in for the ``AWS::CloudWatch::Alarm`` resource, which moto's CloudFormation lacks.

    The alarm is created with moto's ``PutMetricAlarm`` (metric math included), numbers and
    booleans converted from their template form. Ref: the alarm's name.
    """

    RESOURCE_TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    ATTRIBUTES = ("Arn",)
    ON_UPDATE = "replaced when renamed"  # PutMetricAlarm rewrites an alarm of the same name

    @staticmethod
    def _request(name: str, props: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {"AlarmName": name}
        request.update({key: props[key] for key in _ALARM_PASSED_AS_IS if key in props})
        request.update({key: int(props[key]) for key in _ALARM_INTEGERS if key in props})
        if "Threshold" in props:
            request["Threshold"] = float(props["Threshold"])
        if "ActionsEnabled" in props:
            request["ActionsEnabled"] = cfn_bool(props["ActionsEnabled"])
        if "Metrics" in props:
            metrics = []
            for query in props["Metrics"]:
                metric = {**query}
                if "ReturnData" in metric:
                    metric["ReturnData"] = cfn_bool(metric["ReturnData"])
                if "Period" in metric:
                    metric["Period"] = int(metric["Period"])
                if "MetricStat" in metric:
                    metric["MetricStat"] = {
                        **metric["MetricStat"],
                        "Period": int(metric["MetricStat"]["Period"]),
                    }
                metrics.append(metric)
            request["Metrics"] = metrics
        return request

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        client = shared_client("cloudwatch", region)
        client.put_metric_alarm(**cls._request(name, props))
        arn = client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
        return cls(name, {"Arn": arn})

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        shared_client("cloudwatch", region).delete_alarms(AlarmNames=[physical_id])


@contextlib.contextmanager
def get_metric_data_reads_the_queried_metrics() -> Iterator[None]:
    """Not an AWS behaviour: moto's GetMetricData looks only at the datapoints its queries can use.

    moto compares every datapoint of the account with every period of every query: with 50
    applications publishing several times a second, the analyses spent a tenth of the local
    cloud's time there. Each call now hands moto's own code only the datapoints that one of its
    metric queries matches, by moto's own rule (name and dimensions, or namespace and name
    without dimensions), so every result is the one moto computes. Calls with a Metrics
    Insights query (``SELECT``) see every datapoint, as before.
    """
    subset = threading.local()
    everything = CloudWatchBackend.get_all_metrics
    original = CloudWatchBackend.get_metric_data

    def get_all_metrics(backend: CloudWatchBackend) -> Any:
        chosen = getattr(subset, "metrics", None)
        return chosen if chosen is not None else everything(backend)

    def get_metric_data(
        backend: CloudWatchBackend, queries: list[dict[str, Any]], *args: Any, **kwargs: Any
    ) -> Any:
        if any(str(q.get("Expression", "")).startswith("SELECT") for q in queries):
            return original(backend, queries, *args, **kwargs)
        wanted = [_matcher(q["MetricStat"]["Metric"]) for q in queries if "MetricStat" in q]
        subset.metrics = [datum for datum in everything(backend) if any(match(datum) for match in wanted)]
        try:
            return original(backend, queries, *args, **kwargs)
        finally:
            subset.metrics = None

    with (
        mock.patch.object(CloudWatchBackend, "get_all_metrics", get_all_metrics),
        mock.patch.object(CloudWatchBackend, "get_metric_data", get_metric_data),
    ):
        yield


def _matcher(metric: dict[str, Any]) -> Any:
    """moto's test of a datapoint against a query's metric (``CloudWatchBackend.get_metric_data``)."""
    name = metric["MetricName"]
    dimensions = sorted(Dimension(name=d["Name"], value=d["Value"]) for d in metric.get("Dimensions", []))
    if dimensions:
        return lambda datum: datum.name == name and sorted(datum.dimensions) == dimensions
    namespace = metric["Namespace"]
    return lambda datum: datum.namespace == namespace and datum.name == name
