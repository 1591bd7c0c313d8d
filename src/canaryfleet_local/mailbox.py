"""The approvers' mailboxes on the local cloud: what the approval email topic would have mailed."""

from __future__ import annotations

import json
import uuid
from typing import Any

from canaryfleet_local.cloud import LocalCloud


class LocalMailbox:
    """Stands in for the approvers' mailboxes: every message of the approval email topic.

    SNS has no one to email on the local cloud; an SQS queue subscribed to the topic keeps
    each message with its ``approver`` attribute (the address SNS would have mailed).
    """

    def __init__(self, cloud: LocalCloud, topic_output: str = "ApprovalEmailTopicArn") -> None:
        self._cloud = cloud
        sqs = cloud.client("sqs")
        self._url = sqs.create_queue(QueueName=f"approval-emails-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]
        cloud.client("sns").subscribe(
            TopicArn=cloud.output(topic_output), Protocol="sqs", Endpoint=attributes["QueueArn"]
        )
        self.messages: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """Every message so far: SNS's envelope (Subject, Message, MessageAttributes)."""
        sqs = self._cloud.client("sqs")
        while batch := sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                self.messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return self.messages

    def for_approval(self, approval_id: str) -> list[dict[str, Any]]:
        return [m for m in self.read() if f"/approvals/{approval_id}?" in m["Message"]]

    def links(self, approval_id: str) -> dict[str, str]:
        """Each approver's link to the approval page."""
        return {
            m["MessageAttributes"]["approver"]["Value"]: next(
                word for word in m["Message"].split() if word.startswith("http")
            )
            for m in self.for_approval(approval_id)
        }
