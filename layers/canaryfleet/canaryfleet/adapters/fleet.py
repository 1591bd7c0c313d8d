"""The application's fleet: CodeDeploy, the load balancer, CloudWatch."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.errors import DeploymentGroupBusy
from canaryfleet.models.analysis import MetricQuery, MetricStatQuery
from canaryfleet.models.app_config import (
    AppConfig,
    FleetGroup,
    GroupCapacity,
    load_balancer_dimension,
    target_group_dimension,
)
from canaryfleet.models.chart import MAX_SAMPLES, AlarmThreshold, MetricSample
from canaryfleet.models.fail_fast import CriticalAlarm
from canaryfleet.models.rollout import Revision

if TYPE_CHECKING:  # the stubs are a development dependency: the layer does not ship them
    from mypy_boto3_codedeploy.type_defs import RevisionLocationTypeDef
    from mypy_boto3_elbv2.type_defs import ActionTypeDef


class CodeDeploy:
    """CodeDeploy as canaryfleet drives it: canaryfleet, not CodeDeploy, rolls its deployments back.

    CodeDeploy's automatic rollback redeploys the group's last *successful deployment*, which on
    the canary group may be a build canaryfleet rolled back for failing its bake, and it starts a
    deployment of its own that canaryfleet's restore would then collide with (one active
    deployment per group). So every deployment canaryfleet creates turns the group's automatic
    rollback off for itself (CreateDeployment's ``autoRollbackConfiguration`` overrides the
    group's for that deployment), and every stop asks for no rollback (StopDeployment's
    ``autoRollbackEnabled``). The groups keep their own setting for deployments made by others.
    """

    def register_revision(self, application: str, revision: Revision) -> None:
        client("codedeploy").register_application_revision(
            applicationName=application,
            revision=cast("RevisionLocationTypeDef", revision.codedeploy()),
            description=f"canaryfleet {revision.version}",
        )

    def create_deployment(self, application: str, group: str, revision: Revision, description: str) -> str:
        try:
            response = client("codedeploy").create_deployment(
                applicationName=application,
                deploymentGroupName=group,
                revision=cast("RevisionLocationTypeDef", revision.codedeploy()),
                description=description[:100],
                fileExistsBehavior="OVERWRITE",
                autoRollbackConfiguration={"enabled": False},
            )
        except ClientError as exc:
            if error_code(exc) == "DeploymentLimitExceededException":
                message = exc.response["Error"].get("Message", "")
                raise DeploymentGroupBusy(f"{application}/{group}: {message}") from None
            raise
        return str(response["deploymentId"])

    def status(self, deployment_id: str) -> tuple[str, str]:
        """(status, what went wrong if anything) of a deployment."""
        info = client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        error = info.get("errorInformation") or {}
        return str(info["status"]), str(error.get("message", ""))

    def stop(self, deployment_id: str) -> bool:
        """Ask CodeDeploy to stop a deployment that has not ended, without rolling it back.

        The stop may be ``Pending`` (the instances finish their lifecycle event first): the
        deployment stays active, and the group busy, until it ends Stopped.
        """
        try:
            client("codedeploy").stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=False)
        except ClientError as exc:
            if error_code(exc) in {"DeploymentAlreadyCompletedException", "DeploymentDoesNotExistException"}:
                return False
            raise
        return True


class Traffic:
    """Canary and live weights on the application's own listener rule (the fleet stack's).

    Only a rule: the role may modify rules tagged as a fleet's, never a shared listener.
    """

    def _actions(self, app: AppConfig) -> list[dict[str, Any]]:
        rule = client("elbv2").describe_rules(RuleArns=[app.listener_rule_arn])["Rules"][0]
        return cast("list[dict[str, Any]]", rule["Actions"])

    def weights(self, app: AppConfig) -> dict[str, int]:
        """Current weight of each target group the forward action names."""
        for action in self._actions(app):
            if action["Type"] == "forward":
                groups = action.get("ForwardConfig", {}).get("TargetGroups") or [
                    {"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}
                ]
                return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        raise ValueError(f"{app.listener_rule_arn} has no forward action")

    def set_canary_weight(self, app: AppConfig, weight: int) -> dict[str, int]:
        actions = [a for a in self._actions(app) if a["Type"] != "forward"]
        forward: dict[str, Any] = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": app.live.target_group_arn, "Weight": 100 - weight},
                    {"TargetGroupArn": app.canary.target_group_arn, "Weight": weight},
                ]
            },
        }
        order = max((a.get("Order", 0) for a in actions), default=0) + 1
        forward["Order"] = order
        actions_now = cast("list[ActionTypeDef]", [*actions, forward])
        client("elbv2").modify_rule(RuleArn=app.listener_rule_arn, Actions=actions_now)
        return self.weights(app)

    def target_health(self, group: FleetGroup) -> dict[str, str]:
        response = client("elbv2").describe_target_health(TargetGroupArn=group.target_group_arn)
        return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in response["TargetHealthDescriptions"]}


class AutoScaling:
    """A color's Auto Scaling group: its capacity, read and set."""

    # Failed launches older than this say nothing about the capacity asked for now.
    _RECENT_ACTIVITIES = 20

    def capacity(self, auto_scaling_group: str) -> GroupCapacity:
        autoscaling = client("autoscaling")
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[auto_scaling_group])[
            "AutoScalingGroups"
        ]
        if not groups:
            raise ValueError(f"Auto Scaling group {auto_scaling_group} does not exist")
        group = groups[0]
        instances = group.get("Instances", [])
        healthy = [
            i for i in instances if i["LifecycleState"] == "InService" and i.get("HealthStatus") == "Healthy"
        ]
        activities = autoscaling.describe_scaling_activities(
            AutoScalingGroupName=auto_scaling_group, MaxRecords=self._RECENT_ACTIVITIES
        ).get("Activities", [])
        failures = tuple(
            str(a.get("StatusMessage") or a.get("Description", ""))
            for a in activities
            if a.get("StatusCode") in {"Failed", "Cancelled"}
        )
        return GroupCapacity(
            desired=int(group["DesiredCapacity"]),
            instances=len(instances),
            healthy=len(healthy),
            launch_failures=failures,
        )

    def set_desired(self, auto_scaling_group: str, desired: int) -> None:
        # HonorCooldown false: a release sizes the color now, whatever a scaling policy did last.
        client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=auto_scaling_group, DesiredCapacity=desired, HonorCooldown=False
        )


