"""CloudWatch: the load balancer's metrics, and alarms from templates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel

from canaryfleet_local.standins.cloudformation import cfn_bool


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


class CloudFormationCloudWatchAlarm(CloudFormationModel):
    """Stands in for the ``AWS::CloudWatch::Alarm`` resource, which moto's CloudFormation lacks.

    The alarm is created with moto's ``PutMetricAlarm`` (metric math included), numbers and
    booleans converted from their template form. Ref: the alarm's name.
    """

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @property
    def physical_resource_id(self) -> str:
        return self.name

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
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationCloudWatchAlarm:
        client = boto3.client("cloudwatch", region_name=region_name)
        client.put_metric_alarm(**cls._request(resource_name, cloudformation_json["Properties"]))
        arn = client.describe_alarms(AlarmNames=[resource_name])["MetricAlarms"][0]["AlarmArn"]
        return cls(resource_name, arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationCloudWatchAlarm:
        if original_resource.name != new_resource_name:
            cls.delete_from_cloudformation_json(
                original_resource.name, cloudformation_json, account_id, region_name
            )
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        boto3.client("cloudwatch", region_name=region_name).delete_alarms(AlarmNames=[resource_name])

    def is_created(self) -> bool:
        return True
