"""Approval emails through SNS: one topic, one email subscription per approver.

Each subscription is filtered on the ``approver`` message attribute, so a message reaches
only the person its link was signed for. An approver listed for the first time is
subscribed here and receives SNS's confirmation email before their first link.
"""

from __future__ import annotations

import abc
import json

from canaryfleet.adapters.clients import client
from canaryfleet.models.sns_subject import sns_subject


class ApprovalEmail(abc.ABC):
    @abc.abstractmethod
    def ensure_subscribed(self, emails: tuple[str, ...]) -> list[str]:
        """Subscribe the approvers who are not yet; returns those subscribed now."""

    @abc.abstractmethod
    def send(self, approver: str, subject: str, body: str) -> None:
        """Send ``body`` to ``approver`` only."""


class SnsApprovalEmail(ApprovalEmail):
    def __init__(self, topic_arn: str) -> None:
        self._topic_arn = topic_arn

    def _subscribed(self) -> set[str]:
        found: set[str] = set()
        paginator = client("sns").get_paginator("list_subscriptions_by_topic")
        for page in paginator.paginate(TopicArn=self._topic_arn):
            found.update(
                str(s["Endpoint"]).lower() for s in page["Subscriptions"] if s.get("Protocol") == "email"
            )
        return found

    def ensure_subscribed(self, emails: tuple[str, ...]) -> list[str]:
        missing = sorted({e.lower() for e in emails} - self._subscribed())
        for email in missing:
            client("sns").subscribe(
                TopicArn=self._topic_arn,
                Protocol="email",
                Endpoint=email,
                Attributes={
                    "FilterPolicy": json.dumps({"approver": [email]}),
                    "FilterPolicyScope": "MessageAttributes",
                },
            )
        return missing

    def send(self, approver: str, subject: str, body: str) -> None:
        client("sns").publish(
            TopicArn=self._topic_arn,
            Subject=sns_subject(subject),
            Message=body,
            MessageAttributes={"approver": {"DataType": "String", "StringValue": approver.lower()}},
        )
