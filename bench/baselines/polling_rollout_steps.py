"""BASELINE, never shipped: the Lambda functions the polling rollout state machine calls.

One small function per step, as the public polling samples have them. The local cloud loads
this file as a function's handler module (as it loads functions/*/app.py), so it imports
nothing from the bench package.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import boto3


@functools.cache
def _client(service: Literal["cloudwatch", "codedeploy", "elbv2"]) -> Any:
    return boto3.client(service)


def start_deployment(event: dict[str, Any], context: Any) -> dict[str, str]:
    """CreateDeployment of the bundle in S3 to one deployment group."""
    response = _client("codedeploy").create_deployment(
        applicationName=event["codedeploy_application"],
        deploymentGroupName=event["deployment_group"],
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": event["bucket"], "key": event["key"], "bundleType": "zip"},
        },
    )
    return {"deployment_id": response["deploymentId"]}


def get_deployment(event: dict[str, Any], context: Any) -> dict[str, str]:
    """GetDeployment: the deployment's status (Created, InProgress, Succeeded, Failed, Stopped, ...)."""
    response = _client("codedeploy").get_deployment(deploymentId=event["deployment_id"])
    return {"status": response["deploymentInfo"]["status"]}


def check_alarms(event: dict[str, Any], context: Any) -> dict[str, bool]:
    """Whether any of the named alarms is in ALARM now."""
    response = _client("cloudwatch").describe_alarms(AlarmNames=event["alarm_names"])
    return {"in_alarm": any(alarm["StateValue"] == "ALARM" for alarm in response["MetricAlarms"])}


def set_weight(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Send ``weight`` percent of the listener rule's traffic to the canary target group."""
    weight = int(event["weight"])
    _client("elbv2").modify_rule(
        RuleArn=event["listener_rule_arn"],
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": event["live_target_group_arn"], "Weight": 100 - weight},
                        {"TargetGroupArn": event["canary_target_group_arn"], "Weight": weight},
                    ]
                },
            }
        ],
    )
    return {"canary": weight, "live": 100 - weight}
