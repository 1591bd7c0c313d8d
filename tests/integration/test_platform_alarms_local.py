"""The platform's own alarms, deployed from template.yaml on the local cloud: each watches a real
queue or metric, and reaches on-call through the encrypted alarm topic; a topic on a key CloudWatch
may not use tells no one, as on AWS (src/canaryfleet_local/FIDELITY.md, CloudWatchAlarmSnsActions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from canaryfleet_local.cloud import LocalCloud

ON_CALL = "oncall@example.com"


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(parameters={"LogLevel": "WARNING", "OnCallEmail": ON_CALL}) as local:
        yield local


def _alarms(cloud: LocalCloud) -> dict[str, dict[str, Any]]:
    """The stack's alarms by logical id."""
    resources = cloud.client("cloudformation").describe_stack_resources(StackName="canaryfleet")
    names = {
        r["PhysicalResourceId"]: r["LogicalResourceId"]
        for r in resources["StackResources"]
        if r["ResourceType"] == "AWS::CloudWatch::Alarm"
    }
    described = cloud.client("cloudwatch").describe_alarms(AlarmNames=list(names))["MetricAlarms"]
    return {names[a["AlarmName"]]: a for a in described}


def _on_call_mail(cloud: LocalCloud) -> list[dict[str, Any]]:
    return [
        {"subject": m.subject, **json.loads(m.message)}
        for m in cloud.stand_ins.sns_email.delivered
        if m.endpoint == ON_CALL
    ]


def test_a_dead_letter_queue_alarm_reaches_on_call_when_it_goes_off_and_when_it_is_over(
    cloud: LocalCloud,
) -> None:
    # Given the deployed platform, on-call subscribed to its alarm topic
    alarms = _alarms(cloud)
    topic = cloud.outputs["PlatformAlarmTopicArn"]
    queues = {url.rsplit("/", 1)[-1] for url in cloud.client("sqs").list_queues()["QueueUrls"]}
    cloudwatch = cloud.client("cloudwatch")

    # Then each dead-letter queue the stack outputs has an alarm on that very queue, telling the topic
    outputs = (
        "EventDeadLetterQueueUrl",
        "UndeliveredEventQueueUrl",
        "NotifyDeadLetterQueueUrl",
        "DrainDeadLetterQueueUrl",
    )
    for output in outputs:
        queue = cloud.outputs[output].rsplit("/", 1)[-1]
        watching = [
            logical_id
            for logical_id, a in alarms.items()
            if a.get("Dimensions") == [{"Name": "QueueName", "Value": queue}]
        ]
        assert len(watching) == 1, (output, watching)
        assert alarms[watching[0]]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert all(a["AlarmActions"] == [topic] and a["OKActions"] == [topic] for a in alarms.values())
    sqs_alarms = [a for a in alarms.values() if a.get("Namespace") == "AWS/SQS"]
    assert {a["Dimensions"][0]["Value"] for a in sqs_alarms} <= queues
    assert all(a["StateValue"] == "INSUFFICIENT_DATA" for a in alarms.values())

    # When the event dead-letter queue's alarm goes off, stays in ALARM, then is over
    name = alarms["EventDeadLetterQueueAlarm"]["AlarmName"]
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="1 message visible")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="still 1 message visible")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="0 messages visible")

    # Then on-call got one notice when it went off and one when it was over, not one per evaluation
    mail = _on_call_mail(cloud)
    assert [(m["OldStateValue"], m["NewStateValue"]) for m in mail] == [
        ("INSUFFICIENT_DATA", "ALARM"),
        ("ALARM", "OK"),
    ]
    first = mail[0]
    assert first["subject"] == f'ALARM: "{name}" in US East (N. Virginia)'
    assert first["AlarmName"] == name and first["NewStateReason"] == "1 message visible"
    assert "EventDeadLetterQueue" in first["AlarmDescription"]
    assert cloud.stand_ins.alarm_actions.failed == []


def test_on_a_key_cloudwatch_may_not_use_the_alarm_tells_no_one(cloud: LocalCloud) -> None:
    # Given the platform's alarm topic, and the alarm of lost drain logs
    sns, cloudwatch, kms = cloud.client("sns"), cloud.client("cloudwatch"), cloud.client("kms")
    topic = cloud.outputs["PlatformAlarmTopicArn"]
    name = _alarms(cloud)["DrainLogsLostAlarm"]["AlarmName"]
    key = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]

    # When the topic is encrypted with the AWS managed key instead, and the alarm goes off
    sns.set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue="alias/aws/sns")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="a drain lost its logs")

    # Then nothing reaches on-call, and the action is recorded as failed
    assert _on_call_mail(cloud) == []
    failed = cloud.stand_ins.alarm_actions.failed
    assert [(f.alarm_name, f.action) for f in failed] == [(name, topic)]
    assert "AWS managed key" in failed[0].reason

    # When the stack's own key is back on the topic, but its policy no longer names CloudWatch
    sns.set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue=key)
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"] = [
        s for s in policy["Statement"] if s.get("Sid") != "CloudWatchAlarmsPublishToTheTopic"
    ]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="no more")

    # Then that is refused too
    assert _on_call_mail(cloud) == []
    assert len(cloud.stand_ins.alarm_actions.failed) == 2
    assert "key policy" in cloud.stand_ins.alarm_actions.failed[1].reason
