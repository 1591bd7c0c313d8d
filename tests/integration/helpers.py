"""Observing the local cloud from tests."""

from __future__ import annotations

import json
from typing import Any

from canaryfleet_local.cloud import LocalCloud


def subscribe_queue(cloud: LocalCloud, topic_output: str = "NotificationTopicArn") -> str:
    """An SQS queue subscribed (raw delivery) to a topic of the stack; returns its URL."""
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="test-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cloud.client("sns").subscribe(
        TopicArn=cloud.output(topic_output),
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return str(url)


def drain_queue(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        messages.extend(json.loads(m["Body"]) for m in batch)
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def invoke(cloud: LocalCloud, logical_id: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Invoke a function of the stack synchronously; returns (response payload, FunctionError)."""
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.resource(logical_id), Payload=json.dumps(payload).encode()
    )
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def table_items(cloud: LocalCloud, pk: str) -> list[dict[str, Any]]:
    items = cloud.client("dynamodb").query(
        TableName=cloud.output("StateTableName"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]
