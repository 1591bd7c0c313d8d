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


class _MetricIndex:
    """The positions of a backend's datapoints (``metric_data``, which moto only appends to) by
    metric name and by name and dimensions, brought up to date at each call."""

    def __init__(self) -> None:
        self.indexed = 0
        self.by_name: dict[str, list[int]] = {}
        self.by_dimensions: dict[tuple[str, frozenset[tuple[Any, Any]]], list[int]] = {}

    def catch_up(self, data: list[Any]) -> None:
        end = len(data)
        for position in range(self.indexed, end):
            datum = data[position]
            self.by_name.setdefault(datum.name, []).append(position)
            key = (datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
            self.by_dimensions.setdefault(key, []).append(position)
        self.indexed = end

    def candidates(self, metric: dict[str, Any]) -> list[int]:
        """Positions that may match ``metric`` by moto's rule; a superset, never fewer: moto's rule
        asks for the same name and, with dimensions, equal sorted lists (the same pairs)."""
        dimensions = metric.get("Dimensions") or []
        if dimensions and all("Value" in d for d in dimensions):
            pairs = frozenset((d["Name"], d["Value"]) for d in dimensions)
            return self.by_dimensions.get((metric["MetricName"], pairs), [])
        return self.by_name.get(metric["MetricName"], [])


_index_lock = threading.Lock()


def _candidate_positions(backend: CloudWatchBackend, metrics: list[dict[str, Any]]) -> list[int]:
    """The positions in ``backend.metric_data`` that may match one of ``metrics``, in order.

    The index is kept on the backend, so it goes with it (a fresh cloud's backend has a new one).
    """
    with _index_lock:
        index: _MetricIndex | None = backend.__dict__.get("_canaryfleet_metric_index")
        if index is None:
            index = backend.__dict__["_canaryfleet_metric_index"] = _MetricIndex()
        index.catch_up(backend.metric_data)
        return sorted({p for metric in metrics for p in index.candidates(metric)})


@contextlib.contextmanager
def get_metric_data_reads_the_queried_metrics() -> Iterator[None]:
    """Not an AWS behaviour: moto's GetMetricData looks only at the datapoints its queries can use.

    moto compares every datapoint of the account with every period of every query: with 50
    applications publishing several times a second, the analyses and the metric math alarms
    spent a tenth of the local cloud's time there, more as the datapoints piled up. Each call
    hands moto's own code only the datapoints that one of its metric queries matches, by
    moto's own rule (name and dimensions, or namespace and name without dimensions), found
    through an index of the datapoints by name and dimensions and kept in moto's order, so
    every result is the one moto computes. Calls with a Metrics Insights query (``SELECT``)
    see every datapoint, as before.
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
        metrics = [q["MetricStat"]["Metric"] for q in queries if "MetricStat" in q]
        wanted = [_matcher(metric) for metric in metrics]
        data = backend.metric_data
        chosen = [
            data[p] for p in _candidate_positions(backend, metrics) if any(match(data[p]) for match in wanted)
        ]
        # The providers' metrics (moto computes them at each call) are few: tested one by one.
        chosen += [datum for datum in backend.aws_metric_data if any(match(datum) for match in wanted)]
        subset.metrics = chosen
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