class Metrics:
    """CloudWatch: per-interval series (GetMetricData) and the alarms in ALARM."""

    def series(
        self, queries: Mapping[str, MetricQuery], start: datetime, end: datetime, period_seconds: int
    ) -> dict[str, dict[datetime, float]]:
        if end <= start:  # GetMetricData refuses an empty window; there is nothing in it anyway
            return {qid: {} for qid in queries}
        requests: list[dict[str, Any]] = []
        for qid, query in queries.items():
            inputs, expression = query.expanded(qid)
            for inner, metric in inputs:
                entry = {"Id": inner, "MetricStat": metric.metric_stat(period_seconds)}
                requests.append(entry if expression is None else {**entry, "ReturnData": False})
            if expression is not None:
                requests.append({"Id": qid, "Expression": expression, "Period": period_seconds})
        found: dict[str, dict[datetime, float]] = {qid: {} for qid in queries}
        for chunk in _chunks(requests, _MAX_QUERIES):
            token: str | None = None
            while True:
                request: dict[str, Any] = {
                    "MetricDataQueries": chunk,
                    "StartTime": start,
                    "EndTime": end,
                    "ScanBy": "TimestampAscending",
                }
                if token:
                    request["NextToken"] = token
                response = client("cloudwatch").get_metric_data(**request)
                for result in response["MetricDataResults"]:
                    if result["Id"] in found:
                        stamps = (t.astimezone(UTC) for t in result.get("Timestamps", []))
                        found[result["Id"]].update(zip(stamps, result.get("Values", []), strict=False))
                token = response.get("NextToken")
                if not token:
                    break
        return found

    def samples(
        self, app: AppConfig, group: FleetGroup, start: datetime, end: datetime
    ) -> list[MetricSample]:
        start = start.replace(microsecond=0)
        end = max(end.replace(microsecond=0) + timedelta(seconds=1), start + timedelta(seconds=1))
        period = sample_period((end - start).total_seconds())
        dimensions = {
            "LoadBalancer": load_balancer_dimension(app.listener_rule_arn),
            "TargetGroup": target_group_dimension(group.target_group_arn),
        }
        queries = {
            qid: MetricQuery(
                metric=MetricStatQuery(
                    namespace="AWS/ApplicationELB", metric_name=metric, dimensions=dimensions, stat=stat
                )
            )
            for qid, metric, stat in (
                ("requests", "RequestCount", "Sum"),
                ("errors", "HTTPCode_Target_5XX_Count", "Sum"),
                ("latency", "TargetResponseTime", "Average"),
            )
        }
        by_id = self.series(queries, start, end, period)
        requests, errors, latency = (by_id.get(k, {}) for k in ("requests", "errors", "latency"))
        # Metrics stored at one-minute resolution come back a minute apart whatever the period
        # asked for: a sample stands for the spacing CloudWatch actually returned.
        stamps = sorted(requests)
        gaps = [int((b - a).total_seconds()) for a, b in itertools.pairwise(stamps)]
        period = max(period, min(gaps, default=period))
        # A period with no request has no datapoint at all: it is left out, not drawn as zero.
        return [
            MetricSample(
                at=at,
                seconds=period,
                requests=count,
                errors=errors.get(at, 0.0),
                latency=latency.get(at),
            )
            for at, count in sorted(requests.items())[-MAX_SAMPLES:]
            if count > 0
        ]

    def alarm_thresholds(self, names: tuple[str, ...]) -> list[AlarmThreshold]:
        if not names:
            return []
        response = client("cloudwatch").describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm"])
        return [
            AlarmThreshold(
                alarm=a["AlarmName"],
                watches=_watches(cast("dict[str, Any]", a)),
                threshold=float(a["Threshold"]),
                comparison=a["ComparisonOperator"],
            )
            for a in response.get("MetricAlarms", [])
            if "Threshold" in a
        ]

    def alarms_in_alarm(self, names: tuple[str, ...]) -> list[dict[str, str]]:
        if not names:
            return []
        # Metric alarms only, as DescribeAlarms returns without AlarmTypes: the fleet's alarms and
        # the fail-fast ones are metric alarms, and reading composite alarms would need the grant
        # on "*" (API_DescribeAlarms); the functions' grants are scoped to alarm ARNs.
        response = client("cloudwatch").describe_alarms(
            AlarmNames=list(names), AlarmTypes=["MetricAlarm"], StateValue="ALARM"
        )
        return [
            {"name": a["AlarmName"], "reason": a.get("StateReason", "")}
            for a in response.get("MetricAlarms", [])
            if a.get("StateValue") == "ALARM"  # moto ignores StateValue when AlarmNames is given
        ]

    def put_alarm(self, alarm: CriticalAlarm) -> None:
        client("cloudwatch").put_metric_alarm(**alarm.put_request())

    def delete_alarms(self, prefix: str) -> list[str]:
        """DescribeAlarms by prefix, then DeleteAlarms in batches of 100 (its limit). Deleting an
        alarm already gone is not an error: a retried cleanup finds fewer names, not a failure."""
        cloudwatch = client("cloudwatch")
        names: list[str] = []
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]
        ):
            names += [a["AlarmName"] for a in page.get("MetricAlarms", [])]
        for start in range(0, len(names), 100):
            try:
                cloudwatch.delete_alarms(AlarmNames=names[start : start + 100])
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFound":
                    raise
        return names


