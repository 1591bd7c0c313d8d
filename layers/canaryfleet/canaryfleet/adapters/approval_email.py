"""Approval emails through SNS: one topic, one email subscription per approver.

Each subscription is filtered on the ``approver`` message attribute, so a message reaches
only the person its link was signed for. An approver listed for the first time is
subscribed here and receives SNS's confirmation email; SNS emails them nothing until they
follow its link (ListSubscriptionsByTopic shows the subscription's ARN as
``PendingConfirmation`` meanwhile, and SNS deletes it after 48 hours unconfirmed).

A subscription confirmed by opening that link can be unsubscribed by anyone who opens the
unsubscribe link at the foot of any email it gets, a mail scanner included. One confirmed with
:meth:`SnsApprovalEmail.confirm_protected` (ConfirmSubscription with AWS credentials and
``AuthenticateOnUnsubscribe``) cannot; GetSubscriptionAttributes tells them apart by
``ConfirmationWasAuthenticated`` ("true if the subscription confirmation request was
authenticated", https://docs.aws.amazon.com/sns/latest/api/API_GetSubscriptionAttributes.html).
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.errors import InvalidConfirmationLink
from canaryfleet.models.sns_subject import sns_subject
from canaryfleet.ports.approvals import EmailReach

if TYPE_CHECKING:  # only the operator's CLI confirms: the functions do not load the model
    from canaryfleet.models.sns_confirmation import ConfirmationLink

PENDING_CONFIRMATION = "PendingConfirmation"


@dataclass(frozen=True)
class ApproverSubscription:
    """An approver's email subscription to the approval email topic, as SNS holds it."""

    email: str
    state: Literal["pending", "confirmed"]
    # Confirmed with AWS credentials: only the topic's or the subscription's owner can unsubscribe it.
    protected: bool
    subscription_arn: str | None  # None while pending (SNS shows no ARN for it)


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
        """Subscribe each missing address, its filter policy naming it alone.

        Each subscription holds one filter policy, and SNS holds at most 200 a topic and 10,000 an
        account by default ("Filter policy constraints in Amazon SNS"): past either, Subscribe
        fails with ``FilterPolicyLimitExceeded``. The addresses not subscribed then are
        ``refused``, and the rest of the approvers are still emailed.
        """
        known = self._subscriptions()
        wanted = sorted({e.lower() for e in emails})
        missing = [email for email in wanted if email not in known]
        subscribed: list[str] = []
        for email in missing:
            try:
                client("sns").subscribe(
                    TopicArn=self._topic_arn,
                    Protocol="email",
                    Endpoint=email,
                    Attributes={
                        "FilterPolicy": json.dumps({"approver": [email]}),
                        "FilterPolicyScope": "MessageAttributes",
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "FilterPolicyLimitExceeded":
                    raise
                break  # the next would be refused too
            subscribed.append(email)
        refused = tuple(email for email in missing if email not in subscribed)
        awaiting = [email for email in wanted if not known.get(email, False) and email not in refused]
        return EmailReach(
            subscribed_now=tuple(subscribed), awaiting_confirmation=tuple(awaiting), refused=refused
        )

    def approver_subscriptions(self) -> list[ApproverSubscription]:
        """Every email subscription of the topic, by address: pending, confirmed, protected."""
        sns = client("sns")
        found: list[ApproverSubscription] = []
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=self._topic_arn):
            for s in page["Subscriptions"]:
                if s.get("Protocol") != "email":
                    continue
                arn = str(s.get("SubscriptionArn", ""))
                if arn == PENDING_CONFIRMATION or not arn.startswith("arn:"):
                    found.append(ApproverSubscription(str(s["Endpoint"]).lower(), "pending", False, None))
                    continue
                attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
                protected = attributes.get("ConfirmationWasAuthenticated") == "true"
                found.append(ApproverSubscription(str(s["Endpoint"]).lower(), "confirmed", protected, arn))
        return sorted(found, key=lambda a: (a.email, a.state))

    def confirm_protected(self, link: ConfirmationLink) -> str:
        """Confirm the subscription the link was mailed for, so that only AWS credentials can end it.

        ConfirmSubscription with ``AuthenticateOnUnsubscribe`` "true", signed by the caller's
        credentials as every boto3 call is. Returns the subscription's ARN. A link for another
        topic is refused before SNS is called: the command confirms approvers, nothing else.
        """
        if link.topic_arn != self._topic_arn:
            raise InvalidConfirmationLink(
                f"the link confirms a subscription to {link.topic_arn}, not to this platform's "
                f"approval email topic {self._topic_arn}"
            )
        confirmed = client("sns").confirm_subscription(
            TopicArn=link.topic_arn, Token=link.token, AuthenticateOnUnsubscribe="true"
        )
        return str(confirmed["SubscriptionArn"])

    def send(self, approver: str, subject: str, body: str) -> None:
        client("sns").publish(
            TopicArn=self._topic_arn,
            Subject=sns_subject(subject),
            Message=body,
            MessageAttributes={"approver": {"DataType": "String", "StringValue": approver.lower()}},
        )
