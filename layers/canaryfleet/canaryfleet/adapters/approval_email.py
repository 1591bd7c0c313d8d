"""Approval emails through SNS: one topic, one email subscription per approver.

Each subscription is filtered on the ``approver`` message attribute, so a message reaches
only the person its link was signed for. An approver listed for the first time is
subscribed here and receives SNS's confirmation email; SNS emails them nothing until they
follow its link (ListSubscriptionsByTopic shows the subscription's ARN as
``PendingConfirmation`` meanwhile, and SNS deletes it after 48 hours unconfirmed).
"""

from __future__ import annotations

import abc
import json

from canaryfleet.adapters.clients import client
from canaryfleet.models.sns_subject import sns_subject
from canaryfleet.ports.approvals import EmailReach

PENDING_CONFIRMATION = "PendingConfirmation"


class ApprovalEmail(abc.ABC):
    @abc.abstractmethod
    def ensure_subscribed(self, emails: tuple[str, ...]) -> EmailReach:
        """Subscribe the approvers who are not yet; who is new and who cannot be emailed yet."""

    @abc.abstractmethod
    def send(self, approver: str, subject: str, body: str) -> None:
        """Send ``body`` to ``approver`` only."""


class SnsApprovalEmail(ApprovalEmail):
    def __init__(self, topic_arn: str) -> None:
        self._topic_arn = topic_arn

    def _subscriptions(self) -> dict[str, bool]:
        """Each email endpoint of the topic, and whether its owner confirmed it."""
        found: dict[str, bool] = {}
        paginator = client("sns").get_paginator("list_subscriptions_by_topic")
        for page in paginator.paginate(TopicArn=self._topic_arn):
            for s in page["Subscriptions"]:
                if s.get("Protocol") == "email":
                    endpoint = str(s["Endpoint"]).lower()
                    found[endpoint] = found.get(endpoint, False) or s.get("SubscriptionArn") != (
                        PENDING_CONFIRMATION
                    )
        return found

    def ensure_subscribed(self, emails: tuple[str, ...]) -> EmailReach:
        known = self._subscriptions()
        wanted = sorted({e.lower() for e in emails})
        missing = [email for email in wanted if email not in known]
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
        awaiting = [email for email in wanted if not known.get(email, False)]
        return EmailReach(subscribed_now=tuple(missing), awaiting_confirmation=tuple(awaiting))

    def send(self, approver: str, subject: str, body: str) -> None:
        client("sns").publish(
            TopicArn=self._topic_arn,
            Subject=sns_subject(subject),
            Message=body,
            MessageAttributes={"approver": {"DataType": "String", "StringValue": approver.lower()}},
        )