def _watches(alarm: dict[str, Any]) -> str:
    """What a metric alarm's threshold is a value of: the fleet's 5xx-rate alarm is an expression
    over the 5xx count (in percent), its latency alarm TargetResponseTime's p99 (in seconds)."""
    names = {q["MetricStat"]["Metric"]["MetricName"] for q in alarm.get("Metrics", []) if "MetricStat" in q}
    if "HTTPCode_Target_5XX_Count" in names and any("Expression" in q for q in alarm.get("Metrics", [])):
        return "5xx_rate_percent"
    if alarm.get("MetricName") == "TargetResponseTime" and alarm.get("ExtendedStatistic") == "p99":
        return "latency_p99_seconds"
    return "other"


# The periods CloudWatch takes for high-resolution and standard metrics (GetMetricData's Period:
# 1, 5, 10, 30, or a multiple of 60).
_PERIODS = (1, 5, 10, 30, 60)


def sample_period(window_seconds: float) -> int:
    """The shortest period CloudWatch accepts that splits the window into at most MAX_SAMPLES."""
    needed = window_seconds / MAX_SAMPLES
    for period in _PERIODS:
        if period >= needed:
            return period
    return 60 * -(-int(needed) // 60)


# GetMetricData takes at most 500 queries a request
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).
_MAX_QUERIES = 500


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Requests of at most ``size`` queries; an expression stays with its inputs (they precede it)."""
    chunk: list[dict[str, Any]] = []
    group: list[dict[str, Any]] = []
    for item in items:
        group.append(item)
        if item.get("ReturnData", True):  # the end of one query and its inputs
            if len(chunk) + len(group) > size:
                yield chunk
                chunk = []
            chunk += group
            group = []
    if chunk:
        yield chunk
