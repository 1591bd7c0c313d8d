"""The platform's own alarms in template.yaml: what on-call must hear of, and how it reaches them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from canaryfleet_local.parsing import parse_template
from canaryfleet_local.standins.cloudwatch_actions import cloudwatch_may_use_key
from tests.helpers import REPO

TEMPLATE: dict[str, Any] = parse_template((REPO / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
ALARMS = {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
TOPIC = {"Ref": "PlatformAlarmTopic"}
NAMESPACE = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
# How the runtime names a metric: Powertools' add_metric, or its own one-metric helper.
EMITTED = re.compile(r'(?:add_metric\(\s*name=|emit_dimensioned\(\s*)"(\w+)"')
INSIGHTS = re.compile(r"^SELECT SUM\((\w+)\) FROM (\w+)$")


def _dead_letter_queues() -> set[str]:
    """Every queue the template makes a dead-letter queue: a function's async one, a redrive target,
    or where EventBridge keeps what a rule of a function's events could not deliver."""
    queues = set()
    for resource in RESOURCES.values():
        props = resource.get("Properties", {})
        target = props.get("DeadLetterQueue", {}).get("TargetArn")
        redrive = props.get("RedrivePolicy", {}).get("deadLetterTargetArn")
        undelivered = [
            event.get("Properties", {}).get("DeadLetterConfig", {}).get("Arn")
            for event in props.get("Events", {}).values()
        ]
        for arn in (target, redrive, *undelivered):
            if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                queues.add(arn["Fn::GetAtt"][0])
    return queues


def _emitted_metrics() -> set[str]:
    layer = REPO / "layers" / "canaryfleet" / "canaryfleet"
    return {name for path in layer.rglob("*.py") for name in EMITTED.findall(path.read_text())}


def test_every_dead_letter_queue_has_an_alarm_while_it_holds_a_message() -> None:
    # Given every dead-letter queue of the template
    queues = _dead_letter_queues()

    # When the alarms on SQS's visible messages are read
    watched = {
        props["Dimensions"][0]["Value"]["Fn::GetAtt"][0]: props
        for props in ALARMS.values()
        if props.get("Namespace") == "AWS/SQS"
    }

    # Then each queue has one, in ALARM from its first message until SQS reports it empty again
    assert queues == {
        "EventDeadLetterQueue",
        "UndeliveredEventQueue",
        "NotifyDeadLetterQueue",
        "DrainDeadLetterQueue",
    }
    assert set(watched) == queues
    for queue, props in watched.items():
        assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert (props["Statistic"], props["ComparisonOperator"], props["Threshold"]) == (
            "Maximum",
            "GreaterThanThreshold",
            0,
        )
        # SQS reports the metric only while the queue is active: no datapoint changes nothing
        assert props["TreatMissingData"] == "ignore"


def test_each_metric_alarm_counts_a_metric_the_runtime_emits_whichever_function_emits_it() -> None:
    # Given the alarms on canaryfleet's own metrics, and the metrics the runtime package emits
    queries = {k: p["Metrics"] for k, p in ALARMS.items() if "Metrics" in p}
    emitted = _emitted_metrics()

    # Then each is one Metrics Insights query over the functions' namespace, of an emitted metric
    counted = set()
    for logical_id, metrics in queries.items():
        assert len(metrics) == 1 and metrics[0]["ReturnData"] is True, logical_id
        match = INSIGHTS.match(metrics[0]["Expression"])
        assert match is not None, logical_id
        metric, namespace = match.groups()
        assert namespace == NAMESPACE and metric in emitted, logical_id
        assert ALARMS[logical_id]["TreatMissingData"] == "notBreaching"
        counted.add(metric)

    # And the failures nothing else puts right are all counted
    assert counted == {
        "RestoresFailed",
        "ReleasesNotRecorded",
        "RolloutRecoveriesFailed",
        "OldColorsLeftUp",
        "DrainLogsLost",
        "ApprovalEmailSubscriptionsRefused",
        "ApprovalsNotAskedInSlack",
    }


def test_every_alarm_tells_the_platform_alarm_topic_when_it_goes_off_and_when_it_is_over() -> None:
    assert ALARMS
    for logical_id, props in ALARMS.items():
        assert props["AlarmActions"] == [TOPIC], logical_id
        assert props["OKActions"] == [TOPIC], logical_id
        assert props.get("ActionsEnabled", True) is True, logical_id


def test_the_alarm_topic_is_encrypted_with_a_key_of_the_stack_that_cloudwatch_may_use() -> None:
    # Given the alarm topic and its key
    topic = RESOURCES["PlatformAlarmTopic"]["Properties"]
    key_ref = topic["KmsMasterKeyId"]
    key = RESOURCES[key_ref["Ref"]]
    statements = key["Properties"]["KeyPolicy"]["Statement"]

    # Then it is the stack's own key, not the AWS managed alias/aws/sns, which CloudWatch cannot use
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    # its policy lets CloudWatch publish (the same rule the local cloud holds alarms to) ...
    assert cloudwatch_may_use_key(key["Properties"]["KeyPolicy"])
    # ... and keeps the account's own statement, without which no one could manage the key
    root = next(s for s in statements if s["Sid"] == "AccountAdministersTheKey")
    assert root["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert root["Action"] == "kms:*"


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        # the SNS Developer Guide's statement for an AWS service publishing to an encrypted topic
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                        "Resource": "*",
                    }
                ]
            },
            True,
        ),
        # a wildcard, and the principal in a list
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ]
            },
            True,
        ),
        # one of the two calls only
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                    }
                ]
            },
            False,
        ),
        # the account's root only: a service principal is not the account
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ]
            },
            False,
        ),
        # allowed, then denied
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Effect": "Deny",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "kms:GenerateDataKey",
                        "Resource": "*",
                    },
                ]
            },
            False,
        ),
        # under a condition the local cloud cannot tell is met
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
                    }
                ]
            },
            False,
        ),
        ({}, False),
    ],
)
def test_a_key_policy_lets_cloudwatch_publish_only_when_it_allows_both_calls(
    policy: dict[str, Any], allowed: bool
) -> None:
    assert cloudwatch_may_use_key(policy) is allowed


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("oncall@example.com", True),
        ("payments-oncall+canaryfleet@pager.example.co.uk", True),
        ("oncall", False),
        ("oncall@example", False),
        ("on call@example.com", False),
        ("oncall@example.com\n", False),
    ],
)
def test_on_call_email_is_an_address_or_nothing(value: str, accepted: bool) -> None:
    # Given the parameter's pattern (CloudFormation matches it against the whole value)
    pattern = TEMPLATE["Parameters"]["OnCallEmail"]["AllowedPattern"]

    # Then an address subscribes on-call, and nothing subscribes no one
    assert (re.fullmatch(pattern, value) is not None) is accepted
    subscription = RESOURCES["OnCallEmailSubscription"]
    assert subscription["Condition"] == "HasOnCallEmail"
    assert subscription["Properties"]["TopicArn"] == TOPIC
    assert TEMPLATE["Conditions"]["HasOnCallEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "OnCallEmail"}, ""]}]
    }


def test_the_operations_dashboard_shows_every_platform_alarm_first() -> None:
    # Given the operations dashboard as CloudFormation substitutes it
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]

    # Then its first widget is the alarms' states, naming each alarm of the template by its ARN
    first = widgets[0]
    assert (first["type"], first["y"]) == ("alarm", 0)
    assert sorted(first["properties"]["alarms"]) == sorted(f"${{{logical_id}.Arn}}" for logical_id in ALARMS)
    assert all(w["y"] >= first["height"] for w in widgets[1:])  # nothing drawn over it
