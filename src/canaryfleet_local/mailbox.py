"""The approvers' mailboxes on the local cloud: what the approval email topic mailed them."""

from __future__ import annotations

from typing import Any

from canaryfleet_local.cloud import LocalCloud


class LocalMailbox:
    """Stands in for the approvers' mailboxes: the emails SNS delivered from the approval topic.

    Each is an email SNS sent to a confirmed email subscription of the topic
    (``standins.sqs_sns.SnsEmailSubscriptions``), in SNS's envelope shape, its ``approver``
    attribute the address it reached. An approver who has not confirmed their subscription
    gets nothing, as on AWS; :meth:`confirm` is the approver following SNS's confirmation link.
    """

    def __init__(self, cloud: LocalCloud, topic_output: str = "ApprovalEmailTopicArn") -> None:
        self._topic_arn = cloud.output(topic_output)
        self._emails = cloud.stand_ins.sns_email

    def confirm(self, email: str) -> bool:
        """``email``'s owner follows the link of SNS's confirmation email; False if none was pending."""
        return self._emails.confirm(email) > 0

    def read(self) -> list[dict[str, Any]]:
        """Every email so far: SNS's envelope (Subject, Message, MessageAttributes)."""
        return [
            {
                "Subject": email.subject,
                "Message": email.message,
                "MessageAttributes": {"approver": {"Type": "String", "Value": email.endpoint.lower()}},
            }
            for email in list(self._emails.delivered)
            if email.topic_arn == self._topic_arn
        ]

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
